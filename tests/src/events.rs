//! The daemon's events as a test reads them: every line parsed, and validated against the
//! committed JSON Schema (docs/event.schema.json), so no test passes on an event a
//! consumer's validator would reject.

use std::path::Path;

use serde_json::Value;

const SCHEMA: &str = include_str!("../../docs/event.schema.json");

/// Every event in `path` (none when the file does not exist). Panics, naming the line,
/// when one is not JSON or does not validate.
pub fn read_valid(path: &Path) -> Vec<Value> {
    let schema: Value = serde_json::from_str(SCHEMA).expect("docs/event.schema.json is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the event schema compiles");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let event: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: not JSON: {e}", path.display(), i + 1));
            let errors: Vec<String> = validator
                .iter_errors(&event)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{}:{}: the event does not validate against docs/event.schema.json: {errors:#?}\n{event}",
                path.display(),
                i + 1
            );
            assert_eq!(event["schema"], "auditor-event/2", "{event}");
            event
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_event_passes_and_a_drifted_one_fails() {
        let dir = std::env::temp_dir().join(format!("auditor-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = serde_json::json!({
            "schema": "auditor-event/2", "id": "56b2332b1e6f3972821f93c0d0456c9b",
            "time": "2026-01-01T00:00:00.000Z", "event": "violation", "notice": "new",
            "node": "n", "verdict": "undocumented_egress", "rules": [], "transport": "tcp",
            "direction": "egress", "documented": null,
            "src": {"service": "GES", "addr": "10.0.0.1"},
            "dst": {"service": "Redis", "addr": "10.0.0.2", "port": 6379},
            "process": {"pid": 1, "comm": "ges", "cgroup": null},
            "count": 1, "first_seen": "2026-01-01T00:00:00.000Z",
            "last_seen": "2026-01-01T00:00:00.000Z"
        });
        std::fs::write(dir.join("good.jsonl"), format!("{good}\n")).unwrap();
        assert_eq!(read_valid(&dir.join("good.jsonl")).len(), 1);
        let mut old = good.clone();
        old["src"] = "GES".into(); // the version 1 shape
        std::fs::write(dir.join("old.jsonl"), format!("{old}\n")).unwrap();
        let r = std::panic::catch_unwind(|| read_valid(&dir.join("old.jsonl")));
        assert!(r.is_err(), "a string src must not validate");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
