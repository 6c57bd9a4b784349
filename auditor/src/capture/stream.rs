//! Reads the ring buffer until shutdown and turns records into `FlowRecord`s.
//!
//! The kernel counts connections per flow cumulatively; a record says "N so far". Here we
//! remember what was delivered per flow entry and hand on the difference. The same rule
//! applies to the sweep, which reads the flow map every record interval so an idle flow's
//! last connections go out without waiting for its next connection, and to the final
//! sweep after the probes are detached. Ring records and sweeps may overlap in any order:
//! nothing is counted twice, and nothing counted in the kernel is left behind.

use std::{collections::HashMap, future::Future, time::Duration};

use auditor_common::{FlowEvent, FlowKey, FlowStats};
use tokio::io::unix::AsyncFd;

use super::{
    enrich::Enricher,
    existing,
    probes::{KernelCounters, ProbeError, Probes},
    record::{Clock, DnsPacketRecord, FlowRecord, RecordError, RingRecord, decode_ring},
};

/// What a capture saw, printed at exit and used by the benchmark.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    /// Flow records delivered to the sink.
    pub records: u64,
    /// Connections those records cover (the sum of their counts).
    pub connections: u64,
    /// Ring-buffer records that could not be decoded (never expected; counted, not fatal).
    pub malformed: u64,
    /// Connections delivered by sweeps of the flow map rather than by ring records
    /// (idle flows, full ring buffer, and the final sweep at shutdown).
    pub swept: u64,
    /// LRU evictions: flows inserted minus flows still in the map at exit. Each eviction may
    /// lose the connections of at most one sweep interval of that flow.
    pub lru_evictions: u64,
    /// Records of sockets found already open (hook `existing`): connections held open
    /// and listeners, from the walks at start and every `--active-interval`.
    pub existing_records: u64,
    /// Open connections those records cover (not counted in `connections`, which are
    /// connections opened).
    pub existing_connections: u64,
    /// Sockets in the kernel's tables no process held when walked (being torn down).
    pub existing_unowned: u64,
    /// DNS packets from port 53 delivered to the handler.
    pub dns_packets: u64,
    pub kernel: KernelCounters,
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error("polling the ring buffer: {0}")]
    Poll(std::io::Error),
    /// The sink refused a record (e.g. stdout closed): the capture stops cleanly.
    #[error("writing a flow record: {0}")]
    Sink(std::io::Error),
}

/// Receives what the stream produces. `auditor capture` prints records; the daemon
/// judges them.
pub trait Handler {
    /// One flow record; `lag` is how long after the kernel's last sighting it got here.
    fn flow(&mut self, rec: FlowRecord, lag: Duration) -> std::io::Result<()>;
    /// A DNS packet from port 53 a socket of the node received. It comes before the flow
    /// records of any connect made after it was read, so a handler that learns names here
    /// has them when it judges those flows.
    fn dns(&mut self, _packet: DnsPacketRecord) -> std::io::Result<()> {
        Ok(())
    }
    /// A record that could not be decoded: skipped (and counted in the summary).
    fn malformed(&mut self, error: &dyn std::fmt::Display) {
        tracing::warn!(error = %error, "skipping a malformed record");
    }
    /// Kernel counters (cumulative), about every `STATS_EVERY`, and once at the end.
    fn kernel(&mut self, _counters: &KernelCounters, _lru_evictions: Option<u64>) {}
    /// The enumeration of open sockets changed method at runtime (the iterator failed, so
    /// /proc from now on), with why.
    fn open_sockets_method(&mut self, _method: &'static str, _reason: &str) {}
    /// The records delivered so far are complete for `span` (about every `WATCH_EVERY`,
    /// right after a sweep, and once at the end): what `auditor capture` writes into its
    /// stream so a replay knows what was watched.
    fn watch(&mut self, _span: &WatchSpan) -> std::io::Result<()> {
        Ok(())
    }
}

/// A span the capture watched, and the kernel's drops in it (their increase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSpan {
    pub start: std::time::SystemTime,
    pub end: std::time::SystemTime,
    pub ringbuf_full: u64,
    pub lru_evictions: u64,
    pub flow_insert_failed: u64,
    /// DNS packets the kernel could not hand over whole (ring full, or longer than it
    /// copies): names that were not learned, so a flow then is not known to be bare.
    pub dns_lost: u64,
}

/// Where the last watch span ended, and the kernel's counters then.
struct Watcher {
    start: std::time::SystemTime,
    ringbuf_full: u64,
    evicted: u64,
    flow_insert_failed: u64,
    dns_lost: u64,
}

impl Watcher {
    /// The span from the last one's end to `end`, given the cumulative counters and the
    /// flow map's size at `end` (inserted minus still held is what LRU evicted).
    fn span(&mut self, end: std::time::SystemTime, k: &KernelCounters, held: usize) -> WatchSpan {
        let evicted = k.flows_inserted.saturating_sub(held as u64);
        let span = WatchSpan {
            start: self.start,
            end: end.max(self.start),
            ringbuf_full: k.ringbuf_full.saturating_sub(self.ringbuf_full),
            dns_lost: (k.dns_ringbuf_full + k.dns_truncated).saturating_sub(self.dns_lost),
            lru_evictions: evicted.saturating_sub(self.evicted),
            flow_insert_failed: k.flow_insert_failed.saturating_sub(self.flow_insert_failed),
        };
        *self = Watcher {
            start: span.end,
            ringbuf_full: k.ringbuf_full,
            dns_lost: k.dns_ringbuf_full + k.dns_truncated,
            evicted: evicted.max(self.evicted),
            flow_insert_failed: k.flow_insert_failed,
        };
        span
    }
}

/// Lets a plain closure be a handler (what `auditor capture` uses).
pub struct RecordSink<F>(pub F);

impl<F: FnMut(FlowRecord) -> std::io::Result<()>> Handler for RecordSink<F> {
    fn flow(&mut self, rec: FlowRecord, _lag: Duration) -> std::io::Result<()> {
        (self.0)(rec)
    }
}

const STATS_EVERY: Duration = Duration::from_secs(5);
/// How often a watch span is closed (at the first sweep after this much time).
const WATCH_EVERY: Duration = Duration::from_secs(10);
const EVICTIONS_EVERY: u64 = 6;
const SWEEP_MIN: Duration = Duration::from_secs(1);

/// One flow entry as delivered so far.
struct Seen {
    first_seen_ns: u64,
    delivered: u64,
    pid: u32,
    uid: u32,
    comm: [u8; 16],
    hook: u8,
}

struct Decoder {
    clock: Clock,
    seen: HashMap<FlowKey, Seen>,
    summary: Summary,
    enrich: Enricher,
}

/// CPU time of this process (all threads), for the enumeration's cost in the debug log.
fn process_cpu_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

impl Decoder {
    /// The record for what `ev` adds to what was delivered, or None when it adds nothing.
    fn record(&mut self, ev: &FlowEvent) -> Result<Option<FlowRecord>, RecordError> {
        let (delta, new) = match self.seen.get_mut(&ev.key) {
            Some(s) if s.first_seen_ns == ev.first_seen_ns => {
                if ev.count <= s.delivered {
                    return Ok(None);
                }
                let delta = ev.count - s.delivered;
                s.delivered = ev.count;
                if ev.pid != 0 {
                    (s.pid, s.uid, s.comm, s.hook) = (ev.pid, ev.uid, ev.comm, ev.hook);
                }
                (delta, false)
            }
            other => {
                // A flow not seen yet, or a new life of an evicted one: all of it is new.
                let new = other.is_none();
                self.seen.insert(
                    ev.key,
                    Seen {
                        first_seen_ns: ev.first_seen_ns,
                        delivered: ev.count,
                        pid: ev.pid,
                        uid: ev.uid,
                        comm: ev.comm,
                        hook: ev.hook,
                    },
                );
                (ev.count, new)
            }
        };
        let mut rec = FlowRecord::from_event(
            &FlowEvent {
                count: delta,
                ..*ev
            },
            new,
            &self.clock,
        )?;
        self.enrich.enrich(&mut rec);
        Ok(Some(rec))
    }

    fn deliver_event<H: Handler>(
        &mut self,
        ev: &FlowEvent,
        handler: &mut H,
    ) -> Result<u64, StreamError> {
        match self.record(ev) {
            Ok(Some(rec)) => {
                let n = rec.count;
                self.summary.records += 1;
                self.summary.connections += n;
                let lag = Duration::from_nanos(monotonic_ns().saturating_sub(ev.last_seen_ns));
                handler.flow(rec, lag).map_err(StreamError::Sink)?;
                Ok(n)
            }
            Ok(None) => Ok(0),
            Err(e) => {
                self.summary.malformed += 1;
                handler.malformed(&e);
                Ok(0)
            }
        }
    }

    fn deliver<H: Handler>(&mut self, bytes: &[u8], handler: &mut H) -> Result<(), StreamError> {
        let decoded = decode_ring(bytes).and_then(|r| match r {
            RingRecord::Flow(ev) => Ok(Err(ev)),
            RingRecord::Dns(p) => DnsPacketRecord::from_packet(&p, &self.clock).map(Ok),
        });
        match decoded {
            Ok(Err(ev)) => self.deliver_event(&ev, handler).map(|_| ()),
            Ok(Ok(packet)) => {
                self.summary.dns_packets += 1;
                handler.dns(packet).map_err(StreamError::Sink)
            }
            Err(e) => {
                self.summary.malformed += 1;
                handler.malformed(&e);
                Ok(())
            }
        }
    }

    /// Enumerates the sockets already open and delivers them (hook `existing`); listeners
    /// also go into the kernel's listener table, so passive opens to them get an owner.
    fn existing<H: Handler>(
        &mut self,
        probes: &mut Probes,
        handler: &mut H,
    ) -> Result<(), StreamError> {
        let cpu0 = process_cpu_ns();
        let method = probes.sockets.method;
        let scan = match probes.first_walk.take() {
            Some(scan) => scan,
            None => probes.scan_open_sockets(),
        };
        if probes.sockets.method != method {
            handler.open_sockets_method(
                probes.sockets.method.name(),
                probes.sockets.fallback.as_deref().unwrap_or(""),
            );
        }
        let netns = &mut self.enrich.netns;
        let mut cookies: HashMap<u64, u64> = HashMap::new();
        let mut cookie = |ino: u64| {
            *cookies
                .entry(ino)
                .or_insert_with(|| netns.cookie_of_inode(ino).unwrap_or(0))
        };
        for (key, owner) in existing::listeners(&scan.found, &mut cookie) {
            if let Err(e) = probes.seed_listener(&key, &owner) {
                tracing::warn!(error = %e, port = key.port, "recording an existing listener's owner");
            }
        }
        let mut events = existing::events(&scan.found, &mut cookie, monotonic_ns());
        // The connecting side first: when both ends of a connection are on this node, the
        // handler judges the first it sees (as the live path sees the SYN first), and the
        // connecting side is the one whose pod resolved the destination's name.
        events.sort_by_key(|(ev, _)| ev.key.direction != auditor_common::DIRECTION_EGRESS);
        self.summary.existing_unowned += scan.unowned as u64;
        tracing::debug!(
            method = probes.sockets.method.name(),
            sockets = scan.found.len(),
            records = events.len(),
            processes = scan.processes,
            namespaces = scan.namespaces,
            unowned = scan.unowned,
            elapsed_ms = scan.elapsed.as_secs_f64() * 1e3,
            cpu_ms = process_cpu_ns().saturating_sub(cpu0) as f64 / 1e6,
            "enumerated open sockets"
        );
        for (ev, listener) in events {
            let mut rec = match FlowRecord::from_event(&ev, false, &self.clock) {
                Ok(r) => r,
                Err(e) => {
                    self.summary.malformed += 1;
                    handler.malformed(&e);
                    continue;
                }
            };
            if listener {
                // A listener has no peer.
                rec.src_addr = None;
            }
            self.enrich.enrich(&mut rec);
            self.summary.existing_records += 1;
            self.summary.existing_connections += rec.count;
            handler
                .flow(rec, Duration::ZERO)
                .map_err(StreamError::Sink)?;
        }
        Ok(())
    }

    /// Delivers what the flow map holds beyond what was delivered, and forgets flows the
    /// map no longer has (so this table is bounded by the map's size).
    fn sweep<H: Handler>(
        &mut self,
        flows: &[(FlowKey, FlowStats)],
        handler: &mut H,
    ) -> Result<(), StreamError> {
        for (key, stats) in flows {
            let actor = self
                .seen
                .get(key)
                .filter(|s| s.first_seen_ns == stats.first_seen_ns);
            if actor.is_some_and(|s| s.delivered >= stats.count) {
                continue;
            }
            let ev = FlowEvent {
                key: *key,
                first_seen_ns: stats.first_seen_ns,
                last_seen_ns: stats.last_seen_ns,
                count: stats.count,
                pid: actor.map_or(0, |a| a.pid),
                uid: actor.map_or(0, |a| a.uid),
                comm: actor.map_or([0; 16], |a| a.comm),
                hook: actor.map_or(0, |a| a.hook),
                _pad: [0; 7],
            };
            self.summary.swept += self.deliver_event(&ev, handler)?;
        }
        let live: std::collections::HashSet<&FlowKey> = flows.iter().map(|(k, _)| k).collect();
        self.seen.retain(|k, _| live.contains(k));
        Ok(())
    }
}

/// Gives the kernel's listener table the owners of the listeners already open, before
/// the caller says it is ready: a passive open right after start then names its server.
/// (The stream's first walk, at its start, reports them and the open connections.)
/// The walk is kept for the stream to report: "existing" then means open before the
/// caller said it was ready, with no race against what starts right after.
pub fn seed_listeners(probes: &mut Probes) {
    let scan = probes.scan_open_sockets();
    let mut netns = super::netns::NetnsDirectory::new();
    let mut cookie = |ino: u64| netns.cookie_of_inode(ino).unwrap_or(0);
    for (key, owner) in existing::listeners(&scan.found, &mut cookie) {
        if let Err(e) = probes.seed_listener(&key, &owner) {
            tracing::warn!(error = %e, port = key.port, "recording an existing listener's owner");
        }
    }
    probes.first_walk = Some(scan);
}

/// Streams flows from `probes` into `handler` until `shutdown` completes.
pub async fn run<H, S>(
    probes: &mut Probes,
    handler: &mut H,
    shutdown: S,
) -> Result<Summary, StreamError>
where
    H: Handler,
    S: Future<Output = ()>,
{
    let ring = probes.take_events()?;
    // SAFETY: the fd belongs to `ring`, which the AsyncFd owns for as long as it is registered.
    let mut ring = unsafe { AsyncFd::register(ring) }.map_err(|e| StreamError::Poll(e.into()))?;
    let mut dec = Decoder {
        clock: Clock::now(),
        seen: HashMap::new(),
        summary: Summary::default(),
        enrich: Enricher::new(probes.cgroup_root.clone()),
    };
    tokio::pin!(shutdown);
    let mut stats_tick = tokio::time::interval(STATS_EVERY);
    let mut sweep_tick = tokio::time::interval(probes.record_interval.max(SWEEP_MIN));
    let mut ticks = 0u64;
    // The first tick is immediate: connections open before the start are found at once.
    let mut active_tick = tokio::time::interval(probes.active_interval);
    // The hooks count from their attaching on: what is delivered covers that time too,
    // and the kernel's counters (zero at load) are this capture's drops.
    let mut watcher = Watcher {
        start: probes.attached_at.min(std::time::SystemTime::now()),
        ringbuf_full: 0,
        evicted: 0,
        flow_insert_failed: 0,
        dns_lost: 0,
    };

    let outcome = loop {
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            _ = sweep_tick.tick() => {
                // What the kernel counted before now is delivered once this sweep is done.
                let at = std::time::SystemTime::now();
                // Ring records first, so the sweep only adds what they did not carry.
                let rb = ring.get_mut();
                let mut result = Ok(());
                while let Some(item) = rb.next() {
                    let bytes = item.to_vec();
                    drop(item);
                    result = dec.deliver(&bytes, handler);
                    if result.is_err() { break; }
                }
                if let Err(e) = result { break Err(e); }
                match probes.flows() {
                    Ok(flows) => {
                        if let Err(e) = dec.sweep(&flows, handler) { break Err(e); }
                        let due = at.duration_since(watcher.start).is_ok_and(|d| d >= WATCH_EVERY);
                        if due && let Ok(k) = probes.counters() {
                            let span = watcher.span(at, &k, flows.len());
                            if let Err(e) = handler.watch(&span) { break Err(StreamError::Sink(e)); }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "sweeping the flow map"),
                }
            }
            _ = active_tick.tick() => {
                if let Err(e) = dec.existing(probes, handler) { break Err(e); }
            }
            _ = stats_tick.tick() => {
                ticks += 1;
                probes.flush_kernel_log();
                dec.enrich.tidy();
                if let Ok(k) = probes.counters() {
                    if k.ringbuf_full > dec.summary.kernel.ringbuf_full {
                        tracing::warn!(ringbuf_full = k.ringbuf_full, "ring buffer was full; the sweep delivers those connections");
                    }
                    // Counting evictions walks the whole flow map: only every EVICTIONS_EVERY ticks.
                    let evictions = ticks
                        .is_multiple_of(EVICTIONS_EVERY)
                        .then(|| probes.flows().ok().map(|f| k.flows_inserted.saturating_sub(f.len() as u64)))
                        .flatten();
                    handler.kernel(&k, evictions);
                    dec.summary.kernel = k;
                }
            }
            guard = ring.readable_mut() => {
                let mut guard = match guard {
                    Ok(g) => g,
                    Err(e) => break Err(StreamError::Poll(e)),
                };
                let rb = guard.get_inner_mut();
                let mut result = Ok(());
                while let Some(item) = rb.next() {
                    result = dec.deliver(&item, handler);
                    if result.is_err() { break; }
                }
                guard.clear_ready();
                if let Err(e) = result { break Err(e); }
            }
        }
    };

    // Stop new sightings, then collect what the kernel still holds, its log records too.
    let detached = std::time::SystemTime::now();
    probes.detach();
    probes.flush_kernel_log();
    if outcome.is_ok() {
        let rb = ring.get_mut();
        while let Some(item) = rb.next() {
            let bytes = item.to_vec();
            drop(item);
            dec.deliver(&bytes, handler)?;
        }
    }
    let flows = probes.flows()?;
    if outcome.is_ok() {
        dec.sweep(&flows, handler)?;
    }
    dec.summary.kernel = probes.counters()?;
    dec.summary.lru_evictions = dec
        .summary
        .kernel
        .flows_inserted
        .saturating_sub(flows.len() as u64);
    handler.kernel(&dec.summary.kernel, Some(dec.summary.lru_evictions));
    if outcome.is_ok() {
        // Everything counted until the probes were detached has been delivered.
        let span = watcher.span(detached, &dec.summary.kernel, flows.len());
        handler.watch(&span).map_err(StreamError::Sink)?;
    }
    outcome.map(|()| dec.summary)
}
