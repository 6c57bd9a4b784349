//! The DNS recording in examples/ (made by `auditor capture` beside the kernel DNS test),
//! replayed and explained as a user without root would: egress judged by the names each
//! pod resolved, answers from untrusted servers ignored, TTL and grace honoured by the
//! replay's own flags, and the answer that named an address shown.

use std::process::Command;

use serde_json::Value;

const AUDITOR: &str = env!("CARGO_BIN_EXE_auditor");

mod common;
use common::root;

fn auditor(args: &[&str]) -> (bool, String, String) {
    let r = root();
    let out = Command::new(AUDITOR)
        .args(args)
        .args([
            "--allowlist",
            &r.join("allowlist/voice-microservices.yaml")
                .display()
                .to_string(),
            "--inventory",
            &r.join("examples/inventory-dns.yaml").display().to_string(),
            "--overrides",
            &r.join("examples/overrides.yaml").display().to_string(),
            "--baseline",
            &r.join("examples/baseline-dns.yaml").display().to_string(),
        ])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// (verdict, src, dst, port, domain, resolution) of one judged flow.
type Judged = (String, String, String, u64, Option<String>, Option<String>);

/// Every flow that is not platform.
fn replayed(extra: &[&str]) -> Vec<Judged> {
    let flows = root()
        .join("examples/flows-dns.jsonl")
        .display()
        .to_string();
    let mut args = vec!["replay", flows.as_str()];
    args.extend_from_slice(extra);
    let (ok, out, err) = auditor(&args);
    assert!(ok, "{err}");
    let s = |v: &Value| v.as_str().map(str::to_string);
    let mut v: Vec<_> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["verdict"] != "platform")
        .map(|e| {
            (
                s(&e["verdict"]).unwrap(),
                s(&e["src"]["service"]).or(s(&e["src"]["addr"])).unwrap(),
                s(&e["dst"]["service"]).or(s(&e["dst"]["addr"])).unwrap(),
                e["dst"]["port"].as_u64().unwrap(),
                s(&e["dst"]["domain"]),
                s(&e["dst"]["resolution"]),
            )
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

fn row(
    verdict: &str,
    src: &str,
    dst: &str,
    port: u64,
    domain: Option<&str>,
    resolution: &str,
) -> Judged {
    (
        verdict.into(),
        src.into(),
        dst.into(),
        port,
        domain.map(Into::into),
        Some(resolution.into()),
    )
}

#[test]
fn a_recording_replays_with_its_names() {
    // The capture's daemon ran with --dns-grace 2s; the replay gives the same.
    let got = replayed(&["--dns-grace", "2s"]);
    let want = vec![
        row(
            "allowed",
            "Interaction Server",
            "Redis",
            6379,
            Some("big.redis.example"),
            "dns",
        ),
        row(
            "allowed",
            "Interaction Server",
            "Redis",
            6379,
            Some("x.redis.example"),
            "dns",
        ),
        row(
            "allowed",
            "Voice RQ Service",
            "Redis",
            6379,
            Some("x.redis.example"),
            "dns",
        ),
        row(
            "allowed",
            "Voicemail",
            "Object storage",
            443,
            Some("bucket.blob.example"),
            "dns",
        ),
        // The attacker's resolver, and the address it gave: bare, never Redis.
        row(
            "unknown_destination",
            "Interaction Server",
            "198.18.0.3",
            53,
            None,
            "bare",
        ),
        row(
            "unknown_destination",
            "Interaction Server",
            "198.18.0.3",
            6379,
            None,
            "bare",
        ),
        // A name no entry claims; the CDN address under another pod's name.
        row(
            "unknown_destination",
            "Interaction Server",
            "198.18.0.6",
            443,
            Some("unknown.example"),
            "dns",
        ),
        row(
            "unknown_destination",
            "Interaction Server",
            "198.18.0.7",
            443,
            Some("other.cdn.example"),
            "dns",
        ),
        // Connected 6 s after a 2 s answer: past TTL and grace.
        row(
            "unknown_destination",
            "Voice RQ Service",
            "198.18.0.5",
            6379,
            None,
            "bare",
        ),
    ];
    assert_eq!(got, want);
    // With the default grace (30 s) the late connect is still by name.
    let late = replayed(&[]);
    assert!(!late.iter().any(|r| r.2 == "198.18.0.5"), "{late:?}");
}

#[test]
fn without_trusted_resolvers_no_name_is_used() {
    // The same recording with no baseline and no --dns-resolver: every answer is
    // untrusted, so Redis (known by name only) is never reached.
    let r = root();
    let out = Command::new(AUDITOR)
        .args([
            "replay",
            &r.join("examples/flows-dns.jsonl").display().to_string(),
        ])
        .args([
            "--allowlist",
            &r.join("allowlist/voice-microservices.yaml")
                .display()
                .to_string(),
            "--inventory",
            &r.join("examples/inventory-dns.yaml").display().to_string(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let v: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!v.is_empty());
    assert!(v.iter().all(|e| e["dst"]["service"] != "Redis"), "{text}");
    // Nothing could be learned, so no flow is said to be resolved or bare: unknown.
    assert!(
        v.iter().all(|e| e["dst"].get("resolution").is_none()),
        "{text}"
    );
    assert!(err.contains("no trusted DNS resolver"), "{err}");
    // Trusting the node-local cache by flag gives the names back.
    let out = Command::new(AUDITOR)
        .args([
            "replay",
            &r.join("examples/flows-dns.jsonl").display().to_string(),
        ])
        .args([
            "--allowlist",
            &r.join("allowlist/voice-microservices.yaml")
                .display()
                .to_string(),
            "--inventory",
            &r.join("examples/inventory-dns.yaml").display().to_string(),
            "--dns-resolver",
            "198.18.0.2",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(r#""service":"Redis""#), "{text}");
}

#[test]
fn explain_shows_which_answer_named_the_address() {
    let flows = root()
        .join("examples/flows-dns.jsonl")
        .display()
        .to_string();
    let (ok, out, err) = auditor(&[
        "explain",
        "--flows",
        &flows,
        "--from",
        "198.18.0.8",
        "--to",
        "198.18.0.5:6379",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("198.18.0.5 is x.redis.example for the source's pod: answered by 198.18.0.2"),
        "{out}"
    );
    assert!(out.contains("matched by dns:*.redis.example"), "{out}");
    assert!(out.contains("verdict: allowed (rules: 7)"), "{out}");
    // The attacker's address: no trusted answer named it.
    let (ok, out, _) = auditor(&[
        "explain",
        "--flows",
        &flows,
        "--from",
        "198.18.0.15",
        "--to",
        "198.18.0.3:6379",
    ]);
    assert!(ok);
    assert!(out.contains("names: none"), "{out}");
    assert!(out.contains("verdict: unknown_destination"), "{out}");
    // A connection the recording does not hold: said, not guessed.
    let (ok, _, err) = auditor(&[
        "explain",
        "--flows",
        &flows,
        "--from",
        "198.18.0.99",
        "--to",
        "198.18.0.3:6379",
    ]);
    assert!(!ok);
    assert!(err.contains("no flow record from 198.18.0.99"), "{err}");
    // DNS options without a recording would be read by nothing: refused.
    let (ok, _, err) = auditor(&[
        "explain",
        "--from",
        "198.18.0.8",
        "--to",
        "198.18.0.5:6379",
        "--dns-grace",
        "5s",
    ]);
    assert!(!ok);
    assert!(err.contains("give them with --flows"), "{err}");
    // A name is a name, not a pattern.
    let (ok, _, err) = auditor(&[
        "explain",
        "--from",
        "198.18.0.8",
        "--to",
        "198.18.0.5:6379",
        "--name",
        "*.redis.example",
    ]);
    assert!(!ok);
    assert!(err.contains("--name \"*.redis.example\""), "{err}");
}

#[test]
fn a_hostile_dns_line_is_a_bad_line() {
    let d = common::dir("replay-dns", "hostile");
    let long = "a".repeat(2000);
    let lines = [
        format!(r#"{{"dns":{{"time":"2026-12-04T18:55:00Z","netns_cookie":1,"resolver":"198.18.0.2","solicited":true,"answers":[{{"addr":"198.18.0.4","names":["{long}"],"ttl":5}}]}}}}"#),
        r#"{"dns":{"time":"2026-12-04T18:55:00Z","netns_cookie":1,"resolver":"198.18.0.2","solicited":true,"answers":[{"addr":"198.18.0.4","names":["Evil Name"],"ttl":5}]}}"#.to_string(),
        r#"{"time":"2026-12-04T18:55:01Z","transport":"tcp","src_addr":"198.18.0.8","dst_addr":"198.18.0.4","dst_port":6379,"netns_cookie":1}"#.to_string(),
    ];
    std::fs::write(d.join("flows.jsonl"), lines.join("\n") + "\n").unwrap();
    let flows = d.join("flows.jsonl").display().to_string();
    let (ok, out, err) = auditor(&["replay", &flows]);
    assert!(ok, "{err}");
    assert!(
        err.contains("flows.jsonl:1: skipping a bad dns line"),
        "{err}"
    );
    assert!(
        err.contains("flows.jsonl:2: skipping a bad dns line"),
        "{err}"
    );
    assert!(err.contains("2 bad records skipped"), "{err}");
    assert!(!out.contains("Evil"), "{out}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn after_a_lost_answer_no_flow_is_called_bare() {
    let d = common::dir("replay-dns", "lost");
    let flow = r#"{"time":"2026-12-04T18:55:01Z","transport":"tcp","src_addr":"198.18.0.8","dst_addr":"198.18.0.4","dst_port":6379,"netns_cookie":7}"#;
    let watch = |lost: u64| {
        format!(
            r#"{{"watch":{{"node":"n1","auditor_version":"0.1.0","kernel":"6.18","start":"2026-12-04T18:55:00.000Z","end":"2026-12-04T18:55:02.000Z","drops":{{"ringbuf_full":0,"connections_lost":0,"flow_insert_failed":0}},"dns":true,"dns_lost":{lost}}}}}"#
        )
    };
    let resolution = |lost: u64| {
        let path = d.join(format!("flows-{lost}.jsonl"));
        std::fs::write(&path, format!("{flow}\n{}\n", watch(lost))).unwrap();
        let (ok, out, err) = auditor(&[
            "replay",
            &path.display().to_string(),
            "--dns-resolver",
            "198.18.0.2",
        ]);
        assert!(ok, "{err}");
        let v: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        v["dst"].get("resolution").cloned()
    };
    // No answer named the address, and none was lost: used bare.
    assert_eq!(resolution(0), Some(Value::from("bare")));
    // The kernel lost an answer in that span: it may have named it. Unknown.
    assert_eq!(resolution(1), None);
    let _ = std::fs::remove_dir_all(&d);
}
