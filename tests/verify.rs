#![allow(clippy::disallowed_methods)] // tests build and inspect shares directly
//! `cbr verify` (issue 6) and `cbr restore` (issue 7).

mod common;
use common::*;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};

fn id_of(stem: &str) -> String {
    manifest().into_iter().find(|m| m.1 == stem).unwrap().0
}

/// The metadata of a backup and the path of its first chunk with `comp`.
fn chunk_with(share: &Path, stem: &str, comp: &str) -> (PathBuf, String, Value) {
    let meta = find_file(share, &id_of(stem), "_metadata");
    let v: Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    for o in v["objects"].as_array().unwrap() {
        let (name, info) = o.as_object().unwrap().iter().next().unwrap();
        if info["compression"] == comp {
            return (
                meta.parent().unwrap().join(name),
                name.clone(),
                info.clone(),
            );
        }
    }
    panic!("no {comp} chunk in {stem}");
}

fn flip_middle(p: &Path) {
    let mut b = std::fs::read(p).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x55;
    std::fs::write(p, b).unwrap();
}

fn verify_deep(share: &Path) -> (i32, Value) {
    run_json(&[
        "verify",
        "--deep",
        "--json",
        "--jobs",
        "2",
        "--share",
        share.to_str().unwrap(),
    ])
}

#[test]
fn verify_deep_is_clean_on_the_fixture_share() {
    let (_t, share) = share_copy();
    let before = tree_hash(&share);
    let (code, v) = verify_deep(&share);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["backups_checked"], 9);
    assert_eq!(v["chunks_checked"], 53);
    assert!(v["bytes_read"].as_u64().unwrap() > 0);
    assert!(v["findings"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(tree_hash(&share), before);
}

type Inject = fn(&Path) -> String;

/// The backup whose chunk a case damages, so only its chain is read.
fn stem_of_case(name: &str) -> &'static str {
    if name.contains("bz2") || name.contains("sha256 entry") {
        "full-bz2"
    } else if name.contains("zstd") || name.contains("md5") {
        "full-zstd"
    } else if name.contains("zlib chunk") {
        "full-zlib"
    } else {
        "incr2-zlib"
    }
}

#[test]
fn each_fault_is_reported_on_the_right_chunk_with_the_right_code() {
    let cases: Vec<(&str, Inject, &[&str])> = vec![
        (
            "flipped byte in a zlib chunk",
            |s| {
                let (p, n, _) = chunk_with(s, "full-zlib", "zlib");
                flip_middle(&p);
                n
            },
            &[
                "decompress-failed",
                "md5-mismatch",
                "sha256-mismatch",
                "length-mismatch",
            ],
        ),
        (
            "flipped byte in a bz2 chunk",
            |s| {
                let (p, n, _) = chunk_with(s, "full-bz2", "bz2");
                flip_middle(&p);
                n
            },
            &[
                "decompress-failed",
                "md5-mismatch",
                "sha256-mismatch",
                "length-mismatch",
            ],
        ),
        (
            "flipped byte in a zstd chunk",
            |s| {
                let (p, n, _) = chunk_with(s, "full-zstd", "zstd");
                flip_middle(&p);
                n
            },
            &[
                "decompress-failed",
                "md5-mismatch",
                "sha256-mismatch",
                "length-mismatch",
            ],
        ),
        (
            "flipped byte in a none chunk",
            |s| {
                let (p, n, _) = chunk_with(s, "incr2-zlib", "none");
                flip_middle(&p);
                n
            },
            &["md5-mismatch", "sha256-mismatch"],
        ),
        (
            "truncated chunk",
            |s| {
                let (p, n, _) = chunk_with(s, "incr2-zlib", "none");
                let b = std::fs::read(&p).unwrap();
                std::fs::write(&p, &b[..b.len() - 1000]).unwrap();
                n
            },
            &["length-mismatch"],
        ),
        (
            "metadata md5 edited",
            |s| {
                let meta = find_file(s, &id_of("full-zstd"), "_metadata");
                let mut v: Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
                let o = v["objects"][0].as_object_mut().unwrap();
                let name = o.keys().next().unwrap().clone();
                o.get_mut(&name).unwrap()["md5"] = json!("00000000000000000000000000000000");
                std::fs::write(&meta, serde_json::to_string_pretty(&v).unwrap()).unwrap();
                name
            },
            &["md5-mismatch"],
        ),
        (
            "one sha256 entry edited",
            |s| {
                let sha = find_file(s, &id_of("full-bz2"), "_sha256file");
                let text = std::fs::read_to_string(&sha).unwrap();
                // Entry 100 of the canonical layout.
                let first = text.find("\"sha256s\": [\n").unwrap() + 13;
                let at = first + 100 * 72 + 5;
                let mut b = text.into_bytes();
                b[at] = if b[at] == b'0' { b'1' } else { b'0' };
                std::fs::write(&sha, b).unwrap();
                let (_, n, _) = chunk_with(s, "full-bz2", "bz2");
                n
            },
            &["sha256-mismatch"],
        ),
        (
            "zlib stream inflating far past its length",
            |s| {
                let (p, n, info) = chunk_with(s, "incr2-zlib", "zlib");
                let len = info["length"].as_u64().unwrap() as usize;
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(&vec![0u8; len * 64]).unwrap();
                std::fs::write(&p, e.finish().unwrap()).unwrap();
                n
            },
            &["length-mismatch", "sha256-mismatch"],
        ),
    ];
    for ((name, inject, allowed), md5) in cases.into_iter().flat_map(|c| [(c, false), (c, true)]) {
        let (_t, share) = share_copy();
        let chunk = inject(&share);
        let before = tree_hash(&share);
        let id = id_of(stem_of_case(name));
        let mut args = vec![
            "verify",
            "--deep",
            "--json",
            "--share",
            share.to_str().unwrap(),
            &id,
        ];
        if md5 {
            args.push("--md5");
        }
        let (code, v) = run_json(&args);
        if name.contains("md5") && !md5 {
            // The data is intact and proven block by block by sha256 (what
            // Cinder's restore relies on); the md5 is not computed, and
            // nothing is claimed proven by it.
            assert_eq!(code, 0, "{name}: {v}");
            assert_eq!(v["proven_by"]["md5_only"], 0, "{v}");
            assert_eq!(v["proven_by"]["md5_also"], 0, "{v}");
            assert!(v["proven_by"]["sha256"].as_u64().unwrap() > 0, "{v}");
            continue;
        }
        assert_eq!(code, 1, "{name} (md5 {md5}): {v}");
        let errors: Vec<&Value> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] == "error")
            .collect();
        assert!(!errors.is_empty(), "{name}");
        // The code that names the fault must be there (for a flipped byte in
        // a compressed stream, which one depends on where the decoder notices).
        let required: &[&str] = match name {
            n if n.contains("truncated") || n.contains("inflating") => &["length-mismatch"],
            n if n.contains("md5") => &["md5-mismatch"],
            n if n.contains("sha256 entry") => &["sha256-mismatch"],
            n if n.contains("none chunk") && md5 => &["md5-mismatch"],
            n if n.contains("none chunk") => &["sha256-mismatch"],
            _ => allowed,
        };
        assert!(
            errors
                .iter()
                .any(|f| required.contains(&f["code"].as_str().unwrap())),
            "{name}: none of {required:?} in {v}"
        );
        for f in &errors {
            let code = f["code"].as_str().unwrap();
            assert!(allowed.contains(&code), "{name}: unexpected {code}: {f}");
            assert!(
                f["path"].as_str().unwrap().ends_with(&chunk),
                "{name}: blamed {} not {chunk}",
                f["path"]
            );
            assert!(f["backup_id"].is_string());
        }
        assert_eq!(
            tree_hash(&share),
            before,
            "{name}: verify changed the share"
        );
    }
}

#[test]
fn shards_partition_the_backups() {
    let (_t, share) = share_copy();
    let s = share.to_str().unwrap();
    let n = 3;
    let mut total = 0;
    for k in 1..=n {
        let (code, v) = run_json(&[
            "verify",
            "--json",
            "--share",
            s,
            "--shard",
            &format!("{k}/{n}"),
        ]);
        assert_eq!(code, 0);
        total += v["backups_checked"].as_u64().unwrap();
    }
    assert_eq!(total, 9);
    let (code, _, err) = run(&["verify", "--share", s, "--shard", "4/3"]);
    assert_eq!(code, 2);
    assert!(err.contains("--shard"));
}

#[test]
fn sample_is_reproducible_with_a_seed() {
    let (_t, share) = share_copy();
    let s = share.to_str().unwrap();
    let a = run_json(&[
        "verify", "--deep", "--json", "--share", s, "--sample", "30", "--seed", "42",
    ])
    .1;
    let b = run_json(&[
        "verify", "--deep", "--json", "--share", s, "--sample", "30", "--seed", "42",
    ])
    .1;
    assert_eq!(a["chunks_checked"], b["chunks_checked"]);
    assert_eq!(a["bytes_read"], b["bytes_read"]);
    assert!(a["chunks_checked"].as_u64().unwrap() < 53);
}

#[test]
fn json_progress_lines_parse() {
    let (_t, share) = share_copy();
    let (code, _, err) = run(&[
        "verify",
        "--deep",
        "--progress",
        "json",
        "--share",
        share.to_str().unwrap(),
        "f953",
    ]);
    assert_eq!(code, 0);
    let lines: Vec<Value> = err
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("progress line is JSON"))
        .collect();
    assert!(lines.len() >= 2);
    assert_eq!(lines[0]["event"], "start");
    assert!(lines.iter().any(|l| l["event"] == "finish"));
    assert!(lines.iter().all(|l| l["bytes_total"].is_u64()));
}

#[test]
fn restore_gives_every_manifest_image_and_is_sparse() {
    let (t, share) = share_copy();
    let before = tree_hash(&share);
    for (id, stem, sha, _) in manifest() {
        let out = t.path().join(format!("{stem}.img"));
        let (code, _, err) = run(&[
            "restore",
            "-q",
            "--share",
            share.to_str().unwrap(),
            &id,
            "--output",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{stem}: {err}");
        let mut h = <sha2::Sha256 as sha2::Digest>::new();
        let mut f = std::fs::File::open(&out).unwrap();
        std::io::copy(&mut f, &mut h).unwrap();
        let got = format!("{:x}", sha2::Digest::finalize(h));
        assert_eq!(got, sha, "{stem}");
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&out).unwrap();
        assert!(
            m.blocks() * 512 < m.len() / 20,
            "{stem}: not sparse ({} of {})",
            m.blocks() * 512,
            m.len()
        );
        std::fs::remove_file(&out).unwrap();
    }
    assert_eq!(tree_hash(&share), before);
}

#[test]
fn restore_fails_on_faults_and_leaves_no_file() {
    let (t, share) = share_copy();
    let (p, _, _) = chunk_with(&share, "incr2-zlib", "none");
    flip_middle(&p);
    let out = t.path().join("img");
    let (code, stdout, _) = run(&[
        "restore",
        "-q",
        "--share",
        share.to_str().unwrap(),
        &id_of("incr2-zlib"),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("md5-mismatch") || stdout.contains("sha256-mismatch"));
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("cbr-partial"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn restore_refuses_an_existing_file_without_force() {
    let (t, share) = share_copy();
    let out = t.path().join("img");
    std::fs::write(&out, b"precious").unwrap();
    let (code, _, err) = run(&[
        "restore",
        "--share",
        share.to_str().unwrap(),
        &id_of("full-zstd"),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--force"));
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    let (code, _, _) = run(&[
        "restore",
        "-q",
        "--force",
        "--share",
        share.to_str().unwrap(),
        &id_of("full-zstd"),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 1 << 30);
    let (code, _, _) = run(&[
        "restore",
        "--share",
        share.to_str().unwrap(),
        &id_of("full-zstd"),
        "-o",
        "-",
    ]);
    assert_eq!(code, 2);
}

#[test]
fn restore_dry_run_prints_the_plan_and_writes_nothing() {
    let (t, share) = share_copy();
    let out = t.path().join("img");
    let (code, stdout, _) = run(&[
        "restore",
        "--dry-run",
        "--share",
        share.to_str().unwrap(),
        &id_of("incr2-zlib"),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(stdout.contains("(full)"));
    assert_eq!(stdout.matches("backup ").count(), 3, "{stdout}");
    assert!(!out.exists());
}

/// Blocks are hashed in batches (`HASH_BATCH`) several at a time: with
/// 64-byte hash blocks a 1 MiB chunk is 256 batches, and a wrong block in
/// any lane of any batch must be the one blamed, by verify and by restore,
/// while the intact share restores byte for byte.
#[test]
fn small_hash_blocks_are_proven_and_blamed_across_batches() {
    use cbr::synth::{SynthBackup, uuid_from, write_backup};
    let t = tempfile::tempdir().unwrap();
    let share = t.path().join("share");
    let b = SynthBackup {
        id: uuid_from(1, 77),
        volume_id: uuid_from(2, 77),
        container: None,
        legacy_prefix: false,
        timestamp: "20261125000000".into(),
        name: None,
        description: None,
        size: 1 << 20,
        object_size: 1 << 20,
        block: 64,
        compression: "none".into(),
        parent: None,
    };
    // Every fifth block zero, the others distinct.
    let content = |o: u64, buf: &mut [u8]| {
        for (i, x) in buf.iter_mut().enumerate() {
            let at = o + i as u64;
            *x = if (at / 64).is_multiple_of(5) {
                0
            } else {
                (at * 7 + at / 64) as u8 | 1
            };
        }
    };
    write_backup(&share, &b, &mut { content }).unwrap();
    let mut image = vec![0u8; 1 << 20];
    content(0, &mut image);
    let s = share.to_str().unwrap();
    let out = t.path().join("img");
    let restore = || {
        run(&[
            "restore",
            "-q",
            "--share",
            s,
            &b.id,
            "-o",
            out.to_str().unwrap(),
        ])
    };
    let (code, stdout, _) = restore();
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(std::fs::read(&out).unwrap(), image, "the restored image");
    std::fs::remove_file(&out).unwrap();
    let chunk = find_file(&share, &b.id, "-00001");
    let mut bytes = std::fs::read(&chunk).unwrap();
    // Blocks in the first batch, a batch's first and last, a later lane,
    // and a zero block.
    let wrong = [3u64, 64, 127, 4001, 16380];
    for w in wrong {
        bytes[(w * 64 + 9) as usize] ^= 0x80;
    }
    std::fs::write(&chunk, &bytes).unwrap();
    let (code, v) = run_json(&["verify", "--deep", "--json", "--share", s]);
    assert_eq!(code, 1, "{v}");
    let blamed: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "sha256-mismatch")
        .map(|f| f["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(blamed.len(), wrong.len(), "{blamed:?}");
    for (w, m) in wrong.iter().zip(&blamed) {
        assert!(m.contains(&format!("hash block {w} ")), "block {w}: {m}");
    }
    let proven = v["proven_by"]["sha256"].as_u64().unwrap()
        + v["proven_by"]["zero_compare"].as_u64().unwrap();
    assert_eq!(proven, (1 << 20) - 64 * wrong.len() as u64, "{v}");
    let (code, stdout, _) = restore();
    assert_eq!(code, 1, "{stdout}");
    for w in wrong {
        assert!(
            stdout.contains(&format!("hash block {w} ")),
            "restore, block {w}: {stdout}"
        );
    }
    assert!(!out.exists());
}

/// The chunk a trailing-bytes case appends to: the only chunk of full-bz2
/// and full-zstd, the last of full-zlib (so the extra bytes of a longer
/// chunk would land past the volume's end).
fn last_chunk(share: &Path, stem: &str) -> PathBuf {
    let meta = find_file(share, &id_of(stem), "_metadata");
    let v: Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let last = v["objects"].as_array().unwrap().last().unwrap();
    let name = last.as_object().unwrap().keys().next().unwrap();
    meta.parent().unwrap().join(name)
}

/// 4 KiB of non-zero data compressed as `comp` (one stream or frame).
fn stream_of(comp: &str) -> Vec<u8> {
    let data = vec![b'X'; 4096];
    match comp {
        "bz2" => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        }
        "zlib" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        }
        _ => zstd::encode_all(&data[..], 3).unwrap(),
    }
}

/// What follows a chunk's compressed stream, judged as Cinder 29's restore
/// decodes the chunk: with Python's `bz2.decompress`, `zlib.decompress`
/// and `zstd.decompress` of the whole file (tests/interop step 6 shows the
/// real Cinder's outcome on the same cases). The expected codes are the
/// errors cbr must report; none means Cinder restores the right bytes.
#[test]
fn bytes_after_a_chunks_stream_are_judged_as_cinders_python_decompress_reads_them() {
    let damaged_bz2 = || {
        let mut s = stream_of("bz2");
        let n = s.len() / 2;
        s[n] ^= 0x55;
        s
    };
    let cases: Vec<(&str, &str, Vec<u8>, &[&str])> = vec![
        // bz2.decompress reads every whole stream: more bytes than length.
        (
            "bz2 whole second stream",
            "bz2",
            stream_of("bz2"),
            &["length-mismatch"],
        ),
        // A second stream cut off: ValueError, the restore fails.
        (
            "bz2 cut-off second stream",
            "bz2",
            stream_of("bz2")[..30].to_vec(),
            &["decompress-failed"],
        ),
        // Not a stream, or a damaged one: ignored, with all that follows.
        ("bz2 damaged second stream", "bz2", damaged_bz2(), &[]),
        ("bz2 trailing garbage", "bz2", b"garbage\n".to_vec(), &[]),
        // zlib.decompress stops at the end of the first stream.
        ("zlib second stream", "zlib", stream_of("zlib"), &[]),
        ("zlib trailing garbage", "zlib", b"garbage\n".to_vec(), &[]),
        // zstd.decompress reads every frame, and refuses anything else.
        (
            "zstd second frame",
            "zstd",
            stream_of("zstd"),
            &["length-mismatch"],
        ),
        (
            "zstd cut-off second frame",
            "zstd",
            stream_of("zstd")[..10].to_vec(),
            &["decompress-failed"],
        ),
        (
            "zstd trailing garbage",
            "zstd",
            b"garbage\n".to_vec(),
            &["decompress-failed"],
        ),
    ];
    for (name, comp, tail, want) in cases {
        let (_t, share) = share_copy();
        let stem = format!("full-{comp}");
        let chunk = last_chunk(&share, &stem);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&chunk)
            .unwrap();
        f.write_all(&tail).unwrap();
        drop(f);
        let (code, v) = run_json(&[
            "verify",
            "--deep",
            "--json",
            "--share",
            share.to_str().unwrap(),
            &id_of(&stem),
        ]);
        let errors: Vec<&str> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] == "error")
            .map(|f| f["code"].as_str().unwrap())
            .collect();
        assert_eq!(errors, want.to_vec(), "{name}: {v}");
        assert_eq!(code, if want.is_empty() { 0 } else { 1 }, "{name}: {v}");
    }
}

#[test]
fn restore_refuses_a_bz2_chunk_with_a_second_stream() {
    let (t, share) = share_copy();
    let chunk = last_chunk(&share, "full-bz2");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&chunk)
        .unwrap();
    f.write_all(&stream_of("bz2")).unwrap();
    drop(f);
    let out = t.path().join("img");
    let (code, stdout, _) = run(&[
        "restore",
        "-q",
        "--share",
        share.to_str().unwrap(),
        &id_of("full-bz2"),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("length-mismatch"), "{stdout}");
    assert!(!out.exists());
}

/// `verify --json` is written as it goes: "findings" first, the counts
/// after (same keys, same values); `--json-lines` holds the same findings,
/// one a line, and the counts on its last line.
#[test]
fn verify_json_streams_findings_first_and_json_lines_hold_the_same() {
    let (_t, share) = share_copy();
    let (p, _, _) = chunk_with(&share, "full-zlib", "zlib");
    flip_middle(&p);
    let s = share.to_str().unwrap();
    let (code, out, _) = run(&["verify", "--deep", "--json", "--share", s]);
    assert_eq!(code, 1);
    let doc: Value = serde_json::from_str(&out).unwrap();
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(keys.first().map(|k| k.as_str()), Some("findings"));
    for k in [
        "ok",
        "backups_checked",
        "chunks_checked",
        "bytes_read",
        "complete",
    ] {
        assert!(doc.get(k).is_some(), "{k} missing: {keys:?}");
    }
    assert_eq!(doc["ok"], false);
    assert!(
        codes(&doc, "error")
            .iter()
            .any(|c| c == "sha256-mismatch" || c == "decompress-failed")
    );
    let (code2, lines, _) = run(&["verify", "--deep", "--json-lines", "--share", s]);
    assert_eq!(code2, 1);
    let lines: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (last, rest) = lines.split_last().unwrap();
    let found: Vec<&Value> = rest.iter().map(|l| &l["finding"]).collect();
    let want: Vec<&Value> = doc["findings"].as_array().unwrap().iter().collect();
    assert_eq!(found, want);
    let mut counts = doc.clone();
    counts.as_object_mut().unwrap().remove("findings");
    assert_eq!(last["report"], counts);
}
