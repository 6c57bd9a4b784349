//! The per-record path of the daemon: judge each flow record into one `Edge`, then hand
//! it to the sinks (`sinks`) in turn. Kernel counters are turned into metrics and into
//! the drops the next store commit records.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use auditor_common::{Counter, Hook};
use tokio::sync::watch;

use super::{
    Shared,
    sinks::{AlertSink, EventWriter, MetricsSink, StoreSink},
};
use crate::{
    capture::{
        FlowRecord,
        probes::KernelCounters,
        stream::{Handler, WatchSpan},
    },
    edge::Edge,
    internal_events::{
        FlowRecordReceived, InternalEvent, KernelCounted, KernelLoss, MalformedRecord, OutOfScope,
    },
    model::FlowView,
    model::time::unix_ms,
    verdict::{Judge, Twins, render},
};

pub struct DaemonHandler {
    shared: Arc<Shared>,
    judge_rx: watch::Receiver<Arc<Judge>>,
    judge: Arc<Judge>,
    twins: Twins,
    scope: Vec<ipnet::IpNet>,
    metrics: MetricsSink,
    store: StoreSink,
    alerts: AlertSink,
    events: EventWriter,
    last_kernel: KernelCounters,
    /// The names each pod resolved; None with `--no-dns` (then no flow is marked).
    names: Option<crate::dns::Names>,
    packets: crate::dns::PacketReader,
    /// The name table's evictions already reported, and when it was last saved.
    names_evicted: u64,
    names_saved: std::time::Instant,
    /// The boot the saved name table belongs to.
    boot_id: String,
    /// TCP reassembly's counts as last reported.
    tcp_reported: crate::dns::tcp::TcpStats,
    /// When the kernel last lost a DNS answer (ring full, or longer than it copies).
    dns_lost_at: Option<std::time::Instant>,
}

/// How long after the kernel lost a DNS answer no flow is called bare: the lost answer
/// may have named its address, for as long as its TTL and the grace run. Ten minutes
/// covers the TTLs managed services and CDNs give (seconds to minutes) with the grace.
const DNS_LOSS_WINDOW: Duration = Duration::from_secs(600);

/// How often the name table is handed to the store, when it changed: names survive a
/// restart (connections found open at start keep their names) with at most this much
/// of the newest lost to a crash; a clean stop saves it last.
const NAMES_SAVE_EVERY: Duration = Duration::from_secs(10);

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
        events: EventWriter,
        scope: Vec<ipnet::IpNet>,
        names: Option<crate::dns::Names>,
    ) -> DaemonHandler {
        let judge = judge_rx.borrow().clone();
        DaemonHandler {
            shared,
            judge_rx,
            judge,
            twins: Twins::default(),
            scope,
            metrics: MetricsSink::default(),
            store: StoreSink::default(),
            alerts: AlertSink,
            events,
            last_kernel: KernelCounters::default(),
            names,
            packets: crate::dns::PacketReader::default(),
            names_evicted: 0,
            names_saved: std::time::Instant::now(),
            boot_id: crate::capture::boot_id(),
            tcp_reported: Default::default(),
            dns_lost_at: None,
        }
    }

    /// Hands the name table to the store when it is due (`force`: at the end).
    pub fn save_names(&mut self, force: bool) {
        let Some(names) = &mut self.names else { return };
        let (now, was) = (self.packets.tcp().stats(), self.tcp_reported);
        for (reason, delta) in [
            ("tcp_gap", now.dropped_gaps - was.dropped_gaps),
            ("tcp_copied_in_part", now.truncated - was.truncated),
            ("tcp_overflow", now.overflowed - was.overflowed),
            ("tcp_evicted", now.evicted - was.evicted),
            (
                "tcp_ignored_segment",
                now.ignored_segments - was.ignored_segments,
            ),
        ] {
            crate::internal_events::DnsTcpGivenUp { reason, delta }.emit(&self.shared.metrics);
        }
        self.tcp_reported = now;
        // Names neither valid nor bound go: the table holds what can still name a flow.
        names.table_mut().expire(unix_ms(SystemTime::now()));
        let evicted = names.table().evictions();
        crate::internal_events::DnsTable {
            names: names.table().len(),
            evicted: evicted - self.names_evicted,
        }
        .emit(&self.shared.metrics);
        self.names_evicted = evicted;
        if self.shared.store_path.is_none()
            || !(force || self.names_saved.elapsed() >= NAMES_SAVE_EVERY)
        {
            return;
        }
        self.names_saved = std::time::Instant::now();
        let snapshot = crate::store::batch::NamesSnapshot {
            boot_id: self.boot_id.clone(),
            names: names.table().snapshot(),
        };
        let mut pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        pending.names = Some(snapshot);
    }

    /// The record's edge, or None when it is out of scope or the second sighting of a
    /// connection already judged.
    fn judge(&mut self, rec: &FlowRecord, lag: Duration) -> Option<Edge> {
        // A reload swaps the whole policy between two records, never inside one.
        if self.judge_rx.has_changed().unwrap_or(false) {
            self.judge = self.judge_rx.borrow_and_update().clone();
            if let Some(names) = self.names.as_mut() {
                names.set_baseline_servers(self.judge.baseline.names_dns_servers());
            }
        }
        if !in_scope(&self.scope, rec) {
            OutOfScope {
                connections: rec.count,
            }
            .emit(&self.shared.metrics);
            return None;
        }
        if self.twins.is_twin(&FlowView::of(rec)) {
            return None;
        }
        let at = unix_ms(
            SystemTime::now()
                .checked_sub(lag)
                .unwrap_or_else(SystemTime::now),
        );
        let mut names = crate::dns::flow_names(self.names.as_mut(), rec, at);
        if names.resolution == Some(crate::model::Resolution::Bare)
            && self
                .dns_lost_at
                .is_some_and(|t| t.elapsed() < DNS_LOSS_WINDOW)
        {
            // An answer the kernel lost may have named it: unknown, not bare.
            names.resolution = None;
        }
        let view = FlowView {
            dst_names: &names.names,
            resolution: names.resolution,
            ..FlowView::of(rec)
        };
        let j = self.judge.judge(&view);
        Some(render::edge(&self.judge, &j, rec, at, at))
    }
}

impl Handler for DaemonHandler {
    fn flow(&mut self, rec: FlowRecord, lag: Duration) -> std::io::Result<()> {
        FlowRecordReceived { lag }.emit(&self.shared.metrics);
        if rec.is_listener() {
            // Not a connection: found open at start (or by a later walk), it has already
            // given the kernel's listener table its owner, for the passive opens to come.
            return Ok(());
        }
        let mut rec = rec;
        if rec.hook == Hook::Existing.name() {
            // Held open, not opened in this period: it makes its row observed (evidence
            // "active") without adding to the connections opened.
            rec.count = 0;
        }
        let Some(edge) = self.judge(&rec, lag) else {
            return Ok(());
        };
        self.metrics.record(&self.shared, &edge);
        // Without --store nothing would ever drain the batch: do not fill it.
        if self.shared.store_path.is_some() {
            self.store.record(&self.shared, &edge, &self.judge);
        }
        if let Some(event) = self.alerts.record(&self.shared, &edge) {
            // A failing output is counted and retried; it never stops the judging.
            self.events.write(&self.shared, &event);
        }
        Ok(())
    }

    fn dns(&mut self, packet: crate::capture::record::DnsPacketRecord) -> std::io::Result<()> {
        let Some(names) = self.names.as_mut() else {
            return Ok(());
        };
        let judge = &self.judge;
        for read in self.packets.read(&packet) {
            match read {
                Ok(answer) => {
                    let answer_use =
                        names.answer(&answer, &|a| judge.baseline.dns_server(a).is_some());
                    if answer_use == crate::dns::AnswerUse::Learned
                        && self.shared.store_path.is_some()
                    {
                        let mut pending = self
                            .shared
                            .pending
                            .lock()
                            .unwrap_or_else(|e| e.into_inner());
                        for name in answer.answers.iter().flat_map(|a| &a.names) {
                            pending.add_learned(name, answer.resolver, answer.time);
                        }
                    }
                    crate::internal_events::DnsAnswerTaken {
                        answer_use,
                        transport: answer.transport,
                        resolver: answer.resolver,
                        question: answer.question.as_deref(),
                    }
                    .emit(&self.shared.metrics);
                }
                Err(error) => crate::internal_events::DnsUnreadable {
                    error: &error,
                    resolver: packet.server.ip(),
                }
                .emit(&self.shared.metrics),
            }
        }
        Ok(())
    }

    fn malformed(&mut self, error: &dyn std::fmt::Display) {
        MalformedRecord { error }.emit(&self.shared.metrics);
    }

    fn open_sockets_method(&mut self, method: &'static str, reason: &str) {
        crate::internal_events::OpenSocketsMethod {
            method,
            fallback: Some(reason),
        }
        .emit(&self.shared.metrics);
    }

    fn kernel(&mut self, k: &KernelCounters) {
        let m = &self.shared.metrics;
        let delta = |c: Counter| k.get(c).saturating_sub(self.last_kernel.get(c));
        // Kernel counts that lost nothing: error paths (also logged through aya-log) and
        // the pressure a full ring buffer or flow map put on delivery.
        for counter in [
            Counter::Sightings,
            Counter::FlowsInserted,
            Counter::RingbufFull,
            Counter::FlowInsertFailed,
            Counter::PassiveNoListener,
            Counter::NetnsReadFailed,
            Counter::UnexpectedFamily,
            // DNS packets are not connections: a lost one costs a name, not coverage.
            Counter::DnsPackets,
            Counter::DnsRingFull,
            Counter::DnsTruncated,
            Counter::DnsUnsolicited,
        ] {
            KernelCounted {
                counter,
                delta: delta(counter),
            }
            .emit(m);
        }
        let lost = delta(Counter::ConnectionsLost);
        if lost > 0 {
            KernelLoss {
                counter: Counter::ConnectionsLost.name(),
                delta: lost,
                total: k.get(Counter::ConnectionsLost),
            }
            .emit(m);
        } else {
            // The series exists at 0 from the start: an alert on its increase then sees a
            // first loss (a series born at N has no increase).
            KernelCounted {
                counter: Counter::ConnectionsLost,
                delta: 0,
            }
            .emit(m);
        }
        let dns_lost = delta(Counter::DnsRingFull) + delta(Counter::DnsTruncated);
        if dns_lost > 0 {
            tracing::warn!(
                lost = dns_lost,
                "the kernel lost DNS answers (ring buffer full, or longer than it copies): for the next {} no egress flow is called bare",
                humantime::format_duration(DNS_LOSS_WINDOW)
            );
            self.dns_lost_at = Some(std::time::Instant::now());
        }
        self.save_names(false);
        self.last_kernel = k.clone();
    }

    /// Everything up to `span.end` was delivered (and is in the pending batch, or
    /// committed): the next store commit's coverage reaches that far, with the span's loss.
    fn watch(&mut self, span: &WatchSpan) -> std::io::Result<()> {
        self.shared
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(span);
        Ok(())
    }

    /// Every drain moves the watermark: the store's coverage follows each one.
    fn watch_every(&self) -> Duration {
        Duration::ZERO
    }
}
