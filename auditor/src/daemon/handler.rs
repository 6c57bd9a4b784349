//! The per-record path of the daemon: judge, count, remember for the store, and for
//! violations aggregate per edge and tell (event + Alertmanager kick) when new.

use std::{
    collections::HashSet,
    io::Write,
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio::sync::watch;

use super::Shared;
use crate::{
    alert::edges::{Example, Notice, Sighting, event, unix_ms},
    capture::{FlowRecord, probes::KernelCounters, stream::Handler},
    internal_events::{InternalEvent, KernelLoss},
    metrics::{EdgeLabels, KernelLabels, VerdictLabels},
    store::{EdgeDelta, EdgeKey, RowDelta},
    verdict::{
        FlowView, Judge, Twins, Verdict,
        render::{documented, k8s_text},
    },
};

/// Violation edges beyond this many do not get series of their own (cardinality).
const EDGE_SERIES_BUDGET: usize = 1000;

pub struct DaemonHandler {
    pub shared: Arc<Shared>,
    pub judge_rx: watch::Receiver<Arc<Judge>>,
    pub judge: Arc<Judge>,
    pub events: Box<dyn Write + Send>,
    pub twins: Twins,
    series: HashSet<EdgeLabels>,
    last_kernel: KernelCounters,
    last_evictions: u64,
    scope: Vec<ipnet::IpNet>,
}

/// True when the flow touches the audited networks (or no scope was given). A process's
/// namespace addresses count: a loopback connect inside an audited pod is in scope.
fn in_scope(scope: &[ipnet::IpNet], rec: &FlowRecord) -> bool {
    scope.is_empty()
        || rec
            .src_addr
            .iter()
            .chain(std::iter::once(&rec.dst_addr))
            .chain(rec.netns_addrs.iter())
            .any(|a| {
                let a = a.to_canonical();
                scope.iter().any(|n| n.contains(&a))
            })
}

impl DaemonHandler {
    pub fn new(
        shared: Arc<Shared>,
        judge_rx: watch::Receiver<Arc<Judge>>,
        events: Box<dyn Write + Send>,
        scope: Vec<ipnet::IpNet>,
    ) -> DaemonHandler {
        let judge = judge_rx.borrow().clone();
        DaemonHandler {
            shared,
            judge_rx,
            judge,
            events,
            twins: Twins::default(),
            series: HashSet::new(),
            last_kernel: KernelCounters::default(),
            last_evictions: 0,
            scope,
        }
    }
}

fn transport_str(t: crate::capture::Transport) -> &'static str {
    match t {
        crate::capture::Transport::Tcp => "tcp",
        crate::capture::Transport::Udp => "udp",
    }
}

impl Handler for DaemonHandler {
    fn flow(&mut self, rec: FlowRecord, lag: Duration) -> std::io::Result<()> {
        // A reload swaps the whole policy between two records, never inside one.
        if self.judge_rx.has_changed().unwrap_or(false) {
            self.judge = self.judge_rx.borrow_and_update().clone();
        }
        let m = &self.shared.metrics;
        m.records.inc();
        m.lag.observe(lag.as_secs_f64());
        if !in_scope(&self.scope, &rec) {
            m.out_of_scope.inc_by(rec.count);
            return Ok(());
        }
        let view = FlowView::of(&rec);
        if self.twins.is_twin(&view) {
            return Ok(());
        }
        let j = self.judge.judge(&view);
        let rules = j.rules();
        let rule = rules
            .first()
            .map_or_else(|| "none".to_string(), u32::to_string);
        let transport = transport_str(rec.transport);
        m.connections
            .get_or_create(&VerdictLabels {
                verdict: j.verdict.as_str().into(),
                rule: rule.clone(),
                transport: transport.into(),
            })
            .inc_by(rec.count);

        let at = SystemTime::now()
            .checked_sub(lag)
            .unwrap_or_else(SystemTime::now);
        let at_ms = unix_ms(at);
        let src = j
            .src
            .as_ref()
            .map(|r| r.service.to_string())
            .or_else(|| rec.src_addr.map(|a| a.to_string()))
            .unwrap_or_else(|| "unknown".into());
        let dst = j
            .dst
            .as_ref()
            .map_or_else(|| rec.dst_addr.to_string(), |r| r.service.to_string());
        let key = EdgeKey {
            verdict: j.verdict.as_str(),
            src,
            dst,
            transport,
            port: j.port,
        };
        let src_pod = j.src.as_ref().and_then(|s| s.k8s.as_deref()).map(k8s_text);
        let doc = documented(&self.judge, &j);
        let doc = (!doc.is_null()).then_some(doc);
        {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            pending.add_edge(
                key.clone(),
                EdgeDelta {
                    rules: rules.clone(),
                    documented: doc.clone(),
                    dst_addr: Some(rec.dst_addr.to_string()),
                    count: rec.count,
                    first_seen_ms: at_ms,
                    last_seen_ms: at_ms,
                    example_comm: Some(rec.comm.clone()),
                    example_pid: Some(rec.tgid),
                    example_cgroup: rec.cgroup.clone(),
                    example_src_addr: rec.src_addr.map(|a| a.to_string()),
                    example_pod: src_pod.clone(),
                },
            );
            if j.verdict == Verdict::Allowed {
                for r in &rules {
                    pending.add_row(
                        *r,
                        RowDelta {
                            count: rec.count,
                            first_seen_ms: at_ms,
                            last_seen_ms: at_ms,
                            example_src: Some(key.src.clone()),
                            example_comm: Some(rec.comm.clone()),
                        },
                    );
                }
            }
            m.store_pending.set(pending.edges.len() as i64);
        }
        if !j.verdict.is_violation() {
            return Ok(());
        }

        let labels = EdgeLabels {
            verdict: key.verdict.into(),
            source: key.src.clone(),
            destination: key.dst.clone(),
            transport: transport.into(),
            port: key.port.to_string(),
            rule,
            node: self.shared.node.clone(),
        };
        if self.series.contains(&labels) || self.series.len() < EDGE_SERIES_BUDGET {
            m.violations.get_or_create(&labels).inc_by(rec.count);
            m.violation_last_seen
                .get_or_create(&labels)
                .set(at_ms as f64 / 1000.0);
            self.series.insert(labels);
        } else {
            m.edges_over_budget.inc();
        }
        let mut edges = self.shared.edges.lock().unwrap_or_else(|e| e.into_inner());
        let sighting = Sighting {
            count: rec.count,
            at,
            rules,
            documented: doc,
            dst_addr: rec.dst_addr.to_string(),
            example: Example {
                pid: rec.tgid,
                comm: rec.comm.clone(),
                cgroup: rec.cgroup.clone(),
                src_addr: rec.src_addr.map(|a| a.to_string()),
                src_pod: src_pod.clone(),
                dst_k8s: j.dst.as_ref().and_then(|d| d.k8s.as_deref()).map(k8s_text),
            },
        };
        if let Some(notice) = edges.observe(&key, sighting) {
            let state = edges.get(&key).expect("just observed");
            let line = event(&self.shared.node, &key, state, notice);
            drop(edges);
            serde_json::to_writer(&mut self.events, &line)?;
            self.events.write_all(b"\n")?;
            self.events.flush()?;
            m.events.inc();
            if notice == Notice::New {
                self.shared.alert_kick.notify_one();
            }
        }
        Ok(())
    }

    fn kernel(&mut self, k: &KernelCounters, lru_evictions: Option<u64>) {
        let m = &self.shared.metrics;
        let delta = |now: u64, before: u64| now.saturating_sub(before);
        m.kernel
            .get_or_create(&KernelLabels {
                counter: "sightings".into(),
            })
            .inc_by(delta(k.sightings, self.last_kernel.sightings));
        m.kernel
            .get_or_create(&KernelLabels {
                counter: "passive_no_listener".into(),
            })
            .inc_by(delta(
                k.passive_no_listener,
                self.last_kernel.passive_no_listener,
            ));
        let mut drops = self.shared.drops.lock().unwrap_or_else(|e| e.into_inner());
        for (name, now, before) in [
            (
                "ringbuf_full",
                k.ringbuf_full,
                self.last_kernel.ringbuf_full,
            ),
            (
                "flow_insert_failed",
                k.flow_insert_failed,
                self.last_kernel.flow_insert_failed,
            ),
        ] {
            let d = delta(now, before);
            if d > 0 {
                KernelLoss {
                    counter: name,
                    delta: d,
                    total: now,
                }
                .emit(m);
                if name == "ringbuf_full" {
                    drops.ringbuf_full += d;
                } else {
                    drops.flow_insert_failed += d;
                }
            }
        }
        if let Some(ev) = lru_evictions {
            let d = delta(ev, self.last_evictions);
            if d > 0 {
                KernelLoss {
                    counter: "lru_evictions",
                    delta: d,
                    total: ev,
                }
                .emit(m);
                drops.lru_evictions += d;
            }
            self.last_evictions = ev;
        }
        self.last_kernel = k.clone();
    }
}
