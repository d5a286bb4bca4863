#![allow(clippy::disallowed_methods)] // benchmarks build inputs directly
//! `cbr plan` of 1,000 records (goal: under a second), against `cbr decode`
//! of the same input measured in the same run (the floor: reading them);
//! then `cbr plan` of one chain of 16,000 links given children first, whose
//! root is missing so that every link is refused (goal: under 2 s: planning
//! is linear in the chain's length).
//! Run: cargo bench --bench plan

#[path = "common.rs"]
mod common;
use base64::Engine;
use common::*;

fn main() {
    let dir = tempfile::tempdir().expect("tmp");
    let fx = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cinder-29/records");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.join("full-zlib.export.json")).expect("read"))
            .expect("json");
    let json = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(v["backup_url"].as_str().expect("url"))
            .expect("b64"),
    )
    .expect("utf8");
    // One record as base64: id `i`, parent `parent` (or a full), project `p`.
    let record = |i: u64, parent: Option<String>, p: u64| -> String {
        let parent = parent.map_or("null".to_string(), |x| format!("\"{x}\""));
        let r = json
            .replace(
                "a0f6583f-d913-426d-a8e2-d262262a433b",
                &cbr::synth::uuid_from(i, 77),
            )
            .replace("\"parent_id\": null", &format!("\"parent_id\": {parent}"))
            .replace("bcae33bdf5b84dc9ab9ca6518a438561", &format!("{p:032x}"));
        let mut b = base64::engine::general_purpose::STANDARD.encode(r);
        b.push_str("\n\n");
        b
    };
    // 250 chains of a full and three incrementals, in 10 source projects.
    let mut text = String::new();
    for i in 0..1000u64 {
        let parent = (i % 4 != 0).then(|| cbr::synth::uuid_from(i - 1, 77));
        text.push_str(&record(i, parent, (i / 4) % 10 + 1));
    }
    let input = dir.path().join("exports.txt");
    std::fs::write(&input, text).expect("write");
    let i = input.to_str().expect("utf8");
    let plan = median(5, || {
        let o = cbr()
            .args(["plan", "-q", "--format", "json", "--default-project"])
            .arg(format!("{:032x}", 0xabcu32))
            .arg(i)
            .output()
            .expect("run");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        assert_eq!(v["summary"]["backups"], 1000);
    });
    let decode = median(5, || {
        let o = cbr().args(["decode", i]).output().expect("run");
        assert!(o.status.success());
    });
    println!(
        "cbr plan of 1,000 records (250 chains, 10 projects): {:.3}s (goal < 1 s); decode of the same input {:.3}s; ratio {:.2}",
        plan.as_secs_f64(),
        decode.as_secs_f64(),
        plan.as_secs_f64() / decode.as_secs_f64()
    );

    // One chain of 16,000 links, children first; its root's parent is in
    // neither the input nor the target, so every link is refused.
    const LINKS: u64 = 16_000;
    let mut chain = String::new();
    for i in (0..LINKS).rev() {
        let parent = cbr::synth::uuid_from(if i == 0 { 1 << 40 } else { i - 1 }, 77);
        chain.push_str(&record(i, Some(parent), 1));
    }
    let input = dir.path().join("chain.txt");
    std::fs::write(&input, chain).expect("write");
    let i = input.to_str().expect("utf8");
    let plan = median(3, || {
        let o = cbr()
            .args(["plan", "-q", "--format", "json", "--default-project"])
            .arg(format!("{:032x}", 0xabcu32))
            .arg(i)
            .output()
            .expect("run");
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        assert_eq!(v["summary"]["refused"], LINKS);
    });
    let decode = median(3, || {
        let o = cbr().args(["decode", i]).output().expect("run");
        assert!(o.status.success());
    });
    println!(
        "cbr plan of one refused chain of 16,000 links (children first): {:.3}s (goal < 2 s); decode of the same input {:.3}s; ratio {:.2}",
        plan.as_secs_f64(),
        decode.as_secs_f64(),
        plan.as_secs_f64() / decode.as_secs_f64()
    );
}
