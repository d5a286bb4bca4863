#![allow(clippy::disallowed_methods)] // tests build and inspect shares directly
//! cbr over `nfs://` against NFS-Ganesha on loopback (issue 24), as ratios
//! measured in the same run:
//! - `verify --deep` over nfs:// against the same verify of the local
//!   directory the server exports (goal >= 0.8);
//! - `ls` of 10,000 backups through a delay proxy of DELAY ms each way
//!   (examples/delay_proxy.rs; `tc netem` is not available here),
//!   against the floor of RPCs / concurrency x round trip (goal within 3x),
//!   with the sequential walk (`?concurrency=1`) beside it;
//! - one large chunk read by cbr's client against `nfs-cp` (libnfs, Debian
//!   package libnfs-utils) of the same chunk: a throughput anchor.
//!
//! Needs root: the server is set up by `tests/interop/nfs.sh serve`, which
//! runs this program again inside the server's network namespace. Prints
//! `nfs: SKIPPED (why)` where it cannot run.
//!
//! Run: cargo bench --bench nfs
//! (CBR_NFS_DELAY_MS: the proxy's delay each way, default 1;
//! CBR_NFS_BENCH_BACKUPS: backups listed, default 10,000;
//! CBR_NFS_BENCH_PARTS: which of verify,ls,chunk, default all;
//! CBR_NFS_BENCH_RUNS: runs of each ls measure, default 1, the median
//! reported with min and max; CBR_NFS_BENCH_SEQ=0 skips the sequential ls.)

#[path = "common.rs"]
mod common;
use common::*;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

fn main() {
    if std::env::var_os("CBR_NFS_BENCH_INSIDE").is_some() {
        inside();
    } else {
        outside();
    }
}

fn backups() -> u64 {
    std::env::var("CBR_NFS_BENCH_BACKUPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// Write the shares, then serve them and run [`inside`] next to the server.
fn outside() {
    if !rustix_is_root() {
        println!("nfs: SKIPPED (needs root for the server's network namespace)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let top = dir.path();
    let n = backups();
    eprintln!("writing {n} backups (ls) and the verify share...");
    for i in 0..n {
        let b = cbr::synth::SynthBackup {
            id: cbr::synth::uuid_from(i, 1),
            volume_id: cbr::synth::uuid_from(i / 3, 2),
            container: None,
            legacy_prefix: false,
            timestamp: format!("2026{i:010}"),
            name: Some(format!("b{i}")),
            description: None,
            size: 2 * 4096,
            object_size: 4096,
            block: 4096,
            compression: "zlib".into(),
            parent: None,
        };
        cbr::synth::write_backup(&top.join("ls"), &b, &mut |o, buf| buf.fill((o % 7) as u8))
            .expect("write");
    }
    // verify --deep: a zlib backup of 1 GiB in 128 MiB chunks (the usual
    // case: CPU-bound), and one stored uncompressed in one 256 MiB chunk
    // (network-bound; also the chunk nfs-cp reads).
    for (k, (size, object, comp)) in [
        (1u64 << 30, 128u64 << 20, "zlib"),
        (256 << 20, 256 << 20, "none"),
    ]
    .into_iter()
    .enumerate()
    {
        let b = cbr::synth::SynthBackup {
            id: cbr::synth::uuid_from(k as u64, 3),
            volume_id: cbr::synth::uuid_from(k as u64, 4),
            container: None,
            legacy_prefix: false,
            timestamp: format!("2026112400000{k}"),
            name: Some(format!("deep-{comp}")),
            description: None,
            size,
            object_size: object,
            block: 32768,
            compression: comp.into(),
            parent: None,
        };
        cbr::synth::write_backup(&top.join("deep"), &b, &mut thin_volume(k as u64 + 1))
            .expect("write");
    }
    // The largest chunk, linked (hard: same file) at the top of the export:
    // libnfs's nfs-cp takes the URL's directory for the export to mount.
    let chunk = walkdir::WalkDir::new(top.join("deep"))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .max_by_key(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .expect("a chunk");
    std::fs::hard_link(chunk.path(), top.join("chunk")).expect("link the chunk");
    // The export squashes root: everything world-readable.
    let st = std::process::Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(top)
        .status()
        .expect("chmod");
    assert!(st.success());
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/nfs.sh");
    let me = std::env::current_exe().expect("this program");
    let delay = std::env::var("CBR_NFS_DELAY_MS").unwrap_or_else(|_| "1".into());
    let out = std::process::Command::new("bash")
        .arg(&harness)
        .arg("serve")
        .arg(top)
        .arg("--")
        .arg("env")
        .arg("CBR_NFS_BENCH_INSIDE=1")
        .arg(format!("CBR_NFS_BENCH_LOCAL={}", top.display()))
        .arg(&me)
        .env("CBR_NFS_DELAY_MS", &delay)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run tests/interop/nfs.sh serve");
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    if !text.contains("SKIPPED") {
        assert!(
            out.status.success(),
            "the benchmark failed inside the namespace"
        );
    }
}

fn rustix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Seconds of one run of cbr, asserting its exit status.
fn timed(args: &[&str], want: i32) -> f64 {
    let t = Instant::now();
    let out = cbr().args(args).output().expect("run cbr");
    let s = t.elapsed().as_secs_f64();
    assert_eq!(
        out.status.code(),
        Some(want),
        "cbr {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    s
}

/// What the scan does, through the library, with a pool of `threads`
/// walkers: every directory opened by path and listed, every `_metadata`
/// read. Returns the `_metadata` files read.
fn lib_walk(url: &str, threads: usize) -> usize {
    use cbr::share::source::EntryKind;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let src = cbr::share::nfs::NfsSource::open(url).expect("mount");
    let share = cbr::share::Share::from_source(std::sync::Arc::new(src));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    let metas = AtomicUsize::new(0);
    fn walk<'s>(
        share: &'s cbr::share::Share,
        rel: String,
        s: &rayon::Scope<'s>,
        metas: &'s AtomicUsize,
    ) {
        let dir = share.open_dir(&rel).expect("open_dir");
        for e in dir.entries().expect("entries") {
            let path = if rel.is_empty() {
                e.name.clone()
            } else {
                format!("{rel}/{}", e.name)
            };
            match e.kind {
                EntryKind::Dir => s.spawn(move |s| walk(share, path, s, metas)),
                EntryKind::File if e.name.ends_with("_metadata") => {
                    dir.read(&e.name, 1 << 20).expect("read _metadata");
                    metas.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
    }
    pool.scope(|s| walk(&share, String::new(), s, &metas));
    metas.into_inner()
}

/// What the delay proxy has forwarded so far: "calls" (all RPCs), and
/// the calls by procedure ("READ", "READDIRPLUS", ...).
fn proxy_counts(control: &str) -> std::collections::BTreeMap<String, u64> {
    let mut s = std::net::TcpStream::connect(control).expect("the proxy's control port");
    let mut t = String::new();
    s.read_to_string(&mut t).expect("read");
    let m: std::collections::BTreeMap<String, u64> = t
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect();
    assert!(m.contains_key("calls"), "the proxy answered {t:?}");
    m
}

/// The calls the delay proxy has forwarded so far.
fn proxy_calls(control: &str) -> u64 {
    proxy_counts(control)["calls"]
}

/// The calls by procedure between two of [`proxy_counts`], as
/// "READDIRPLUS 20000, READ 10000".
fn by_proc(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
) -> String {
    let mut v: Vec<(u64, &str)> = after
        .iter()
        .filter(|(k, _)| k.as_str() != "calls")
        .map(|(k, n)| (n - before.get(k).copied().unwrap_or(0), k.as_str()))
        .filter(|(n, _)| *n > 0)
        .collect();
    v.sort_by(|a, b| b.cmp(a));
    v.iter()
        .map(|(n, k)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn inside() {
    let local = std::env::var("CBR_NFS_BENCH_LOCAL").expect("CBR_NFS_BENCH_LOCAL");
    let url = std::env::var("CBR_NFS_URL").expect("CBR_NFS_URL");
    let control = std::env::var("CBR_NFS_PROXY_CONTROL").expect("CBR_NFS_PROXY_CONTROL");
    let delay_ms: f64 = std::env::var("CBR_NFS_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let parts = std::env::var("CBR_NFS_BENCH_PARTS").unwrap_or_else(|_| "verify,ls,chunk".into());
    let part = |p: &str| parts.split(',').any(|x| x == p);
    let mut out = std::io::stdout().lock();
    if part("verify") {
        bench_verify(&mut out, &local, &url);
    }
    if part("ls") {
        bench_ls(&mut out, &local, &control, delay_ms);
    }
    if part("chunk") {
        bench_chunk(&mut out, &local, &url);
    }
}

/// verify --deep, nfs:// against the local directory, same run.
fn bench_verify(out: &mut impl Write, local: &str, url: &str) {
    let deep_local = format!("{local}/deep");
    let deep_nfs = format!("{url}/deep");
    timed(&["verify", "--deep", "-q", "--share", &deep_local], 0); // page cache warm
    let l = median(3, || {
        timed(&["verify", "--deep", "-q", "--share", &deep_local], 0);
    })
    .as_secs_f64();
    let n = median(3, || {
        timed(&["verify", "--deep", "-q", "--share", &deep_nfs], 0);
    })
    .as_secs_f64();
    let bytes: u64 = walkdir::WalkDir::new(&deep_local)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    writeln!(
        out,
        "nfs: verify --deep of 1.25 GiB ({:.0} MiB on the share): local {l:.3}s, nfs:// {n:.3}s; \
         ratio local/nfs {:.2} (goal >= 0.8)",
        bytes as f64 / (1 << 20) as f64,
        l / n
    )
    .expect("stdout");
}

/// min / median / max of `v` (not empty).
fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

/// ls of the backups through the delay proxy, against the floor: each
/// measure `CBR_NFS_BENCH_RUNS` times (default 1), the ratio of the median.
fn bench_ls(out: &mut impl Write, local: &str, control: &str, delay_ms: f64) {
    let rtt = 2.0 * delay_ms / 1000.0;
    let count = backups();
    let runs: usize = std::env::var("CBR_NFS_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1);
    let seq = std::env::var("CBR_NFS_BENCH_SEQ").map_or(true, |v| v != "0");
    let delayed = |q: &str| format!("nfs://127.0.0.1:3049/export/ls?mountport=20048{q}");
    let mut modes = vec![("concurrent (default, concurrency=16)", "", 16.0, false)];
    if seq {
        modes.push(("sequential (concurrency=1)", "&concurrency=1", 1.0, false));
    }
    // ls --json also reads each backup's sha256file header.
    modes.push((
        "concurrent, --json (sha256file headers too)",
        "",
        16.0,
        true,
    ));
    for (label, q, conc, json) in modes {
        let mut times = Vec::new();
        let mut calls = 0;
        let mut procs = String::new();
        for _ in 0..runs {
            let before = proxy_counts(control);
            let share = delayed(q);
            let mut args = vec!["ls", "--share", &share];
            if json {
                args.push("--json");
            }
            times.push(timed(&args, 0));
            let after = proxy_counts(control);
            calls = after["calls"] - before["calls"];
            procs = by_proc(&before, &after);
        }
        let (lo, med, hi) = spread(&times);
        let floor = calls as f64 / conc * rtt;
        writeln!(
            out,
            "nfs: ls of {count} backups, {delay_ms} ms each way: {label}: {med:.2}s \
             (min {lo:.2}, max {hi:.2}, {runs} run(s)), {calls} RPCs ({procs}); \
             floor (RPCs / concurrency x {:.0} ms) {floor:.2}s; {:.2}x the floor (min {:.2}x; \
             goal <= 3x)",
            rtt * 1000.0,
            med / floor,
            lo / floor,
        )
        .expect("stdout");
    }
    // The same walk through the library with the pool the scan will size
    // from the source's walk_concurrency() (issue 25's walker): what the
    // client serves with 16 walkers at once (one walker is the sequential
    // ls above).
    {
        let threads = 16usize;
        let mut times = Vec::new();
        let mut calls = 0;
        for _ in 0..runs {
            let before = proxy_calls(control);
            let t = Instant::now();
            let metas = lib_walk(&delayed(""), threads);
            times.push(t.elapsed().as_secs_f64());
            calls = proxy_calls(control) - before;
            assert_eq!(metas as u64, count);
        }
        let (lo, med, hi) = spread(&times);
        let floor = calls as f64 / threads as f64 * rtt;
        writeln!(
            out,
            "nfs: library walk (the scan's work) with {threads} walkers: {med:.2}s (min {lo:.2}, \
             max {hi:.2}), {calls} RPCs; floor {floor:.2}s; {:.2}x the floor (goal <= 3x)",
            med / floor
        )
        .expect("stdout");
    }
    // What the server and the client cost without the delay: the other
    // bound on a walk through the proxy.
    let direct = std::env::var("CBR_NFS_URL").expect("CBR_NFS_URL");
    let undelayed = median(runs, || {
        timed(&["ls", "--share", &format!("{direct}/ls")], 0);
    })
    .as_secs_f64();
    let local_ls = median(3, || {
        timed(&["ls", "--share", &format!("{local}/ls")], 0);
    })
    .as_secs_f64();
    writeln!(
        out,
        "nfs: ls of {count} backups without the delay: over nfs:// {undelayed:.2}s, on the local \
         directory {local_ls:.2}s (for scale)"
    )
    .expect("stdout");
}

/// One large chunk: cbr's client against nfs-cp of libnfs.
fn bench_chunk(out: &mut impl Write, local: &str, url: &str) {
    let rel = "chunk";
    let size = std::fs::metadata(format!("{local}/chunk"))
        .expect("the chunk")
        .len();
    let mib = size as f64 / (1 << 20) as f64;
    let nfs = cbr::share::nfs::NfsShare::open(url).expect("mount");
    let f = nfs.open_file(rel).expect("the chunk");
    let ours = median(3, || {
        let mut r = nfs.reader(&f, 0);
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0u64;
        loop {
            match r.read(&mut buf).expect("read") {
                0 => break,
                k => got += k as u64,
            }
        }
        assert_eq!(got, size);
    })
    .as_secs_f64();
    let have_nfs_cp = std::process::Command::new("nfs-cp")
        .arg("--help")
        .output()
        .is_ok();
    // nfs-cp writes a new regular file (not /dev/null, not one that
    // exists): one in memory, removed after each copy.
    let copy = format!("/dev/shm/cbr-bench-nfs-cp.{}", std::process::id());
    let theirs = have_nfs_cp.then(|| {
        median(3, || {
            let st = std::process::Command::new("nfs-cp")
                .arg(format!("nfs://127.0.0.1/export/{rel}"))
                .arg(&copy)
                .stdout(std::process::Stdio::null())
                .status()
                .expect("nfs-cp");
            assert!(st.success(), "nfs-cp failed");
            std::fs::remove_file(&copy).expect("remove nfs-cp's copy");
        })
        .as_secs_f64()
    });
    match theirs {
        Some(t) => writeln!(
            out,
            "nfs: one {mib:.0} MiB chunk: cbr's client {:.0} MiB/s, nfs-cp (libnfs) {:.0} MiB/s; \
             ratio {:.2}",
            mib / ours,
            mib / t,
            t / ours
        ),
        None => writeln!(
            out,
            "nfs: one {mib:.0} MiB chunk: cbr's client {:.0} MiB/s; nfs-cp not installed \
             (apt-get install libnfs-utils)",
            mib / ours
        ),
    }
    .expect("stdout");
}
