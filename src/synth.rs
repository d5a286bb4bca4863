//! A writer of Cinder's share layout, for tests and benchmarks: chunks
//! (none/zlib/bz2/zstd), `_metadata` and `_sha256file` exactly as Cinder's
//! chunked driver writes them (`json.dumps(sort_keys=True, indent=2)`),
//! full and incremental backups.
//!
//! It writes only under the directory it is given; it is never pointed at
//! a real share.

use crate::share::sha256file::to_hex;
use md5::{Digest, Md5};
use sha2::Sha256;
use std::io::Write;
use std::path::Path;

/// One backup to write.
#[derive(Debug, Clone)]
pub struct SynthBackup {
    pub id: String,
    pub volume_id: String,
    /// Share-relative container; `None`: the default `ab/cd/<id>`.
    pub container: Option<String>,
    /// Legacy `backup` prefix (Kilo..Ocata) instead of `volume_…_backup_…`.
    pub legacy_prefix: bool,
    /// `YYYYmmddHHMMSS`, used in the prefix and (reformatted) in created_at.
    pub timestamp: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Volume size in bytes (a multiple of `block`).
    pub size: u64,
    /// Object size (`backup_file_size`), a multiple of `block`.
    pub object_size: u64,
    /// Hash block size (`backup_sha_block_size_bytes`).
    pub block: u64,
    /// Compression name written in the metadata: none, zlib, bz2, zstd.
    pub compression: String,
    /// For an incremental: the parent's id and its sha256 list.
    pub parent: Option<(String, Vec<[u8; 32]>)>,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Written {
    pub container: String,
    pub prefix: String,
    pub chunks: usize,
    pub sha256s: Vec<[u8; 32]>,
}

impl SynthBackup {
    pub fn prefix(&self) -> String {
        if self.legacy_prefix {
            crate::share::LEGACY_PREFIX.to_string()
        } else {
            format!(
                "volume_{}_{}_backup_{}",
                self.volume_id, self.timestamp, self.id
            )
        }
    }
    fn created_at(&self) -> String {
        let t = &self.timestamp;
        let g = |r: std::ops::Range<usize>| t.get(r).unwrap_or("00");
        format!(
            "{}-{}-{} {}:{}:{}.000000+00:00",
            g(0..4),
            g(4..6),
            g(6..8),
            g(8..10),
            g(10..12),
            g(12..14)
        )
    }
}

fn compress(name: &str, data: &[u8]) -> std::io::Result<Vec<u8>> {
    Ok(match name {
        "zlib" | "gzip" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
            e.write_all(data)?;
            e.finish()?
        }
        "bz2" | "bzip2" => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(9));
            e.write_all(data)?;
            e.finish()?
        }
        "zstd" => zstd::bulk::compress(data, 3)?,
        _ => data.to_vec(),
    })
}

/// JSON string as Python's json.dumps writes it.
fn js(s: &Option<String>) -> String {
    match s {
        Some(s) => crate::record::pyjson::dumps(&serde_json::Value::String(s.clone())),
        None => "null".into(),
    }
}

/// Deterministic volume content: ~70% zero blocks, ~20% text-like
/// (compressible), ~10% random, decided per 32 KiB block.
pub fn thin_volume(seed: u64) -> impl FnMut(u64, &mut [u8]) {
    move |offset: u64, buf: &mut [u8]| {
        const B: usize = 32768;
        for (k, block) in buf.chunks_mut(B).enumerate() {
            let idx = offset / B as u64 + k as u64;
            let r = crate::verify::stable_hash(&[&seed.to_le_bytes(), &idx.to_le_bytes()]);
            match r % 10 {
                0..=6 => block.fill(0),
                7 | 8 => {
                    let words: [&[u8]; 8] = [
                        b"backup ",
                        b"volume ",
                        b"cinder ",
                        b"chunk ",
                        b"nfs ",
                        b"2026-11-24 ",
                        b"ERROR ",
                        b"INFO ",
                    ];
                    let mut x = r;
                    let mut i = 0;
                    while i < block.len() {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let w = words[(x % 8) as usize];
                        let n = w.len().min(block.len() - i);
                        block[i..i + n].copy_from_slice(&w[..n]);
                        i += n;
                    }
                }
                _ => {
                    let mut x = r | 1;
                    for c in block.chunks_mut(8) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let b = x.to_le_bytes();
                        c.copy_from_slice(&b[..c.len()]);
                    }
                }
            }
        }
    }
}

/// Write `b` under `share`, reading volume bytes from `read(offset, buf)`.
// It writes a share (for tests and benchmarks): what it writes is not an
// output of a cbr command, so it does not go through the gate out.
#[allow(clippy::disallowed_methods)]
pub fn write_backup(
    share: &Path,
    b: &SynthBackup,
    read: &mut dyn FnMut(u64, &mut [u8]),
) -> std::io::Result<Written> {
    let container = b
        .container
        .clone()
        .unwrap_or_else(|| crate::share::default_container(&b.id));
    let dir = share.join(&container);
    std::fs::create_dir_all(&dir)?;
    let prefix = b.prefix();
    let mut chunks = Chunks {
        dir: &dir,
        b,
        prefix: &prefix,
        n: 0,
        objects: Vec::new(),
        sha256s: Vec::with_capacity((b.size / b.block) as usize),
    };
    let mut buf = vec![0u8; b.object_size as usize];
    let mut offset = 0u64;
    while offset < b.size {
        let len = (b.size - offset).min(b.object_size) as usize;
        let data = &mut buf[..len];
        read(offset, data);
        chunks.add_object(data, offset)?;
        offset += len as u64;
    }
    std::fs::write(
        dir.join(format!("{prefix}_metadata")),
        metadata_text(b, &chunks.objects),
    )?;
    write_sha256file(
        &dir.join(format!("{prefix}_sha256file")),
        b,
        &chunks.sha256s,
    )?;
    let (n, sha256s) = (chunks.n, chunks.sha256s);
    Ok(Written {
        container,
        prefix,
        chunks: n,
        sha256s,
    })
}

/// The chunks of one backup being written: its directory, how many so
/// far, their `_metadata` entries and the sha256 of every block.
struct Chunks<'a> {
    dir: &'a Path,
    b: &'a SynthBackup,
    prefix: &'a str,
    n: usize,
    objects: Vec<String>,
    sha256s: Vec<[u8; 32]>,
}

impl Chunks<'_> {
    /// One object's worth of volume bytes at `offset`: hashed block by
    /// block; written whole for a full backup, and for an incremental
    /// only its runs of blocks changed since the parent, each run an
    /// object of its own.
    fn add_object(&mut self, data: &[u8], offset: u64) -> std::io::Result<()> {
        let block = self.b.block as usize;
        let first = self.sha256s.len();
        for piece in data.chunks(block) {
            self.sha256s.push(Sha256::digest(piece).into());
        }
        let Some((_, parent)) = &self.b.parent else {
            return self.write_chunk(data, offset);
        };
        let changed: Vec<bool> = (0..data.len().div_ceil(block))
            .map(|k| parent.get(first + k) != self.sha256s.get(first + k))
            .collect();
        let nb = changed.len();
        let mut k = 0;
        while k < nb {
            if !changed[k] {
                k += 1;
                continue;
            }
            let start = k;
            while k < nb && changed[k] {
                k += 1;
            }
            let s = start * block;
            let e = (k * block).min(data.len());
            self.write_chunk(&data[s..e], offset + s as u64)?;
        }
        Ok(())
    }

    /// One chunk file (compressed unless that does not shrink it, as
    /// Cinder does) and its `_metadata` entry.
    #[allow(clippy::disallowed_methods)] // see write_backup
    fn write_chunk(&mut self, data: &[u8], at: u64) -> std::io::Result<()> {
        self.n += 1;
        let name = format!("{}-{:05}", self.prefix, self.n);
        let b = self.b;
        let z = compress(&b.compression, data)?;
        // Cinder stores a chunk that does not shrink uncompressed.
        let (bytes, comp) = if z.len() >= data.len() && b.compression != "none" {
            (data.to_vec(), "none".to_string())
        } else {
            (z, b.compression.clone())
        };
        std::fs::write(self.dir.join(&name), &bytes)?;
        let md5 = to_hex(&Md5::digest(data));
        self.objects.push(format!(
            "    {{\n      \"{name}\": {{\n        \"compression\": \"{comp}\",\n        \"length\": {},\n        \"md5\": \"{md5}\",\n        \"offset\": {at}\n      }}\n    }}",
            data.len()
        ));
        Ok(())
    }
}

/// The `_metadata` of a backup whose chunks have these entries.
fn metadata_text(b: &SynthBackup, objects: &[String]) -> String {
    let parent_id = b.parent.as_ref().map(|(p, _)| p.clone());
    format!(
        "{{\n  \"backup_description\": {},\n  \"backup_id\": \"{}\",\n  \"backup_name\": {},\n  \"created_at\": \"{}\",\n  \"objects\": [{}{}{}],\n  \"parent_id\": {},\n  \"version\": \"1.0.0\",\n  \"volume_id\": \"{}\",\n  \"volume_meta\": null\n}}",
        js(&b.description),
        b.id,
        js(&b.name),
        b.created_at(),
        if objects.is_empty() { "" } else { "\n" },
        objects.join(",\n"),
        if objects.is_empty() { "" } else { "\n  " },
        js(&parent_id),
        b.volume_id
    )
}

/// The `_sha256file` of a backup: the sha256 of every block, in order.
#[allow(clippy::disallowed_methods)] // see write_backup
fn write_sha256file(path: &Path, b: &SynthBackup, sha256s: &[[u8; 32]]) -> std::io::Result<()> {
    let mut sha = std::io::BufWriter::new(std::fs::File::create(path)?);
    write!(
        sha,
        "{{\n  \"backup_description\": {},\n  \"backup_id\": \"{}\",\n  \"backup_name\": {},\n  \"chunk_size\": {},\n  \"created_at\": \"{}\",\n  \"sha256s\": [",
        js(&b.description),
        b.id,
        js(&b.name),
        b.block,
        b.created_at()
    )?;
    for (i, h) in sha256s.iter().enumerate() {
        write!(
            sha,
            "{}\n    \"{}\"",
            if i == 0 { "" } else { "," },
            to_hex(h)
        )?;
    }
    write!(
        sha,
        "{}],\n  \"version\": \"1.0.0\",\n  \"volume_id\": \"{}\"\n}}",
        if sha256s.is_empty() { "" } else { "\n  " },
        b.volume_id
    )?;
    sha.flush()
}

/// Many tiny backups, fast (the scale benchmark: up to millions of them).
///
/// Backup `i` of a tiny share is one 4 KiB block in one chunk, with its
/// `_metadata` and `_sha256file`, in the default container `ab/cd/<id>`.
/// Every tenth backup (`i % 10 == 9`) is an incremental of backup `i - 1`
/// (same volume, one changed block, so its chunk is written): chains and
/// plan have work. Three chunks in four are zlib, the fourth uncompressed.
/// The chunk contents come from a few precomputed variants (compressed
/// bytes, md5 and sha256 computed once), so writing a backup is a
/// directory and three small files. Deterministic: the same `i` always
/// gives the same files (see [`TINY_VERSION`]).
pub mod tiny {
    use super::*;
    use rayon::prelude::*;

    /// Changes whenever what [`write`] produces changes (caches of
    /// generated shares are keyed by it).
    pub const TINY_VERSION: u32 = 1;
    /// Volume size, object size and hash block of every tiny backup.
    pub const BLOCK: u64 = 4096;
    const VARIANTS: usize = 61;
    const SALT: u64 = 0x5ca1e;

    /// Precomputed chunk contents.
    pub struct Variants {
        v: Vec<Variant>,
    }

    struct Variant {
        zlib: Vec<u8>,
        raw: Vec<u8>,
        md5: String,
        sha: [u8; 32],
    }

    impl Default for Variants {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Variants {
        pub fn new() -> Self {
            let v = (0..VARIANTS as u64)
                .map(|k| {
                    let mut raw = vec![0u8; BLOCK as usize];
                    // Text-like: compressible, as most volume data is.
                    let words: [&[u8]; 6] = [
                        b"backup ", b"volume ", b"cinder ", b"chunk ", b"nfs ", b"INFO ",
                    ];
                    let mut x = crate::verify::stable_hash(&[&k.to_le_bytes(), b"tiny"]) | 1;
                    let mut i = 0;
                    while i < raw.len() {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let w = words[(x % 6) as usize];
                        let n = w.len().min(raw.len() - i);
                        raw[i..i + n].copy_from_slice(&w[..n]);
                        i += n;
                    }
                    let zlib = compress("zlib", &raw).unwrap_or_else(|_| raw.clone());
                    Variant {
                        md5: to_hex(&Md5::digest(&raw)),
                        sha: Sha256::digest(&raw).into(),
                        zlib,
                        raw,
                    }
                })
                .collect();
            Variants { v }
        }
        fn of(&self, i: u64) -> &Variant {
            &self.v[(i % VARIANTS as u64) as usize]
        }
    }

    /// The id of backup `i`.
    pub fn id(i: u64) -> String {
        uuid_from(i, SALT)
    }

    /// The parent of backup `i`, if it is an incremental.
    pub fn parent(i: u64) -> Option<u64> {
        (i % 10 == 9).then(|| i - 1)
    }

    fn volume_of(i: u64) -> u64 {
        parent(i).unwrap_or(i)
    }

    /// `YYYYmmddHHMMSS`: one second apart from 2026-11-01 00:00:00 (30
    /// days hold 2.59 million backups; later ones share the last day).
    fn timestamp(i: u64) -> String {
        let day = (i / 86_400).min(29);
        let s = i % 86_400;
        format!(
            "202611{:02}{:02}{:02}{:02}",
            day + 1,
            s / 3600,
            s / 60 % 60,
            s % 60
        )
    }

    fn spec(i: u64, vars: &Variants) -> SynthBackup {
        SynthBackup {
            id: id(i),
            volume_id: uuid_from(volume_of(i), SALT + 1),
            container: None,
            legacy_prefix: false,
            timestamp: timestamp(i),
            name: Some(format!("scale-{i}")),
            description: None,
            size: BLOCK,
            object_size: BLOCK,
            block: BLOCK,
            compression: if i % 4 == 3 { "none" } else { "zlib" }.into(),
            parent: parent(i).map(|p| (id(p), vec![vars.of(p).sha])),
        }
    }

    /// Write backup `i` under `share`.
    #[allow(clippy::disallowed_methods)] // see write_backup
    pub fn write(share: &Path, i: u64, vars: &Variants) -> std::io::Result<()> {
        let b = spec(i, vars);
        let var = vars.of(i);
        let dir = share.join(crate::share::default_container(&b.id));
        std::fs::create_dir_all(&dir)?;
        let prefix = b.prefix();
        let name = format!("{prefix}-00001");
        // Cinder stores a chunk that does not shrink uncompressed.
        let (bytes, comp) = if b.compression == "zlib" && var.zlib.len() < var.raw.len() {
            (&var.zlib, "zlib")
        } else {
            (&var.raw, "none")
        };
        std::fs::write(dir.join(&name), bytes)?;
        let object = format!(
            "    {{\n      \"{name}\": {{\n        \"compression\": \"{comp}\",\n        \"length\": {BLOCK},\n        \"md5\": \"{}\",\n        \"offset\": 0\n      }}\n    }}",
            var.md5
        );
        std::fs::write(
            dir.join(format!("{prefix}_metadata")),
            metadata_text(&b, &[object]),
        )?;
        write_sha256file(&dir.join(format!("{prefix}_sha256file")), &b, &[var.sha])
    }

    /// Write backups `0..n` under `share`, in parallel (rayon's pool).
    /// `done(k)` is called now and then with how many are written.
    pub fn write_share(share: &Path, n: u64, done: &(dyn Fn(u64) + Sync)) -> std::io::Result<()> {
        let vars = Variants::new();
        let step = 1000u64;
        let count = std::sync::atomic::AtomicU64::new(0);
        (0..n.div_ceil(step)).into_par_iter().try_for_each(|c| {
            for i in c * step..((c + 1) * step).min(n) {
                write(share, i, &vars)?;
            }
            let k = count.fetch_add(
                (step).min(n - c * step),
                std::sync::atomic::Ordering::Relaxed,
            );
            done(k + step.min(n - c * step));
            Ok(())
        })
    }
}

/// A deterministic UUID-shaped id from a number (for generated shares).
pub fn uuid_from(n: u64, salt: u64) -> String {
    let h = crate::verify::stable_hash(&[&n.to_le_bytes(), &salt.to_le_bytes()]);
    let g = crate::verify::stable_hash(&[&h.to_le_bytes()]);
    let hex = format!("{h:016x}{g:016x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::scan::{ShareIndex, whole};
    use crate::share::{BackupEntry, Share};

    /// verify --deep of every backup loaded.
    fn verify_deep(
        share: &Share,
        ix: &ShareIndex,
        loaded: &[BackupEntry],
    ) -> crate::verify::VerifyReport {
        let all: Vec<_> = loaded.iter().collect();
        let opts = crate::verify::VerifyOptions {
            deep: true,
            ..Default::default()
        };
        crate::verify::verify(
            share,
            &ix.on(share),
            &all,
            &opts,
            &crate::progress::NoProgress,
        )
    }

    fn spec(id: u64, parent: Option<(String, Vec<[u8; 32]>)>) -> SynthBackup {
        SynthBackup {
            id: uuid_from(id, 1),
            volume_id: uuid_from(0, 2),
            container: None,
            legacy_prefix: false,
            timestamp: format!("202611240609{:02}", id),
            name: Some(format!("b{id}")),
            description: None,
            size: 1 << 20,
            object_size: 256 << 10,
            block: 32768,
            compression: "zlib".into(),
            parent,
        }
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // compares two generated trees
    fn tiny_shares_verify_ok_with_chains_and_rewrite_identically() {
        let dir = tempfile::tempdir().unwrap();
        tiny::write_share(dir.path(), 25, &|_| {}).unwrap();
        let share = Share::open(dir.path()).unwrap();
        let (s, loaded) = whole(&share);
        assert_eq!(loaded.len(), 25);
        assert!(s.findings.is_empty(), "{:?}", s.findings);
        let incr: Vec<_> = loaded.iter().filter(|b| b.parent_id().is_some()).collect();
        assert_eq!(incr.len(), 2, "backups 9 and 19 are incrementals");
        let r = verify_deep(&share, &s, &loaded);
        assert!(r.ok, "{:?}", r.findings);
        // A 4 KiB volume is not a whole number of GiB: one warning each,
        // nothing else.
        assert_eq!(r.findings.len(), 25, "{:?}", r.findings);
        assert!(
            r.findings
                .iter()
                .all(|f| f.code == "size-mismatch"
                    && f.severity == crate::findings::Severity::Warning),
            "{:?}",
            r.findings
        );
        // Deterministic: backup 9 written again gives the same bytes.
        let again = tempfile::tempdir().unwrap();
        let vars = tiny::Variants::new();
        tiny::write(again.path(), 9, &vars).unwrap();
        let c = crate::share::default_container(&tiny::id(9));
        let mut names: Vec<_> = std::fs::read_dir(again.path().join(&c))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names.len(), 3);
        for n in names {
            assert_eq!(
                std::fs::read(again.path().join(&c).join(&n)).unwrap(),
                std::fs::read(dir.path().join(&c).join(&n)).unwrap(),
                "{n:?}"
            );
        }
    }

    #[test]
    fn written_backups_scan_and_verify_clean() {
        let dir = tempfile::tempdir().unwrap();
        let mut vol = vec![0u8; 1 << 20];
        vol[100_000..140_000].fill(7);
        let full = write_backup(dir.path(), &spec(1, None), &mut |o, b| {
            b.copy_from_slice(&vol[o as usize..o as usize + b.len()])
        })
        .unwrap();
        assert_eq!(full.chunks, 4);
        vol[700_000] = 1;
        let inc = write_backup(
            dir.path(),
            &spec(2, Some((uuid_from(1, 1), full.sha256s.clone()))),
            &mut |o, b| b.copy_from_slice(&vol[o as usize..o as usize + b.len()]),
        )
        .unwrap();
        assert_eq!(inc.chunks, 1);
        let share = Share::open(dir.path()).unwrap();
        let (s, loaded) = whole(&share);
        assert_eq!(loaded.len(), 2);
        assert!(s.findings.is_empty(), "{:?}", s.findings);
        let r = verify_deep(&share, &s, &loaded);
        assert!(r.ok, "{:?}", r.findings);
        assert!(
            !r.findings.iter().any(|f| f.code != "size-mismatch"),
            "{:?}",
            r.findings
        );
        assert!(loaded[0].open_sha256(&share).unwrap().is_canonical());
    }
}
