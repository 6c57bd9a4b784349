//! Alertmanager v2 client: POST /api/v2/alerts. An alert is (re)sent while its edge is
//! active with `endsAt` in the future; once the edge has been quiet for `resolve_after`
//! it is sent one last time with `endsAt` = now, which resolves it.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::edges::{EdgeState, rfc3339};
use crate::store::EdgeKey;

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

/// The alert for one violation edge. Labels are what routes well: verdict, source,
/// destination, port, transport, rule, node.
pub fn alert(node: &str, key: &EdgeKey, e: &EdgeState, ends_at: SystemTime) -> Value {
    let rule = e
        .rules
        .first()
        .map_or_else(|| "none".to_string(), u32::to_string);
    json!({
        "labels": {
            "alertname": ALERT_NAME,
            "severity": "warning",
            "verdict": key.verdict,
            "source": key.src,
            "destination": key.dst,
            "port": key.port.to_string(),
            "transport": key.transport,
            "rule": rule,
            "node": node,
        },
        "annotations": {
            "summary": format!("{}: {} -> {} {}/{}", key.verdict, key.src, key.dst, key.transport, key.port),
            "description": format!(
                "{} connection(s) since {}; example process {} (pid {}){}",
                e.count,
                rfc3339(e.first_seen),
                e.example.comm,
                e.example.pid,
                if e.rules.is_empty() { String::new() } else { format!("; documented rows: {:?}", e.rules) }
            ),
            "count": e.count.to_string(),
        },
        "startsAt": rfc3339(e.first_seen),
        "endsAt": rfc3339(ends_at),
    })
}
