#![allow(clippy::disallowed_methods)] // tests build and inspect shares directly
//! Hostile and corrupt shares (issue 10): every case is a temp copy of the
//! fixture share with one thing bent. Each asserts the exit status, the
//! exact finding code, that the share's tree is unchanged, that nothing
//! was written outside the output directory, and — where a link or a name
//! leads out of the share — that the target outside is a *valid* copy, so
//! that following it would have changed the verdict to OK.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn id_of(stem: &str) -> String {
    manifest().into_iter().find(|m| m.1 == stem).unwrap().0
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn write_json(p: &Path, v: &Value) {
    std::fs::write(p, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

/// (name, info) of the objects of a metadata document.
fn objects(meta: &Value) -> Vec<(String, Value)> {
    meta["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let (n, i) = o.as_object().unwrap().iter().next().unwrap();
            (n.clone(), i.clone())
        })
        .collect()
}

/// Rename object `index` of a metadata file to `name` (the file stays).
fn rename_object(meta: &Path, index: usize, name: &str) {
    let mut v = read_json(meta);
    let o = v["objects"][index].as_object_mut().unwrap();
    let (_, info) = o
        .iter()
        .next()
        .map(|(k, i)| (k.clone(), i.clone()))
        .unwrap();
    o.clear();
    o.insert(name.to_string(), info);
    write_json(meta, &v);
}

/// What a case ran: exit status, stdout, stderr.
struct Ran {
    code: i32,
    out: String,
    err: String,
}

/// Run cbr with a deadline (a hang is a failure, not a stuck suite).
fn run_bounded(args: &[String]) -> Ran {
    let bin = assert_cmd::cargo::cargo_bin("cbr");
    let mut child = Command::new(bin)
        .args(args)
        .env_remove("CBR_SHARE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("cbr {args:?} did not finish in 60 s: it hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    Ran {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A hostile share: the temp dir holds `share/`, `outside/` and `out/`.
struct Hostile {
    _t: tempfile::TempDir,
    share: PathBuf,
    outside: PathBuf,
    out: PathBuf,
}

fn hostile() -> Hostile {
    let (t, share) = share_copy();
    let outside = t.path().join("outside");
    let out = t.path().join("out");
    std::fs::create_dir(&outside).unwrap();
    std::fs::create_dir(&out).unwrap();
    Hostile {
        _t: t,
        share,
        outside,
        out,
    }
}

impl Hostile {
    fn s(&self) -> String {
        self.share.to_string_lossy().into_owned()
    }
    fn file(&self, stem: &str, suffix: &str) -> PathBuf {
        find_file(&self.share, &id_of(stem), suffix)
    }
    fn verify(&self, deep: bool) -> Vec<String> {
        let mut a = vec![
            "verify".to_string(),
            "--json".into(),
            "--share".into(),
            self.s(),
        ];
        if deep {
            a.push("--deep".into());
        }
        a
    }
    /// `verify` of one backup (and its chain): faster where that is all a
    /// case bends.
    fn verify_one(&self, deep: bool, stem: &str) -> Vec<String> {
        let mut a = self.verify(deep);
        a.push(id_of(stem));
        a
    }
    fn restore(&self, stem: &str) -> Vec<String> {
        vec![
            "restore".into(),
            "--share".into(),
            self.s(),
            id_of(stem),
            "--output".into(),
            self.out.join("vol.img").to_string_lossy().into_owned(),
        ]
    }
    fn check(&self, record: &Path) -> Vec<String> {
        vec![
            "check".into(),
            "--json".into(),
            "--share".into(),
            self.s(),
            record.to_string_lossy().into_owned(),
        ]
    }
    /// A decoded fixture record, edited, written beside the share.
    fn record(&self, stem: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
        let (code, out, err) = run(&[
            "decode",
            records_dir()
                .join(format!("{stem}.export.json"))
                .to_str()
                .unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        let mut v: Value = serde_json::from_str(&out).unwrap();
        edit(&mut v);
        let p = self.outside.join("../record.json");
        std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
        p
    }
}

/// Assert what a case must: exit status, the code among the findings
/// (JSON or human output), the share unchanged, the output directory empty
/// unless the run succeeded.
fn expect(h: &Hostile, before: &str, args: &[String], status: i32, code: &str) -> Ran {
    let r = run_bounded(args);
    assert_eq!(
        r.code, status,
        "cbr {args:?}: exit {} (want {status})\nstdout: {}\nstderr: {}",
        r.code, r.out, r.err
    );
    assert!(
        !r.err.contains("panicked"),
        "cbr {args:?} panicked: {}",
        r.err
    );
    if status == 2 {
        assert!(r.out.is_empty(), "stdout on exit 2: {}", r.out);
    }
    if !code.is_empty() {
        assert!(
            r.out.contains(&format!("\"{code}\"")) || r.out.contains(code) || r.err.contains(code),
            "cbr {args:?}: no {code} in\nstdout: {}\nstderr: {}",
            r.out,
            r.err
        );
    }
    assert_eq!(
        tree_hash(&h.share),
        before,
        "cbr {args:?} changed the share"
    );
    if status != 0 {
        let left: Vec<_> = std::fs::read_dir(&h.out).unwrap().collect();
        assert!(left.is_empty(), "cbr {args:?} left {left:?}");
    }
    r
}

/// The finding codes with severity error in a JSON report.
fn errors(r: &Ran) -> Vec<String> {
    let v: Value = serde_json::from_str(&r.out).unwrap_or(Value::Null);
    codes(&v, "error")
}

// ---- It reads outside the share ----

#[test]
fn chunk_symlink_to_a_valid_copy_outside_is_never_opened() {
    let h = hostile();
    let chunk = h.file("full-zlib", "-00001");
    let copy = h.outside.join("chunk");
    std::fs::copy(&chunk, &copy).unwrap();
    std::fs::remove_file(&chunk).unwrap();
    std::os::unix::fs::symlink(&copy, &chunk).unwrap();
    let before = tree_hash(&h.share);
    let r = expect(
        &h,
        &before,
        &h.verify_one(true, "full-zlib"),
        1,
        "symlink-refused",
    );
    assert!(errors(&r).contains(&"read-failed".to_string()), "{}", r.out);
    expect(&h, &before, &h.restore("full-zlib"), 1, "read-failed");
}

#[test]
fn metadata_names_that_climb_or_are_absolute_are_refused() {
    for (case, make_name) in [
        (
            "climbs",
            (|_: &Path, n: &str| format!("../../../../outside/{n}")) as fn(&Path, &str) -> String,
        ),
        ("absolute", |outside: &Path, n: &str| {
            outside.join(n).to_string_lossy().into_owned()
        }),
    ] {
        let h = hostile();
        let meta = h.file("full-zlib", "_metadata");
        let (name, _) = objects(&read_json(&meta)).remove(0);
        let dir = meta.parent().unwrap();
        // The named file outside is a valid copy of the chunk: reading it
        // would make the backup verify clean.
        std::fs::rename(dir.join(&name), h.outside.join(&name)).unwrap();
        rename_object(&meta, 0, &make_name(&h.outside, &name));
        let before = tree_hash(&h.share);
        expect(&h, &before, &h.verify(true), 1, "name-invalid");
        let r = expect(&h, &before, &h.restore("full-zlib"), 1, "name-invalid");
        assert!(r.out.contains("FAILED"), "{case}: {}", r.out);
    }
}

#[test]
fn record_service_metadata_that_climbs_is_refused_before_opening() {
    let h = hostile();
    let meta = h.file("full-zlib", "_metadata");
    let name = meta.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::copy(&meta, h.outside.join(&name)).unwrap();
    let prefix = name.trim_end_matches("_metadata").to_string();
    let rec = h.record("full-zlib", |v| {
        v["service_metadata"] = Value::String(format!("../../../../outside/{prefix}"));
    });
    let before = tree_hash(&h.share);
    let r = expect(&h, &before, &h.check(&rec), 1, "name-invalid");
    assert!(!r.out.contains("\"ok\": true"), "{}", r.out);
}

#[test]
fn container_through_a_link_out_of_the_share_is_refused() {
    let h = hostile();
    // a0/ moves outside, a link takes its place.
    std::fs::rename(h.share.join("a0"), h.outside.join("a0")).unwrap();
    std::os::unix::fs::symlink(h.outside.join("a0"), h.share.join("a0")).unwrap();
    let before = tree_hash(&h.share);
    let rec = h.record("full-zlib", |_| {});
    expect(&h, &before, &h.check(&rec), 1, "container-escapes-share");
}

// ---- It says OK when it is not ----

#[test]
fn backup_directory_linked_out_of_the_share_fails_verify() {
    let h = hostile();
    std::fs::rename(h.share.join("a0"), h.outside.join("a0")).unwrap();
    std::os::unix::fs::symlink(h.outside.join("a0"), h.share.join("a0")).unwrap();
    let before = tree_hash(&h.share);
    let r = expect(&h, &before, &h.verify(false), 1, "symlink-refused");
    // The link, and the incrementals whose parent it hides.
    let e = errors(&r);
    assert_eq!(e[0], "symlink-refused", "{}", r.out);
    assert!(e[1..].iter().all(|c| c == "parent-missing"), "{}", r.out);
}

#[test]
fn sha256s_cut_short_refuses_restore() {
    for (stem, keep) in [
        ("full-zlib", 0usize),
        ("full-zlib", 16384),
        ("incr2-zlib", 100),
    ] {
        let h = hostile();
        let sha = h.file(stem, "_sha256file");
        let mut v = read_json(&sha);
        v["sha256s"].as_array_mut().unwrap().truncate(keep);
        write_json(&sha, &v);
        let before = tree_hash(&h.share);
        expect(&h, &before, &h.restore(stem), 1, "size-mismatch");
        expect(&h, &before, &h.verify_one(false, stem), 1, "size-mismatch");
    }
}

#[test]
fn offset_near_two_to_the_64_is_out_of_range_not_wrapped() {
    let h = hostile();
    let meta = h.file("full-zlib", "_metadata");
    let mut v = read_json(&meta);
    let o = v["objects"][1].as_object_mut().unwrap();
    let info = o.values_mut().next().unwrap();
    info["offset"] = serde_json::json!(18446744073709551600u64);
    write_json(&meta, &v);
    let before = tree_hash(&h.share);
    expect(&h, &before, &h.verify(false), 1, "value-out-of-range");
    let rec = h.record("full-zlib", |_| {});
    expect(&h, &before, &h.check(&rec), 1, "value-out-of-range");
}

#[test]
fn record_size_that_wraps_times_gib_is_out_of_range() {
    let h = hostile();
    let rec = h.record("full-zlib", |v| {
        v["size"] = serde_json::json!(17179869185u64); // 2^34 + 1
    });
    let before = tree_hash(&h.share);
    let r = expect(&h, &before, &h.check(&rec), 1, "value-out-of-range");
    assert!(!r.out.contains("\"ok\": true"));
}

/// The first hash block an incremental does not store.
fn inherited_block(meta: &Path, block: u64) -> u64 {
    let mut stored: Vec<(u64, u64)> = objects(&read_json(meta))
        .iter()
        .map(|(_, i)| {
            let (o, l) = (i["offset"].as_u64().unwrap(), i["length"].as_u64().unwrap());
            (o / block, (o + l).div_ceil(block))
        })
        .collect();
    stored.sort();
    let mut i = 0;
    for (a, e) in stored {
        if i < a {
            return i;
        }
        i = i.max(e);
    }
    i
}

#[test]
fn wrong_hash_of_an_inherited_block_fails_verify_as_it_fails_restore() {
    let h = hostile();
    let sha = h.file("incr1-zlib", "_sha256file");
    let mut v = read_json(&sha);
    let block = v["chunk_size"].as_u64().unwrap();
    let i = inherited_block(&h.file("incr1-zlib", "_metadata"), block) as usize;
    let e = v["sha256s"][i].as_str().unwrap().to_string();
    let flipped = if e.starts_with('0') { "1" } else { "0" };
    v["sha256s"][i] = Value::String(format!("{flipped}{}", &e[1..]));
    write_json(&sha, &v);
    let before = tree_hash(&h.share);
    expect(
        &h,
        &before,
        &h.verify_one(false, "incr1-zlib"),
        1,
        "inherited-mismatch",
    );
    expect(
        &h,
        &before,
        &h.verify_one(true, "incr1-zlib"),
        1,
        "inherited-mismatch",
    );
    expect(
        &h,
        &before,
        &h.restore("incr1-zlib"),
        1,
        "inherited-mismatch",
    );
}

// ---- It crashes or hangs ----

#[test]
fn huge_chunk_size_is_a_finding_not_an_abort() {
    for cs in [
        "1099511627776",
        "9223372036854775808",
        "18446744073709551615",
        "18446744073709551616",
        "0",
        "-1",
    ] {
        let h = hostile();
        let sha = h.file("full-zlib", "_sha256file");
        let text = std::fs::read_to_string(&sha).unwrap();
        let bent = text.replace("\"chunk_size\": 32768", &format!("\"chunk_size\": {cs}"));
        assert_ne!(bent, text);
        std::fs::write(&sha, bent).unwrap();
        let before = tree_hash(&h.share);
        let want = if cs.starts_with('-') || cs == "18446744073709551616" {
            "sha256file-invalid"
        } else {
            "value-out-of-range"
        };
        expect(&h, &before, &h.verify_one(true, "full-zlib"), 1, want);
        expect(&h, &before, &h.restore("full-zlib"), 1, want);
    }
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
    assert_eq!(unsafe { libc_mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

unsafe extern "C" {
    #[link_name = "mkfifo"]
    fn libc_mkfifo(path: *const std::ffi::c_char, mode: u32) -> i32;
}

#[test]
fn fifo_chunk_inside_or_behind_a_link_does_not_block() {
    for behind_link in [false, true] {
        let h = hostile();
        let chunk = h.file("full-zlib", "-00002");
        std::fs::remove_file(&chunk).unwrap();
        if behind_link {
            let fifo = h.outside.join("fifo");
            mkfifo(&fifo);
            std::os::unix::fs::symlink(&fifo, &chunk).unwrap();
        } else {
            mkfifo(&chunk);
        }
        let before = tree_hash(&h.share);
        expect(
            &h,
            &before,
            &h.verify_one(true, "full-zlib"),
            1,
            "read-failed",
        );
        expect(&h, &before, &h.restore("full-zlib"), 1, "read-failed");
    }
}

// ---- It leaks and leaves things ----

#[test]
fn restore_output_inside_the_share_is_refused_before_anything_is_created() {
    let h = hostile();
    let before = tree_hash(&h.share);
    for target in [
        h.share.join("vol.img"),
        h.share.join("a0/new.img"),
        h.share.join("a0/../a0/x.img"),
    ] {
        let mut a = h.restore("full-zlib");
        let n = a.len();
        a[n - 1] = target.to_string_lossy().into_owned();
        let r = expect(&h, &before, &a, 2, "");
        assert!(r.err.contains("inside the share"), "{}", r.err);
    }
    // Through a link from outside to a directory inside the share.
    let sublink = h.outside.join("sublink");
    std::os::unix::fs::symlink(h.share.join("a0"), &sublink).unwrap();
    let mut a = h.restore("full-zlib");
    let n = a.len();
    a[n - 1] = sublink.join("img.raw").to_string_lossy().into_owned();
    let r = expect(&h, &before, &a, 2, "");
    assert!(r.err.contains("inside the share"), "{}", r.err);
    // Through a link to the share from elsewhere, too.
    let link = h.outside.join("share-link");
    std::os::unix::fs::symlink(&h.share, &link).unwrap();
    let mut a = h.restore("full-zlib");
    let n = a.len();
    a[n - 1] = link.join("vol.img").to_string_lossy().into_owned();
    let r = expect(&h, &before, &a, 2, "");
    assert!(r.err.contains("inside the share"), "{}", r.err);
}

/// A share with one slow-to-restore backup: 2 GiB of non-zero, highly
/// compressible data in zlib chunks.
fn slow_share(root: &Path) -> String {
    use cbr::synth::{SynthBackup, uuid_from, write_backup};
    let b = SynthBackup {
        id: uuid_from(1, 42),
        volume_id: uuid_from(2, 42),
        container: None,
        legacy_prefix: false,
        timestamp: "20261125000000".into(),
        name: Some("slow".into()),
        description: None,
        size: 2 << 30,
        object_size: 256 << 20,
        block: 32768,
        compression: "zlib".into(),
        parent: None,
    };
    write_backup(root, &b, &mut |_, buf| buf.fill(1)).unwrap();
    b.id
}

/// 128 + the signal's number, the status a shell reports for it.
fn signal_status(sig: &str) -> i32 {
    match sig {
        "HUP" => 129,
        "INT" => 130,
        "TERM" => 143,
        _ => unreachable!(),
    }
}

#[test]
fn signals_during_restore_remove_the_partial_image_and_exit_128_plus_signo() {
    let t = tempfile::tempdir().unwrap();
    let share = t.path().join("share");
    let out = t.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let id = slow_share(&share);
    for sig in ["TERM", "HUP", "INT"] {
        let bin = assert_cmd::cargo::cargo_bin("cbr");
        let mut child = Command::new(bin)
            .args([
                "restore",
                "--share",
                share.to_str().unwrap(),
                &id,
                "--jobs",
                "1",
            ])
            .arg("--output")
            .arg(out.join("vol.img"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the partial file, then signal.
        let start = Instant::now();
        while std::fs::read_dir(&out).unwrap().next().is_none() {
            assert!(start.elapsed() < Duration::from_secs(60), "no partial file");
            std::thread::sleep(Duration::from_millis(5));
        }
        let done_before_signal = child.try_wait().unwrap().is_some();
        Command::new("kill")
            .args([&format!("-{sig}"), &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        assert!(
            !done_before_signal,
            "restore finished before SIG{sig}: make it slower"
        );
        assert_eq!(
            status.code(),
            Some(signal_status(sig)),
            "SIG{sig}: {status:?}"
        );
        let left: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
        assert!(left.is_empty(), "SIG{sig} left {left:?}");
    }
}

// ---- It writes under the share (issue 20: the gate out) ----

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn journal_readers_never_create_a_journal_in_the_share_nor_through_a_link_into_it() {
    let h = hostile();
    let s = h.s();
    let id = id_of("full-zlib");
    let dangling = h.outside.join("j.sqlite");
    std::os::unix::fs::symlink(h.share.join("made-by-cbr.sqlite"), &dangling).unwrap();
    let before = tree_hash(&h.share);
    for j in [
        h.share.join("j.sqlite"),
        h.share.join("new/j.sqlite"),
        dangling.clone(),
    ] {
        let j = j.to_string_lossy().into_owned();
        for a in [
            args(&["ls", "--share", &s, "--journal", &j]),
            args(&["show", "--share", &s, &id, "--journal", &j]),
            args(&["journal", "report", "--share", &s, "--journal", &j]),
        ] {
            let r = expect(&h, &before, &a, 2, "");
            assert!(r.err.contains("inside the share"), "{a:?}: {}", r.err);
        }
    }
    // A reader never creates a journal (nor its directory) elsewhere either.
    let nowhere = h.outside.join("nope/j.sqlite");
    let r = expect(
        &h,
        &before,
        &args(&["ls", "--share", &s, "--journal", nowhere.to_str().unwrap()]),
        2,
        "",
    );
    assert!(r.err.contains("no journal"), "{}", r.err);
    assert!(!h.outside.join("nope").exists());
}

#[test]
fn a_journal_kept_in_the_share_is_refused_and_left_as_it_is() {
    let h = hostile();
    let s = h.s();
    // A real journal, in rollback mode, put inside the share.
    let j = h.outside.join("j.sqlite");
    let (code, _, err) = run(&[
        "verify",
        "--deep",
        "-q",
        "--share",
        &s,
        "--journal",
        j.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let c = rusqlite::Connection::open(&j).unwrap();
    c.pragma_update(None, "journal_mode", "DELETE").unwrap();
    drop(c);
    let inside = h.share.join("j.sqlite");
    std::fs::copy(&j, &inside).unwrap();
    let before = tree_hash(&h.share);
    let ji = inside.to_string_lossy().into_owned();
    for a in [
        args(&["ls", "--share", &s, "--journal", &ji]),
        args(&["journal", "report", "--journal", &ji]),
        args(&["journal", "report", "--share", &s, "--journal", &ji]),
        args(&["verify", "--deep", "--share", &s, "--journal", &ji]),
        args(&[
            "journal",
            "merge",
            "--into",
            h.outside.join("m.sqlite").to_str().unwrap(),
            &ji,
        ]),
    ] {
        let r = expect(&h, &before, &a, 2, "");
        assert!(r.err.contains("inside the share"), "{a:?}: {}", r.err);
    }
}

#[test]
fn plan_per_project_never_writes_through_a_link_planted_in_its_directory() {
    const DST: &str = "0123456789abcdef0123456789abcdef";
    let h = hostile();
    let meta = h.file("full-zlib", "_metadata");
    let dir = h.outside.join("plans");
    std::fs::create_dir(&dir).unwrap();
    let planted = dir.join(format!("{DST}.sh"));
    std::os::unix::fs::symlink(&meta, &planted).unwrap();
    let before = tree_hash(&h.share);
    let r = expect(
        &h,
        &before,
        &args(&[
            "plan",
            "--share",
            &h.s(),
            "--from-share",
            "--default-project",
            DST,
            "--per-project",
            dir.to_str().unwrap(),
        ]),
        2,
        "",
    );
    assert!(r.err.contains("inside the share"), "{}", r.err);
    assert!(r.err.contains(planted.to_str().unwrap()), "{}", r.err);
    assert_eq!(std::fs::read_link(&planted).unwrap(), meta);
}

#[test]
fn restore_into_a_fifo_or_a_character_device_is_refused_at_once() {
    let h = hostile();
    let fifo = h.outside.join("fifo");
    mkfifo(&fifo);
    let before = tree_hash(&h.share);
    for (target, kind) in [
        (fifo.to_string_lossy().into_owned(), "a FIFO"),
        ("/dev/null".to_string(), "a character device"),
    ] {
        let mut a = h.restore("full-zlib");
        let n = a.len();
        a[n - 1] = target.clone();
        a.push("--force".into());
        let started = Instant::now();
        let r = expect(&h, &before, &a, 2, "");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{target}: not at once"
        );
        assert!(
            r.err.contains(&target) && r.err.contains(kind),
            "{target}: {}",
            r.err
        );
    }
}

#[test]
fn signals_during_verify_exit_128_plus_signo() {
    use std::io::{BufRead, BufReader};
    let t = tempfile::tempdir().unwrap();
    let share = t.path().join("share");
    let id = slow_share(&share);
    for sig in ["TERM", "HUP", "INT"] {
        let bin = assert_cmd::cargo::cargo_bin("cbr");
        let mut child = Command::new(bin)
            .args(["verify", "--deep", "--progress", "json", "--jobs", "1"])
            .args(["--share", share.to_str().unwrap(), &id])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Signal once it has started reading chunks.
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        err.read_line(&mut first).unwrap();
        assert!(first.contains("\"start\""), "{first}");
        let done_before_signal = child.try_wait().unwrap().is_some();
        Command::new("kill")
            .args([&format!("-{sig}"), &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        assert!(
            !done_before_signal,
            "verify finished before SIG{sig}: make it slower"
        );
        assert_eq!(
            status.code(),
            Some(signal_status(sig)),
            "SIG{sig}: {status:?}"
        );
    }
}

// ---- It fails where it should not ----

#[test]
fn a_closed_stdout_is_success_without_a_word() {
    let h = hostile();
    let s = h.s();
    let full = id_of("full-zlib");
    let rec = records_dir().join("full-zlib.export.json");
    let rec = rec.to_str().unwrap();
    let p = "0123456789abcdef0123456789abcdef";
    let runs: Vec<Vec<&str>> = vec![
        vec!["ls", "--share", &s],
        vec!["ls", "--json", "--share", &s],
        vec!["ls", "--tree", "--share", &s],
        vec!["show", "--share", &s, &full],
        vec!["show", "--json", "--share", &s, &full],
        vec!["verify", "--share", &s],
        vec!["verify", "--json", "--share", &s],
        vec!["check", "--share", &s, rec],
        vec!["check", "--json", "--share", &s, rec],
        vec!["decode", rec],
        vec!["decode", "--json", rec],
        vec!["encode", rec],
        vec!["rewrite", "-q", "--project-id", p, rec],
        vec!["lint", rec],
        vec!["lint", "--json", rec],
        vec!["recover", "-q", "--share", &s, &full],
        vec![
            "restore",
            "--share",
            &s,
            &full,
            "--output",
            "x",
            "--dry-run",
        ],
        vec!["plan", "-q", "--default-project", p, rec],
        vec![
            "plan",
            "-q",
            "--format",
            "json",
            "--default-project",
            p,
            rec,
        ],
        vec!["plan", "-q", "--format", "md", "--default-project", p, rec],
        vec!["completions", "bash"],
    ];
    for args in runs {
        // The reader is gone before cbr writes a byte: every write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = Command::new(assert_cmd::cargo::cargo_bin("cbr"))
            .args(&args)
            .env_remove("CBR_SHARE")
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "cbr {args:?} | (closed): {:?}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.stderr.is_empty(),
            "cbr {args:?} | (closed) said: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn plan_refuses_a_share_path_that_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let t = tempfile::tempdir().unwrap();
    let share = t
        .path()
        .join(std::ffi::OsStr::from_bytes(b"share-\xff\xfe"));
    copy_tree(&fixtures().join("cinder-29/share"), &share);
    let before = tree_hash(&share);
    let o = cbr()
        .args([
            "plan",
            "--default-project",
            "0123456789abcdef0123456789abcdef",
        ])
        .arg("--share")
        .arg(&share)
        .arg(records_dir().join("full-zlib.export.json"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(o.stdout.is_empty(), "a script was written");
    assert!(err.contains("is not UTF-8"), "{err}");
    assert_eq!(tree_hash(&share), before);
}

// ---- It writes what a terminal, a markdown viewer or a shell acts on ----

/// A string that, printed raw, retitles the terminal (OSC), returns to the
/// start of the line and erases it (CR, CSI 2K), reverses what follows
/// (bidi override), clears the screen through a C1 CSI, holds a DEL, and
/// starts a forged row of its own after a newline.
const EVIL: &str = "evil\u{1b}]0;pwned\u{7}\r\u{1b}[2K\u{202e}\u{9b}2J\u{7f}\nFORGED ROW";

/// A character a terminal acts on rather than shows (the newlines that end
/// cbr's own lines are not among them).
fn acted_on(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Assert that `text` (one stream of one run) shows EVIL only as escapes:
/// no character a terminal acts on, no line the string started.
fn shown_escaped(what: &str, text: &str) {
    if let Some(c) = text.chars().find(|&c| acted_on(c)) {
        panic!("{what}: {c:?} reached the terminal raw:\n{text}");
    }
    assert!(
        !text.lines().any(|l| l.starts_with("FORGED ROW")),
        "{what}: a string from the share started a line of its own:\n{text}"
    );
}

/// The fixture share with EVIL in full-zlib's backup_name and
/// backup_description and in the name of its first chunk, and an
/// incremental (incr2-zlib) whose backup_id ends in EVIL.
fn evil_share() -> Hostile {
    let h = hostile();
    let meta = h.file("full-zlib", "_metadata");
    let mut v = read_json(&meta);
    v["backup_name"] = Value::String(EVIL.into());
    v["backup_description"] = Value::String(EVIL.into());
    write_json(&meta, &v);
    let (first, _) = objects(&v).remove(0);
    rename_object(&meta, 0, &format!("{first}{EVIL}"));
    let meta2 = h.file("incr2-zlib", "_metadata");
    let mut v = read_json(&meta2);
    v["backup_id"] = Value::String(format!("{}{EVIL}", id_of("incr2-zlib")));
    write_json(&meta2, &v);
    h
}

/// A paste of full-zlib with `edit` applied to its decoded record (and the
/// export's backup_service set to `service`), as text.
fn evil_paste(edit: impl FnOnce(&mut Value), service: &str) -> String {
    let (code, out, err) = run(&[
        "decode",
        records_dir()
            .join("full-zlib.export.json")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let mut v: Value = serde_json::from_str(&out).unwrap();
    edit(&mut v);
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let (code, url, err) = run(&["encode", f.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    serde_json::json!({"backup_service": service, "backup_url": url.trim()}).to_string()
}

const NFS: &str = "cinder.backup.drivers.nfs.NFSBackupDriver";

#[test]
fn share_and_record_strings_reach_the_terminal_escaped() {
    let h = evil_share();
    let before = tree_hash(&h.share);
    let s = h.s();
    let full = id_of("full-zlib");
    let record = h.outside.join("evil-record.json");
    std::fs::write(
        &record,
        evil_paste(|v| v["id"] = Value::String(format!("{full}{EVIL}")), NFS),
    )
    .unwrap();
    let rec = record.to_string_lossy().into_owned();
    let named = h.outside.join("evil-name.json");
    std::fs::write(
        &named,
        evil_paste(|v| v["display_name"] = Value::String(EVIL.into()), NFS),
    )
    .unwrap();
    let named = named.to_string_lossy().into_owned();
    // A record whose JSON has a hostile key twice (decode warns about it).
    let key = serde_json::to_string(EVIL).unwrap();
    let dup = h.outside.join("dup.json");
    let (_, text, _) = run(&[
        "decode",
        records_dir()
            .join("full-zlib.export.json")
            .to_str()
            .unwrap(),
    ]);
    std::fs::write(
        &dup,
        text.replacen('{', &format!("{{{key}: 1, {key}: 2,"), 1),
    )
    .unwrap();
    let dup = dup.to_string_lossy().into_owned();
    let out = h.out.join("vol.img").to_string_lossy().into_owned();
    let p = "0123456789abcdef0123456789abcdef";
    let evil_set = format!("display_name={EVIL}");
    let bz2 = id_of("full-zlib");
    // (what, arguments, 2 where it cannot do its job, else 0 or 1)
    let cases: Vec<(&str, Vec<&str>, i32)> = vec![
        ("ls", vec!["ls", "--share", &s], 1),
        ("ls --tree", vec!["ls", "--tree", "--share", &s], 1),
        ("show", vec!["show", "--share", &s, &full], 0),
        ("verify (findings)", vec!["verify", "--share", &s], 1),
        (
            "verify --deep",
            vec!["verify", "--deep", "--share", &s, &full],
            1,
        ),
        (
            "restore (findings)",
            vec!["restore", "--share", &s, &full, "--output", &out],
            1,
        ),
        ("recover (stderr)", vec!["recover", "--share", &s, &bz2], 0),
        ("check (record id)", vec!["check", "--share", &s, &rec], 1),
        (
            "check (record name)",
            vec!["check", "--share", &s, &named],
            1,
        ),
        ("lint", vec!["lint", &rec], 1),
        (
            "plan (stderr)",
            vec!["plan", "--default-project", p, "--format", "json", &rec],
            1,
        ),
        ("decode (duplicate key warning)", vec!["decode", &dup], 0),
        (
            "rewrite (diff on stderr)",
            vec!["rewrite", "--set", &evil_set, &named],
            0,
        ),
        ("error message", vec!["show", "--share", &s, EVIL], 2),
    ];
    for (what, args, status) in cases {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let r = run_bounded(&args);
        assert!(!r.err.contains("panicked"), "{what}: {}", r.err);
        // Findings or none, as the case may be; 2 only where it must be.
        assert!(
            (status == 2) == (r.code == 2) && (0..=2).contains(&r.code),
            "{what}: exit {}\n{}",
            r.code,
            r.err
        );
        assert_eq!(tree_hash(&h.share), before, "{what} changed the share");
        // decode's and plan --format json's stdout is JSON: escaped by JSON's
        // rules, which leave C1 and bidi characters as they are.
        if args[0] != "decode" && !args.contains(&"--format".to_string()) {
            shown_escaped(&format!("{what}: stdout"), &r.out);
        }
        shown_escaped(&format!("{what}: stderr"), &r.err);
    }
}

#[test]
fn ls_and_show_show_a_hostile_name_as_escapes() {
    // The rows above in plain sight: the escape of EVIL is in the output.
    let h = evil_share();
    let (_, out, _) = run(&["show", "--share", &h.s(), &id_of("full-zlib")]);
    assert!(
        out.contains(
            "name        evil\\x1b]0;pwned\\x07\\r\\x1b[2K\\u{202e}\\x9b2J\\x7f\\nFORGED ROW"
        ),
        "{out}"
    );
    let (_, out, _) = run(&["ls", "--share", &h.s()]);
    assert!(out.contains("evil\\x1b]0;pwned\\x07"), "{out}");
    // JSON stays JSON: the exact string, escaped by the serialiser.
    let (_, v) = run_json(&["ls", "--json", "--share", &h.s()]);
    let names: Vec<&str> = v["backups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert!(names.contains(&EVIL), "{v}");
}

#[test]
fn plan_markdown_cannot_forge_rows_headings_or_images() {
    let h = hostile();
    let forged = "x | forged | row |\n# Heading\n![img](http://evil.example/i.png)<b>`";
    let rec = h.outside.join("evil-md.json");
    let two = [
        evil_paste(|v| v["id"] = Value::String(forged.into()), NFS),
        evil_paste(|v| v["project_id"] = Value::String(forged.into()), NFS),
        evil_paste(
            |v| v["id"] = Value::String(format!("{}{EVIL}", id_of("full-bz2"))),
            NFS,
        ),
    ]
    .join("\n");
    std::fs::write(&rec, two).unwrap();
    let p = "0123456789abcdef0123456789abcdef";
    let r = run_bounded(&[
        "plan".into(),
        "--format".into(),
        "md".into(),
        "--default-project".into(),
        p.into(),
        rec.to_string_lossy().into_owned(),
    ]);
    assert!(r.code == 0 || r.code == 1, "exit {}: {}", r.code, r.err);
    shown_escaped("plan --format md: stdout", &r.out);
    shown_escaped("plan --format md: stderr", &r.err);
    // Every line is one cbr wrote: a heading of its own, the summary, or a
    // table row with as many cells as its header.
    let unescaped_pipes = |l: &str| {
        let b = l.as_bytes();
        (0..b.len())
            .filter(|&i| b[i] == b'|' && (i == 0 || b[i - 1] != b'\\'))
            .count()
    };
    let mut cells = 0;
    for l in r.out.lines() {
        if l.is_empty() || l.ends_with("refused.") {
            continue;
        }
        if l.starts_with('#') {
            assert!(
                ["# Migration plan", "## Skipped", "## Refused"].contains(&l),
                "a forged heading: {l:?}\n{}",
                r.out
            );
            continue;
        }
        if l.starts_with("|---") {
            continue;
        }
        assert!(
            l.starts_with("| "),
            "a line not of cbr's table: {l:?}\n{}",
            r.out
        );
        if l.starts_with("| # |") || l.starts_with("| backup | reason |") {
            cells = unescaped_pipes(l);
        }
        assert_eq!(unescaped_pipes(l), cells, "a forged cell: {l:?}\n{}", r.out);
        assert!(!l.contains("!["), "an image: {l:?}");
        assert!(
            !l.contains("](") && !l.contains("<b>"),
            "a link or HTML: {l:?}"
        );
    }
}

// ---- It holds a hostile _metadata in bounded memory ----

#[test]
fn metadata_over_64_mib_is_refused_unread() {
    let h = hostile();
    let meta = h.file("full-zstd", "_metadata");
    // Valid JSON, padded with spaces past the limit (it was 256 MiB).
    let mut text = std::fs::read(&meta).unwrap();
    let close = text.iter().rposition(|b| *b == b'}').unwrap();
    text.splice(close..close, std::iter::repeat_n(b' ', (64 << 20) + 1));
    std::fs::write(&meta, &text).unwrap();
    let before = tree_hash(&h.share);
    let r = expect(&h, &before, &h.verify(false), 1, "value-out-of-range");
    assert!(r.out.contains("67108864"), "{}", r.out);
}

#[test]
fn a_million_missing_chunks_make_a_hundred_findings_and_a_count() {
    let h = hostile();
    let meta = h.file("full-zstd", "_metadata");
    let mut v = read_json(&meta);
    let (_, info) = objects(&v).remove(0);
    let n = 2500;
    let list: Vec<Value> = (0..n)
        .map(|i| serde_json::json!({ format!("missing-{i:05}"): info.clone() }))
        .collect();
    v["objects"] = Value::Array(list);
    write_json(&meta, &v);
    let before = tree_hash(&h.share);
    for args in [
        h.verify_one(false, "full-zstd"),
        h.verify_one(true, "full-zstd"),
    ] {
        // Not `expect`: its pipe is not read until the end, and --deep
        // prints more than a pipe holds.
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = run(&a);
        assert_eq!(code, 1, "{err}");
        assert_eq!(tree_hash(&h.share), before);
        let r = Ran { code, out, err };
        let missing: Vec<String> = errors(&r)
            .into_iter()
            .filter(|c| c == "object-missing")
            .collect();
        // 100 listed by the share checks, one count of the rest; --deep
        // adds as many from reading the chunks.
        let want = if args.contains(&"--deep".to_string()) {
            202
        } else {
            101
        };
        assert_eq!(missing.len(), want, "{args:?}: {}", r.out);
        assert!(
            r.out.contains(&format!("{} more object-missing", n - 100)),
            "{}",
            r.out
        );
    }
}

#[test]
fn emitted_import_lines_keep_a_hostile_service_one_word() {
    // The shell sink's row (fixed with --emit): run in bash, the line's
    // service is one word and nothing in it runs.
    let h = hostile();
    let marker = h.outside.join("pwned");
    let service = format!("nfs; touch {} `touch {0}` $(touch {0})", marker.display());
    let paste = h.outside.join("evil-service.json");
    std::fs::write(&paste, evil_paste(|_| {}, &service)).unwrap();
    for emit in ["cinder", "openstack"] {
        let r = run_bounded(&[
            "encode".into(),
            "--emit".into(),
            emit.into(),
            paste.to_string_lossy().into_owned(),
        ]);
        assert_eq!(r.code, 0, "{}", r.err);
        let script = format!(
            "cinder() {{ printf '%s\\n' \"$@\"; }}\nopenstack() {{ printf '%s\\n' \"$@\"; }}\n{}",
            r.out
        );
        let ran = Command::new("bash")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert!(ran.status.success(), "{emit}: {}", r.out);
        assert!(!marker.exists(), "{emit}: the service ran: {}", r.out);
        assert!(
            String::from_utf8_lossy(&ran.stdout)
                .lines()
                .any(|l| l == service),
            "{emit}: the service is not one word: {}",
            r.out
        );
    }
}
