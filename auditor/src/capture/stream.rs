//! Reads the ring buffer until shutdown and turns records into `FlowRecord`s; on shutdown
//! detaches the probes first, then drains the ring and the flow map so nothing counted in
//! the kernel is left behind.

use std::{collections::HashMap, future::Future, time::Duration};

use auditor_common::{FlowEvent, FlowKey};
use tokio::io::unix::AsyncFd;

use super::{
    probes::{KernelCounters, ProbeError, Probes},
    record::{Clock, Direction, FlowRecord, RecordError, decode},
};
use crate::identity::{cgroups::CgroupPaths, netns::NetnsDirectory};

/// Beyond this many distinct flows the "seen" table restarts: `new` may then repeat, but
/// memory stays bounded on a node that talks to the whole world.
const SEEN_MAX: usize = 1 << 20;

/// What a capture saw, printed at exit and used by the benchmark.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    /// Flow records delivered to the sink.
    pub records: u64,
    /// Connections those records cover (the sum of their counts).
    pub connections: u64,
    /// Ring-buffer records that could not be decoded (never expected; counted, not fatal).
    pub malformed: u64,
    /// Connections still pending in the flow map at shutdown, delivered by the final drain.
    pub drained_at_exit: u64,
    /// LRU evictions: flows inserted minus flows still in the map at exit. Each eviction may
    /// have lost the connections of at most one report interval of that flow.
    pub lru_evictions: u64,
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

struct Seen {
    pid: u32,
    uid: u32,
    comm: [u8; 16],
}

struct Decoder {
    clock: Clock,
    seen: HashMap<FlowKey, Seen>,
    summary: Summary,
    enrich: Enricher,
}

/// Adds what user space knows and the kernel did not: the cgroup path, and for flows
/// whose local address says nothing (loopback, unbound UDP) the namespace's addresses and
/// the source address the kernel would pick.
pub struct Enricher {
    pub cgroups: CgroupPaths,
    pub netns: NetnsDirectory,
}

impl Enricher {
    pub fn new(cgroup_root: std::path::PathBuf) -> Enricher {
        Enricher {
            cgroups: CgroupPaths::new(cgroup_root),
            netns: NetnsDirectory::new(),
        }
    }

    pub fn enrich(&mut self, rec: &mut FlowRecord) {
        rec.cgroup = self.cgroups.path(rec.cgroup_id).map(str::to_string);
        let local = if rec.direction == Direction::Egress {
            rec.src_addr
        } else {
            Some(rec.dst_addr)
        };
        if local.is_some_and(|a| !a.to_canonical().is_loopback()) || rec.netns_cookie == 0 {
            return;
        }
        if rec.direction == Direction::Egress && rec.src_addr.is_none() {
            rec.src_addr = self.netns.source_for(rec.netns_cookie, rec.dst_addr);
        }
        rec.netns_addrs = self.netns.addrs(rec.netns_cookie).to_vec();
    }
}

impl Decoder {
    fn record(&mut self, ev: &FlowEvent) -> Result<FlowRecord, RecordError> {
        if self.seen.len() >= SEEN_MAX {
            self.seen.clear();
        }
        let new = self
            .seen
            .insert(
                ev.key,
                Seen {
                    pid: ev.pid,
                    uid: ev.uid,
                    comm: ev.comm,
                },
            )
            .is_none();
        let mut rec = FlowRecord::from_event(ev, new, &self.clock)?;
        self.enrich.enrich(&mut rec);
        Ok(rec)
    }

    fn deliver<F>(&mut self, bytes: &[u8], sink: &mut F) -> Result<(), StreamError>
    where
        F: FnMut(FlowRecord) -> std::io::Result<()>,
    {
        match decode(bytes).and_then(|ev| self.record(&ev)) {
            Ok(rec) => {
                self.summary.records += 1;
                self.summary.connections += rec.count;
                sink(rec).map_err(StreamError::Sink)
            }
            Err(e) => {
                self.summary.malformed += 1;
                tracing::warn!(error = %e, "skipping a malformed ring-buffer record");
                Ok(())
            }
        }
    }
}

/// Streams flows from `probes` into `sink` until `shutdown` completes.
pub async fn run<F, S>(
    probes: &mut Probes,
    mut sink: F,
    shutdown: S,
) -> Result<Summary, StreamError>
where
    F: FnMut(FlowRecord) -> std::io::Result<()>,
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
    let mut stats_tick = tokio::time::interval(Duration::from_secs(10));

    let outcome = loop {
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            _ = stats_tick.tick() => {
                if let Ok(k) = probes.counters() {
                    if k.ringbuf_full > dec.summary.kernel.ringbuf_full {
                        tracing::warn!(ringbuf_full = k.ringbuf_full, "ring buffer was full; the connections are carried by later records");
                    }
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
                    result = dec.deliver(&item, &mut sink);
                    if result.is_err() { break; }
                }
                guard.clear_ready();
                if let Err(e) = result { break Err(e); }
            }
        }
    };

    // Stop new sightings, then collect what the kernel still holds.
    probes.detach();
    if outcome.is_ok() {
        let rb = ring.get_mut();
        while let Some(item) = rb.next() {
            let bytes = item.to_vec();
            drop(item);
            dec.deliver(&bytes, &mut sink)?;
        }
    }
    let flows = probes.flows()?;
    if outcome.is_ok() {
        for (key, stats) in &flows {
            if stats.unreported == 0 {
                continue;
            }
            let actor = dec.seen.get(key);
            let ev = FlowEvent {
                key: *key,
                first_seen_ns: stats.first_seen_ns,
                last_seen_ns: stats.last_seen_ns,
                count: stats.unreported,
                pid: actor.map_or(0, |a| a.pid),
                uid: actor.map_or(0, |a| a.uid),
                comm: actor.map_or([0; 16], |a| a.comm),
                hook: 0,
                _pad: [0; 7],
            };
            dec.summary.drained_at_exit += stats.unreported;
            let rec = dec
                .record(&ev)
                .map_err(|e| StreamError::Poll(std::io::Error::other(e)))?;
            dec.summary.records += 1;
            dec.summary.connections += rec.count;
            sink(rec).map_err(StreamError::Sink)?;
        }
    }
    dec.summary.kernel = probes.counters()?;
    dec.summary.lru_evictions = dec
        .summary
        .kernel
        .flows_inserted
        .saturating_sub(flows.len() as u64);
    outcome.map(|()| dec.summary)
}
