#![allow(clippy::disallowed_methods)]
//! Profiling aid: write a 2 GiB thin zlib volume like the benchmarks do.
/// Deterministic volume content: ~70% zero blocks, ~20% text-like
/// (compressible), ~10% random, decided per 32 KiB block.
pub fn thin_volume(seed: u64) -> impl FnMut(u64, &mut [u8]) {
    move |offset: u64, buf: &mut [u8]| {
        const B: usize = 32768;
        for (k, block) in buf.chunks_mut(B).enumerate() {
            let idx = offset / B as u64 + k as u64;
            let r = cbr::verify::stable_hash(&[&seed.to_le_bytes(), &idx.to_le_bytes()]);
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

fn main() {
    let dir = std::env::args().nth(1).expect("dir");
    let obj: u64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(64 << 20);
    let b = cbr::synth::SynthBackup {
        id: cbr::synth::uuid_from(1, 11),
        volume_id: cbr::synth::uuid_from(1, 12),
        container: None,
        legacy_prefix: false,
        timestamp: "20261124000001".into(),
        name: None,
        description: None,
        size: 2 << 30,
        object_size: obj,
        block: 32768,
        compression: "zlib".into(),
        parent: None,
    };
    cbr::synth::write_backup(std::path::Path::new(&dir), &b, &mut thin_volume(11)).expect("write");
}
