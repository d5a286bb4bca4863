//! sha256 of 32 KiB hash blocks, four at a time (`cbr::sha256_lanes`)
//! against one at a time (`sha2`), on the same data in the same run.
//!
//! Run: cargo bench --bench sha
use sha2::Digest;

fn main() {
    let buf: Vec<u8> = (0..(64u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let blocks: Vec<&[u8]> = buf.chunks(32768).collect();
    let mut out = vec![[0u8; 32]; blocks.len()];
    let mib = buf.len() as f64 / (1u64 << 20) as f64;
    let (mut one, mut many) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        let t = std::time::Instant::now();
        for (b, o) in blocks.iter().zip(out.iter_mut()) {
            *o = sha2::Sha256::digest(b).into();
        }
        one = one.min(t.elapsed().as_secs_f64());
        let want = out.clone();
        let t = std::time::Instant::now();
        cbr::sha256_lanes::digest_many(&blocks, &mut out);
        many = many.min(t.elapsed().as_secs_f64());
        assert_eq!(out, want, "the lanes must hash as sha2 does");
    }
    println!(
        "sha256 of 32 KiB blocks: one at a time {:.0} MiB/s, four at a time {:.0} MiB/s: ratio {:.2}",
        mib / one,
        mib / many,
        one / many
    );
}
