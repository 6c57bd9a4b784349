//! Reads the ring buffer until shutdown and turns records into `FlowRecord`s.
//!
//! The kernel counts connections per flow and epoch (see `auditor-ebpf/src/flow.rs`): a
//! flow's first connection in an epoch goes through the ring buffer at once ("1 so far"),
//! the rest only into that epoch's map. At each sweep (every `--record-interval`) the
//! stream starts the next epoch and drains the epochs that ended (see `Epochs` for when
//! that is safe), handing on what each flow holds beyond what its ring record carried.
//! Nothing is counted twice, and nothing counted in the kernel is left behind: so once
//! an epoch is drained, every connection the kernel counted before it ended has been
//! delivered, or counted as lost. That moment is the **watermark** the `watch` spans
//! end at (never the wall clock of the sweep).

use std::{collections::HashMap, future::Future, time::Duration};

use auditor_common::{FLOW_EPOCH_MAPS, FLOW_EVENT_ALONE, FlowEvent, FlowKey, FlowStats};
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
    /// Connections delivered by the drains of the epochs' flow maps rather than by ring
    /// records (a flow's further connections in an epoch, and the final drain at shutdown).
    pub swept: u64,
    /// Connections lost: an epoch's flow map was full and so was the ring buffer. Exact:
    /// the kernel counts each one.
    pub connections_lost: u64,
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
    fn kernel(&mut self, _counters: &KernelCounters) {}
    /// The enumeration of open sockets changed method at runtime (the iterator failed, so
    /// /proc from now on), with why.
    fn open_sockets_method(&mut self, _method: &'static str, _reason: &str) {}
    /// The records delivered so far are complete for `span`: everything the kernel counted
    /// up to `span.end` (the watermark) has been delivered or is in `span`'s loss. Called
    /// after a drain once `watch_every` has passed since the last span, and once at the
    /// end. `auditor capture` writes it into its stream so a replay knows what was
    /// watched; the daemon records it as the coverage of its next store commit.
    fn watch(&mut self, _span: &WatchSpan) -> std::io::Result<()> {
        Ok(())
    }
    /// How long a watch span lasts at least (spans are joined until then).
    fn watch_every(&self) -> Duration {
        WATCH_EVERY
    }
}

/// A span the capture watched: everything the kernel counted in it was delivered, except
/// `connections_lost`. The other figures are pressure, with nothing lost by them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSpan {
    pub start: std::time::SystemTime,
    /// The watermark: when the last epoch drained in this span ended.
    pub end: std::time::SystemTime,
    /// Connections lost in the span's epochs (their flow map full, and the ring buffer).
    pub connections_lost: u64,
    /// Records the ring buffer had no room for; their connections were delivered by the
    /// drain (or, for a record standing alone, are in `connections_lost`).
    pub ringbuf_full: u64,
    /// Sightings an epoch's full flow map could not hold; each went through the ring
    /// buffer on its own (or, with that full too, is in `connections_lost`).
    pub flow_insert_failed: u64,
    /// DNS packets the kernel could not hand over whole (ring full, or longer than it
    /// copies): names that were not learned, so a flow then is not known to be bare.
    pub dns_lost: u64,
}

/// The span being gathered since the last one was handed on.
struct Watcher {
    span: WatchSpan,
    /// Cumulative kernel counters when the span began (for the pressure figures).
    ringbuf_full: u64,
    flow_insert_failed: u64,
    dns_lost: u64,
}

impl Watcher {
    fn new(start: std::time::SystemTime) -> Watcher {
        Watcher {
            span: WatchSpan {
                start,
                end: start,
                connections_lost: 0,
                ringbuf_full: 0,
                flow_insert_failed: 0,
                dns_lost: 0,
            },
            ringbuf_full: 0,
            flow_insert_failed: 0,
            dns_lost: 0,
        }
    }

    /// An epoch drained: the span now reaches `watermark`, with the epoch's loss.
    fn extend(&mut self, watermark: std::time::SystemTime, lost: u64) {
        self.span.end = watermark.max(self.span.end);
        self.span.connections_lost += lost;
    }

    /// Hands on the span gathered so far (with the counters' increase since it began),
    /// and starts the next at its end.
    fn take(&mut self, k: &KernelCounters) -> WatchSpan {
        let dns_lost = k.dns_ringbuf_full + k.dns_truncated;
        let mut span = self.span.clone();
        span.ringbuf_full = k.ringbuf_full.saturating_sub(self.ringbuf_full);
        span.flow_insert_failed = k.flow_insert_failed.saturating_sub(self.flow_insert_failed);
        span.dns_lost = dns_lost.saturating_sub(self.dns_lost);
        *self = Watcher {
            ringbuf_full: k.ringbuf_full,
            flow_insert_failed: k.flow_insert_failed,
            dns_lost,
            ..Watcher::new(span.end)
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
/// How long a watch span of `auditor capture` lasts at least (a line every 10 s keeps
/// a day's recording of them under 1 MB).
const WATCH_EVERY: Duration = Duration::from_secs(10);

/// One flow entry of an epoch, as delivered so far (by its ring record).
struct Seen {
    first_seen_ns: u64,
    delivered: u64,
    pid: u32,
    uid: u32,
    comm: [u8; 16],
    hook: u8,
}

/// The flows of one epoch whose ring record was delivered: at most what its map holds.
#[derive(Default)]
struct EpochSeen {
    epoch: u32,
    flows: HashMap<FlowKey, Seen>,
}

struct Decoder {
    clock: Clock,
    /// By epoch slot (`epoch % FLOW_EPOCH_MAPS`): the live epoch's and the one draining.
    seen: [EpochSeen; FLOW_EPOCH_MAPS as usize],
    /// The last drained epoch and its flows: a flow in it is not `new` in the next.
    previous: (u32, std::collections::HashSet<FlowKey>),
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
    fn epoch_seen(&mut self, epoch: u32) -> &mut EpochSeen {
        let seen = &mut self.seen[(epoch % FLOW_EPOCH_MAPS) as usize];
        if seen.epoch != epoch {
            // The slot's previous epoch was drained: it holds nothing of use now.
            seen.epoch = epoch;
            seen.flows.clear();
        }
        seen
    }

    /// True when `key` had connections in the epoch before `epoch` too.
    fn seen_before(&self, key: &FlowKey, epoch: u32) -> bool {
        let before = epoch.wrapping_sub(1);
        let in_map = |seen: &EpochSeen| seen.epoch == before && seen.flows.contains_key(key);
        (self.previous.0 == before && self.previous.1.contains(key)) || self.seen.iter().any(in_map)
    }

    /// The record for what `ev` adds to what was delivered, or None when it adds nothing.
    fn record(&mut self, ev: &FlowEvent) -> Result<Option<FlowRecord>, RecordError> {
        let (delta, new) = if ev.flags & FLOW_EVENT_ALONE != 0 {
            // No map entry behind it: its count is all there is.
            (ev.count, !self.seen_before(&ev.key, ev.epoch))
        } else {
            match self.epoch_seen(ev.epoch).flows.get_mut(&ev.key) {
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
                    // Only a flow not yet seen in this epoch can be new.
                    let new = other.is_none() && !self.seen_before(&ev.key, ev.epoch);
                    self.epoch_seen(ev.epoch).flows.insert(
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

    /// Delivers what a drained epoch's map held beyond what its ring records carried,
    /// then forgets the epoch (so these tables hold at most two epochs' flows). The
    /// kernel keeps no last sighting (a repeat sighting reads no clock), so each record is
    /// timed by when its epoch ended (`ended_ns`, monotonic): its connections happened
    /// between its `first_seen` and then.
    fn drained<H: Handler>(
        &mut self,
        epoch: u32,
        ended_ns: u64,
        flows: &[(FlowKey, FlowStats)],
        handler: &mut H,
    ) -> Result<(), StreamError> {
        for (key, stats) in flows {
            // The actor of the flow's ring record; none when the ring was full then.
            let actor = self
                .epoch_seen(epoch)
                .flows
                .get(key)
                .filter(|s| s.first_seen_ns == stats.first_seen_ns)
                .map(|s| (s.delivered, s.pid, s.uid, s.comm, s.hook));
            if actor.is_some_and(|a| a.0 >= stats.count) {
                continue;
            }
            let (_, pid, uid, comm, hook) = actor.unwrap_or((0, 0, 0, [0; 16], 0));
            let ev = FlowEvent {
                key: *key,
                first_seen_ns: stats.first_seen_ns,
                last_seen_ns: ended_ns.max(stats.first_seen_ns),
                count: stats.count,
                pid,
                uid,
                comm,
                hook,
                flags: 0,
                _pad: 0,
                epoch,
            };
            // `record` hands on the count beyond what the ring record delivered.
            self.summary.swept += self.deliver_event(&ev, handler)?;
        }
        // A table a burst grew keeps no memory once drained.
        self.seen[(epoch % FLOW_EPOCH_MAPS) as usize] = EpochSeen::default();
        self.previous = (epoch, flows.iter().map(|(k, _)| *k).collect());
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

/// Hands every record waiting in the ring buffer to the decoder.
fn read_ring<H: Handler>(
    rb: &mut aya::maps::RingBuf<aya::maps::MapData>,
    dec: &mut Decoder,
    handler: &mut H,
) -> Result<(), StreamError> {
    while let Some(item) = rb.next() {
        let bytes = item.to_vec();
        drop(item);
        dec.deliver(&bytes, handler)?;
    }
    Ok(())
}

/// An epoch that ended and waits for its drain.
struct Retired {
    epoch: u32,
    /// When it ended: its drain moves the watermark there.
    ended: std::time::SystemTime,
    /// The same, on the kernel's clock (`bpf_ktime_get_ns`): when its records are timed.
    ended_ns: u64,
    /// RCU barriers passed since it ended (it is drained after two).
    barriers: u8,
    /// What its map held, read and delivered, when emptying the map failed (retried).
    delivered: Option<super::probes::Drained>,
}

/// Which epoch the programs count into, and the ones that ended, oldest first.
///
/// An ended epoch is drained after two barriers. The first returns once every program
/// that read the epoch has finished, so its map and its ring records are complete. The
/// second returns once every program that started before the first barrier returned has
/// finished: those include every program that reserved a ring record ahead of one of
/// the epoch's (the ring is read in reservation order, and stops at a record still being
/// written), so all of the epoch's records are read before its map is, and none can
/// arrive after the drain and be counted twice.
struct Epochs {
    live: u32,
    retired: std::collections::VecDeque<Retired>,
}

impl Epochs {
    /// One sweep: ends the live epoch (when a map is free for the next), passes a
    /// barrier, reads the ring, and drains the ended epochs that are due. A step that
    /// fails is tried again at the next sweep; meanwhile the live epoch goes on, and a
    /// sighting its full map cannot hold goes through the ring buffer.
    fn sweep<H: Handler>(
        &mut self,
        probes: &mut Probes,
        rb: &mut aya::maps::RingBuf<aya::maps::MapData>,
        dec: &mut Decoder,
        watcher: &mut Watcher,
        handler: &mut H,
    ) -> Result<(), StreamError> {
        // Live plus ended epochs never exceed the maps: a map is reused only drained.
        if self.retired.len() + 1 < FLOW_EPOCH_MAPS as usize {
            let (ended, ended_ns) = (std::time::SystemTime::now(), monotonic_ns());
            match probes.set_epoch(self.live.wrapping_add(1)) {
                Ok(()) => {
                    self.retired.push_back(Retired {
                        epoch: self.live,
                        ended,
                        ended_ns,
                        barriers: 0,
                        delivered: None,
                    });
                    self.live = self.live.wrapping_add(1);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "starting the next epoch; the live one goes on")
                }
            }
        }
        let waited = std::time::Instant::now();
        if let Err(e) = probes.wait_for_programs() {
            tracing::warn!(error = %e, "waiting for running programs; the ended epochs are drained at a later sweep");
            return Ok(());
        }
        tracing::trace!(
            waited_ms = waited.elapsed().as_secs_f64() * 1e3,
            "programs running at the epoch's end have finished"
        );
        for r in &mut self.retired {
            r.barriers = r.barriers.saturating_add(1);
        }
        read_ring(rb, dec, handler)?;
        while self.retired.front().is_some_and(|r| r.barriers >= 2) {
            if !drain_one(
                self.retired.front_mut().expect("checked"),
                probes,
                dec,
                watcher,
                handler,
            )? {
                break;
            }
            self.retired.pop_front();
        }
        Ok(())
    }

    /// At shutdown, with the programs detached and a barrier passed: every epoch's map
    /// is complete and every record read, so all are drained. True when all were.
    fn drain_all<H: Handler>(
        &mut self,
        probes: &mut Probes,
        dec: &mut Decoder,
        watcher: &mut Watcher,
        handler: &mut H,
        detached: (std::time::SystemTime, u64),
    ) -> Result<bool, StreamError> {
        self.retired.push_back(Retired {
            epoch: self.live,
            ended: detached.0,
            ended_ns: detached.1,
            barriers: 2,
            delivered: None,
        });
        let mut complete = true;
        for mut r in std::mem::take(&mut self.retired) {
            complete &= drain_one(&mut r, probes, dec, watcher, handler)?;
        }
        Ok(complete)
    }
}

/// Reads an ended epoch's map, delivers it, and empties it. True when done; false when
/// a step failed (logged; the caller tries again later, and what was already delivered
/// is not delivered again).
fn drain_one<H: Handler>(
    r: &mut Retired,
    probes: &mut Probes,
    dec: &mut Decoder,
    watcher: &mut Watcher,
    handler: &mut H,
) -> Result<bool, StreamError> {
    if r.delivered.is_none() {
        match probes.read_epoch(r.epoch) {
            Ok(drained) => {
                dec.drained(r.epoch, r.ended_ns, &drained.flows, handler)?;
                r.delivered = Some(drained);
            }
            Err(e) => {
                tracing::warn!(error = %e, epoch = r.epoch, "reading an ended epoch's flow map; tried again at the next sweep");
                return Ok(false);
            }
        }
    }
    let drained = r.delivered.as_ref().expect("set above");
    if let Err(e) = probes.empty_epoch(r.epoch, drained) {
        tracing::warn!(error = %e, epoch = r.epoch, "emptying an ended epoch's flow map; tried again at the next sweep (its map is not reused until then)");
        return Ok(false);
    }
    watcher.extend(r.ended, drained.lost);
    Ok(true)
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
        seen: Default::default(),
        previous: Default::default(),
        summary: Summary::default(),
        enrich: Enricher::new(probes.cgroup_root.clone()),
    };
    tokio::pin!(shutdown);
    let mut stats_tick = tokio::time::interval(STATS_EVERY);
    let mut sweep_tick = tokio::time::interval(probes.record_interval);
    sweep_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: connections open before the start are found at once.
    let mut active_tick = tokio::time::interval(probes.active_interval);
    // The hooks count from their attaching on (into epoch 0, the map's initial value):
    // what is delivered covers that time too, and the kernel's counters (zero at load)
    // are this capture's.
    let mut watcher = Watcher::new(probes.attached_at.min(std::time::SystemTime::now()));
    let mut epochs = Epochs {
        live: 0,
        retired: Default::default(),
    };

    let outcome = loop {
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            _ = sweep_tick.tick() => {
                // Ring records first, so the drain only adds what they did not carry.
                let rb = ring.get_mut();
                if let Err(e) = read_ring(rb, &mut dec, handler) { break Err(e); }
                if let Err(e) = epochs.sweep(probes, rb, &mut dec, &mut watcher, handler) { break Err(e); }
                let gathered = watcher.span.end.duration_since(watcher.span.start).unwrap_or_default();
                if gathered >= handler.watch_every() && gathered > Duration::ZERO && let Ok(k) = probes.counters() {
                    let span = watcher.take(&k);
                    if let Err(e) = handler.watch(&span) { break Err(StreamError::Sink(e)); }
                }
            }
            _ = active_tick.tick() => {
                if let Err(e) = dec.existing(probes, handler) { break Err(e); }
            }
            _ = stats_tick.tick() => {
                probes.flush_kernel_log();
                dec.enrich.tidy();
                if let Ok(k) = probes.counters() {
                    if k.connections_lost > dec.summary.kernel.connections_lost {
                        tracing::warn!(connections_lost = k.connections_lost, "the kernel lost connections: an epoch's flow map and the ring buffer were both full");
                    }
                    handler.kernel(&k);
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

    // Stop new sightings, wait out the programs still running (then every record they
    // reserved is written), and collect what the kernel holds: the ring, and every
    // epoch's map. Best effort: what cannot be drained is said, and the last watch span
    // is written only when everything counted until the detach was delivered.
    let detached = std::time::SystemTime::now();
    let detached_ns = monotonic_ns();
    probes.detach();
    let waited = probes.wait_for_programs();
    if let Err(e) = &waited {
        tracing::warn!(error = %e, "waiting for the last programs to finish");
    }
    probes.flush_kernel_log();
    let mut complete = false;
    if outcome.is_ok() && waited.is_ok() {
        read_ring(ring.get_mut(), &mut dec, handler)?;
        complete = epochs.drain_all(
            probes,
            &mut dec,
            &mut watcher,
            handler,
            (detached, detached_ns),
        )?;
    }
    match probes.counters() {
        Ok(k) => dec.summary.kernel = k,
        Err(e) => tracing::warn!(error = %e, "reading the kernel's counters at exit"),
    }
    dec.summary.connections_lost = dec.summary.kernel.connections_lost;
    handler.kernel(&dec.summary.kernel);
    if complete {
        // Everything counted until the probes were detached has been delivered.
        let span = watcher.take(&dec.summary.kernel);
        handler.watch(&span).map_err(StreamError::Sink)?;
    } else if outcome.is_ok() {
        tracing::warn!(
            "the kernel's flow maps could not all be drained at exit: the time since the last watch span is not claimed as watched"
        );
    }
    outcome.map(|()| dec.summary)
}
