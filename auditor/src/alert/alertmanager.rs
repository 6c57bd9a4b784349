//! Alertmanager v2 client: POST /api/v2/alerts. An alert is (re)sent while its edge is
//! active with `endsAt` in the future; once the edge has been quiet for `resolve_after`
//! it is sent one last time with `endsAt` = now, which resolves it.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::{
    edge::Edge,
    model::time::{from_unix_ms, rfc3339},
};

pub const ALERT_NAME: &str = "AuditorUndocumentedConnection";

pub struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    /// `base` is Alertmanager's address, e.g. `http://alertmanager:9093`.
    pub fn new(base: &str) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Client {
            http,
            url: format!("{}/api/v2/alerts", base.trim_end_matches('/')),
        })
    }

    pub async fn post(&self, alerts: &[Value]) -> Result<(), String> {
        let resp = self
            .http
            .post(&self.url)
            .json(alerts)
            .send()
            .await
            .map_err(|e| format!("{}: {e}", self.url))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            let status = resp.status();
            Err(format!(
                "{}: HTTP {status}: {}",
                self.url,
                resp.text().await.unwrap_or_default()
            ))
        }
    }
}

/// The alert for one violation edge, in the event vocabulary. Labels are what routes
/// well: verdict, src, dst, port, transport, rules, node (the ends by name: the service,
/// or the address when it is not attributed).
pub fn alert(node: &str, e: &Edge, ends_at: SystemTime) -> Value {
    let k = e.key();
    let mut annotations = json!({
        "summary": format!("{}: {} -> {} {}/{}", k.verdict.as_str(), k.src, k.dst, k.transport, k.port),
        "description": format!(
            "{} connection(s) since {}; example process {}{}",
            e.count,
            rfc3339(from_unix_ms(e.first_seen)),
            e.example_text(),
            if e.rules.is_empty() { String::new() } else { format!("; documented rows: {}", e.cited_rows("")) }
        ),
        "count": e.count.to_string(),
        "first_seen": rfc3339(from_unix_ms(e.first_seen)),
        "direction": serde_json::to_value(e.direction).unwrap_or_default(),
    });
    let optional = [
        ("src_addr", e.src.addr.map(|a| a.to_string())),
        ("dst_addr", e.dst.addr.map(|a| a.to_string())),
        ("process", e.process.as_ref().map(ToString::to_string)),
        ("documented", e.documented.as_ref().map(ToString::to_string)),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            annotations[name] = v.into();
        }
    }
    json!({
        "labels": {
            "alertname": ALERT_NAME,
            "severity": "warning",
            "verdict": k.verdict.as_str(),
            "src": k.src,
            "dst": k.dst,
            "port": k.port.to_string(),
            "transport": k.transport.as_str(),
            "rules": e.rules_label(),
            "node": node,
        },
        "annotations": annotations,
        "startsAt": rfc3339(from_unix_ms(e.first_seen)),
        "endsAt": rfc3339(ends_at),
    })
}
