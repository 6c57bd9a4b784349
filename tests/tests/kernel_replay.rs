//! A capture recorded on the real kernel, in namespaces that play documented services,
//! replayed against the bundled allowlist: the verdicts a user expects, one per
//! connection, and bad records reported by line without stopping the run.

use std::process::Command;

use auditor_tests::peer::{client, serve};
use auditor_tests::{capture::CaptureProc, kernel_tests_enabled, lab::Lab, workspace_bin};
use serde_json::Value;

#[test]
fn replay_of_a_real_capture_gives_the_expected_verdicts() {
    if !kernel_tests_enabled("replay_of_a_real_capture_gives_the_expected_verdicts") {
        return;
    }
    let lab = Lab::new(&[
        "tenant", "config", "ges", "redis", "sipproxy", "webrtc", "stranger",
    ])
    .expect("lab");
    let a = |h: &str| lab.host(h).v4.to_string();
    let inventory = format!(
        "version: 1\nservices:\n  Tenant Service: {{addresses: [{}]}}\n  Config Service: {{addresses: [{}]}}\n  \
         Genesys Engagement Service: {{addresses: [{}]}}\n  Redis: {{addresses: [{}]}}\n  \
         Voice SIP Proxy Service: {{addresses: [{}, \"{}\"]}}\n  WebRTC Media Service: {{addresses: [{}]}}\n\
         mesh_upstreams:\n  - {{port: 9100, service: Config Service}}\n",
        a("tenant"),
        a("config"),
        a("ges"),
        a("redis"),
        a("sipproxy"),
        lab.host("sipproxy").v6,
        a("webrtc")
    );
    let dir = std::env::temp_dir().join(format!("auditor-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let inv_path = dir.join("inventory.yaml");
    std::fs::write(&inv_path, inventory).unwrap();

    let capture = CaptureProc::start(&[]).expect("capture");
    let servers = vec![
        serve(
            &lab,
            "config",
            &["listen", "tcp", &a("config"), "9100", "2"],
        ),
        serve(
            &lab,
            "config",
            &["listen", "tcp", &a("config"), "9200", "1"],
        ),
        serve(&lab, "redis", &["listen", "tcp", &a("redis"), "6379", "1"]),
        serve(
            &lab,
            "stranger",
            &["listen", "tcp", &a("stranger"), "443", "1"],
        ),
        serve(
            &lab,
            "webrtc",
            &["listen", "udp", &a("webrtc"), "5070", "1"],
        ),
        // The tenant pod's mesh sidecar listener.
        serve(&lab, "tenant", &["listen", "tcp", "127.0.0.1", "9100", "1"]),
    ];
    client(&lab, "tenant", &["connect", &a("config"), "9100"]);
    client(&lab, "tenant", &["connect", &a("config"), "9200"]);
    client(&lab, "ges", &["connect", &a("redis"), "6379"]);
    client(
        &lab,
        "sipproxy",
        &["send", &a("webrtc"), "5070", "unconnected"],
    );
    client(
        &lab,
        "sipproxy",
        &["connect", &a("webrtc"), "5070", "refused"],
    );
    client(&lab, "tenant", &["connect", &a("stranger"), "443"]);
    client(&lab, "stranger", &["connect", &a("config"), "9100"]);
    client(&lab, "tenant", &["connect", "127.0.0.1", "9100"]);
    for mut s in servers {
        assert!(s.wait().unwrap().success());
    }
    let out = capture.stop().expect("capture output");

    // Our processes only, with a bad line in the middle.
    let mut lines: Vec<String> = out
        .records
        .iter()
        .filter(|r| r["comm"] == "auditor-peer")
        .map(Value::to_string)
        .collect();
    let bad_line = lines.len() / 2;
    lines.insert(bad_line, "{not a flow record".to_string());
    let flows = dir.join("flows.jsonl");
    std::fs::write(&flows, lines.join("\n") + "\n").unwrap();

    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let replay = Command::new(workspace_bin("auditor"))
        .args([
            "replay",
            "--allowlist",
            &format!("{root}/allowlist/voice-microservices.yaml"),
            "--inventory",
        ])
        .arg(&inv_path)
        .arg(&flows)
        .output()
        .expect("replay");
    let stderr = String::from_utf8_lossy(&replay.stderr);
    assert!(replay.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:{}: skipping a bad flow record",
            flows.display(),
            bad_line + 1
        )),
        "{stderr}"
    );
    let verdicts: Vec<Value> = String::from_utf8_lossy(&replay.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    let find = |src: Option<&str>, dst: Option<&str>, port: u16, transport: &str| -> Vec<&Value> {
        verdicts
            .iter()
            .filter(|v| v["dst"]["addr"] != "127.0.0.1") // the mesh case is checked on its own
            .filter(|v| {
                v["src"]["service"].as_str() == src
                    && v["dst"]["service"].as_str() == dst
                    && v["dst"]["port"] == port
                    && v["transport"] == transport
            })
            .collect()
    };
    let expect = |what: &str,
                  src: Option<&str>,
                  dst: Option<&str>,
                  port: u16,
                  transport: &str,
                  verdict: &str,
                  rule: Option<u32>| {
        let found = find(src, dst, port, transport);
        assert_eq!(
            found.len(),
            1,
            "{what}: expected one verdict, got {found:#?}\nall: {verdicts:#?}"
        );
        assert_eq!(found[0]["verdict"], verdict, "{what}: {}", found[0]);
        assert_eq!(
            found[0]["rules"][0].as_u64(),
            rule.map(u64::from),
            "{what}: {}",
            found[0]
        );
    };
    expect(
        "row 26",
        Some("Tenant Service"),
        Some("Config Service"),
        9100,
        "tcp",
        "allowed",
        Some(26),
    );
    expect(
        "row 26 on 9200",
        Some("Tenant Service"),
        Some("Config Service"),
        9200,
        "tcp",
        "port_drift",
        Some(26),
    );
    expect(
        "GES -> Redis",
        Some("Genesys Engagement Service"),
        Some("Redis"),
        6379,
        "tcp",
        "undocumented_egress",
        None,
    );
    expect(
        "row 57 (unbound UDP, source from its namespace)",
        Some("Voice SIP Proxy Service"),
        Some("WebRTC Media Service"),
        5070,
        "udp",
        "allowed",
        Some(57),
    );
    expect(
        "row 57 over TCP",
        Some("Voice SIP Proxy Service"),
        Some("WebRTC Media Service"),
        5070,
        "tcp",
        "protocol_drift",
        Some(57),
    );
    expect(
        "unknown destination",
        Some("Tenant Service"),
        None,
        443,
        "tcp",
        "unknown_destination",
        None,
    );
    expect(
        "unknown source",
        None,
        Some("Config Service"),
        9100,
        "tcp",
        "unknown_source",
        None,
    );
    let mesh: Vec<&Value> = verdicts
        .iter()
        .filter(|v| v["dst"]["via"] == "mesh-upstream:9100")
        .collect();
    assert_eq!(mesh.len(), 1, "mesh upstream: {verdicts:#?}");
    assert_eq!(
        (
            &mesh[0]["verdict"],
            &mesh[0]["rules"][0],
            &mesh[0]["src"]["service"]
        ),
        (&"allowed".into(), &26.into(), &"Tenant Service".into())
    );
    assert_eq!(
        verdicts.len(),
        8,
        "one verdict per connection (twins merged): {verdicts:#?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
