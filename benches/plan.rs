#![allow(clippy::disallowed_methods)] // benchmarks build inputs directly
//! `cbr plan` of 1,000 records (goal: under a second), against `cbr decode`
//! of the same input measured in the same run (the floor: reading them).
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
    // 250 chains of a full and three incrementals, in 10 source projects.
    let mut text = String::new();
    for i in 0..1000u64 {
        let id = cbr::synth::uuid_from(i, 77);
        let parent = if i % 4 == 0 {
            "null".to_string()
        } else {
            format!("\"{}\"", cbr::synth::uuid_from(i - 1, 77))
        };
        let project = format!("{:032x}", (i / 4) % 10 + 1);
        let r = json
            .replace("a0f6583f-d913-426d-a8e2-d262262a433b", &id)
            .replace("\"parent_id\": null", &format!("\"parent_id\": {parent}"))
            .replace("bcae33bdf5b84dc9ab9ca6518a438561", &project);
        text.push_str(&base64::engine::general_purpose::STANDARD.encode(r));
        text.push_str("\n\n");
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
}
