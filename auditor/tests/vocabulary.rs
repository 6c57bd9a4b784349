//! One vocabulary for a judged connection (`auditor::model::vocabulary`): no output names a
//! concept by another word. Checked where a user reads them: the committed JSON Schemas of
//! the outputs (events and replay lines, reports, would-break), the store's columns, and
//! the metric labels.

use std::path::Path;

use auditor::{
    edge::{Edge, Endpoint},
    metrics::{EdgeLabels, Metrics, VerdictLabels},
    model::{Verdict, vocabulary},
};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Every property name in a JSON Schema, with the path to it.
fn property_names(v: &serde_json::Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                if k == "properties"
                    && let Some(props) = child.as_object()
                {
                    for name in props.keys() {
                        out.push((name.clone(), format!("{at}/properties/{name}")));
                    }
                }
                property_names(child, &format!("{at}/{k}"), out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                property_names(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn misnamed(words: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
    words
        .into_iter()
        .filter_map(|(word, place)| {
            vocabulary::misnamed(&word).map(|c| {
                format!(
                    "{place}: `{word}` names the concept `{}` ({})",
                    c.name, c.meaning
                )
            })
        })
        .collect()
}

#[test]
fn output_schemas_name_each_concept_one_way() {
    let mut bad = Vec::new();
    let mut names_seen = std::collections::BTreeSet::new();
    for file in [
        "docs/event.schema.json",
        "docs/report.schema.json",
        "docs/would-break.schema.json",
    ] {
        let text = std::fs::read_to_string(root().join(file)).expect(file);
        let schema: serde_json::Value = serde_json::from_str(&text).expect(file);
        let mut names = Vec::new();
        property_names(&schema, file, &mut names);
        names_seen.extend(names.iter().map(|(n, _)| n.clone()));
        bad.extend(misnamed(names));
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // The check reads real schemas: each concept's own name is there.
    for c in vocabulary::CONCEPTS {
        assert!(
            names_seen.contains(c.name) || c.plural.is_some_and(|p| names_seen.contains(p)),
            "no output schema names `{}`: is the concept table out of date?",
            c.name
        );
    }
}

#[test]
fn store_columns_name_each_concept_one_way() {
    let dir = std::env::temp_dir().join(format!("vocabulary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.db");
    drop(auditor::store::Store::open(&path).expect("a new store"));
    let conn = rusqlite::Connection::open(&path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut columns = Vec::new();
    for t in &tables {
        let mut q = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
            .unwrap();
        for c in q.query_map([], |r| r.get::<_, String>(0)).unwrap() {
            let c = c.unwrap();
            columns.push((c.clone(), format!("store table {t}, column {c}")));
        }
    }
    drop(conn);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(columns.iter().any(|(c, _)| c == "rule"), "{columns:?}");
    let bad = misnamed(columns);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Tenant Service to Config Service's port 9200, a drift from row 26.
fn port_drift() -> Edge {
    Edge {
        verdict: Verdict::PortDrift,
        rules: vec![26],
        transport: auditor::edge::Transport::Tcp,
        direction: auditor::edge::Direction::Egress,
        documented: None,
        platform: None,
        mesh_leg: None,
        src: Endpoint {
            service: Some("Tenant Service".into()),
            ..Endpoint::default()
        },
        dst: Endpoint {
            service: Some("Config Service".into()),
            port: Some(9200),
            ..Endpoint::default()
        },
        process: None,
        count: 1,
        first_seen: 0,
        last_seen: 0,
    }
}

#[test]
fn metric_labels_name_each_concept_one_way() {
    let m = Metrics::new();
    let edge = port_drift();
    m.violations
        .get_or_create(&EdgeLabels::of(&edge, "n1"))
        .inc();
    m.connections.get_or_create(&VerdictLabels::of(&edge)).inc();
    let text = m.encode();
    let mut labels = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((metric, rest)) = line.split_once('{') else {
            continue;
        };
        for pair in rest.split("\",") {
            if let Some((name, _)) = pair.split_once("=\"") {
                labels.push((name.trim().to_string(), format!("metric {metric}")));
            }
        }
    }
    assert!(
        labels.iter().any(|(l, _)| l == "src") && labels.iter().any(|(l, _)| l == "rules"),
        "{text}"
    );
    let bad = misnamed(labels);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// A DNS name is never a metric label (its cardinality is the world's): an edge reached by
/// name counts in the same series as one without, and no label names or carries it.
#[test]
fn dns_names_are_never_a_metric_label() {
    let m = Metrics::new();
    let edge = |domain: Option<&str>| Edge {
        verdict: Verdict::UndocumentedEgress,
        rules: vec![],
        dst: Endpoint {
            addr: Some("198.51.100.7".parse().unwrap()),
            port: Some(443),
            domain: domain.map(Into::into),
            resolution: Some(auditor::model::Resolution::Dns),
            ..Endpoint::default()
        },
        ..port_drift()
    };
    for e in [
        edge(Some("evil.example")),
        edge(Some("other.example")),
        edge(None),
    ] {
        m.violations.get_or_create(&EdgeLabels::of(&e, "n1")).inc();
        m.connections.get_or_create(&VerdictLabels::of(&e)).inc();
    }
    let text = m.encode();
    assert!(
        !text.contains("example") && !text.contains("domain=") && !text.contains("resolution="),
        "{text}"
    );
    // The three connections share one violation series.
    assert!(
        text.lines()
            .any(|l| l.starts_with("auditor_violations_total{") && l.ends_with(" 3")),
        "{text}"
    );
}
