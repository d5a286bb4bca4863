#![allow(clippy::disallowed_methods)] // writes a benchmark share, not a share it reads
//! Profiling aid: write a 2 GiB thin volume like the benchmarks do.
//! Usage: thin DIR [OBJECT_SIZE] [COMPRESSION (zlib)]
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
        compression: std::env::args().nth(3).unwrap_or_else(|| "zlib".into()),
        parent: None,
    };
    cbr::synth::write_backup(
        std::path::Path::new(&dir),
        &b,
        &mut cbr::synth::thin_volume(11),
    )
    .expect("write");
}
