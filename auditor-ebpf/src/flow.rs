//! Maps, load-time config and the per-flow aggregation every hook feeds: a flow's first
//! sighting goes through the ring buffer at once, then at most one record per interval.

use core::intrinsics::{AtomicOrdering, atomic_cxchg, atomic_xadd};

const SEQ_CST: AtomicOrdering = AtomicOrdering::SeqCst;

use auditor_common::{
    COUNTER_SLOTS, Config, Counter, EVENTS_RING_BYTES, FAULT_FLOW_INSERT, FLOWS_MAX_ENTRIES,
    FlowEvent, FlowKey, FlowStats, LISTENERS_MAX_ENTRIES, ListenerKey, ListenerOwner,
};
use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_ktime_get_ns, bpf_probe_read_kernel},
    macros::map,
    maps::{Array, LruHashMap, PerCpuArray, RingBuf},
};

#[map]
pub static AUDITOR_FLOWS: LruHashMap<FlowKey, FlowStats> =
    LruHashMap::with_max_entries(FLOWS_MAX_ENTRIES, 0);

#[map]
pub static AUDITOR_EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_RING_BYTES, 0);

#[map]
pub static AUDITOR_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_SLOTS, 0);

/// Flows ever inserted into AUDITOR_FLOWS, node-wide: the insert that finds it at
/// capacity evicted a flow. Touched only when a flow is new.
#[map]
static AUDITOR_FLOW_TOTAL: Array<u64> = Array::with_max_entries(1, 0);

#[map]
pub static AUDITOR_LISTENERS: LruHashMap<ListenerKey, ListenerOwner> =
    LruHashMap::with_max_entries(LISTENERS_MAX_ENTRIES, 0);

/// Rewritten by user space before load (see `auditor_common::Config`).
#[unsafe(no_mangle)]
pub static AUDITOR_CONFIG: Config = Config::DEFAULT;

/// One field of the load-time config, e.g. `config!(sock.family)`. Volatile: otherwise the
/// compiler folds the default values in at build time. One field, not the whole struct: a
/// volatile read of `Config` is a load per field on every call.
macro_rules! config {
    ($($field:ident).+) => {
        {
            // Also used inside unsafe blocks.
            #[allow(unused_unsafe)]
            let value =
                unsafe { core::ptr::read_volatile(&raw const $crate::flow::AUDITOR_CONFIG.$($field).+) };
            value
        }
    };
}
pub(crate) use config;

/// The benchmark's floor arm (`Config::empty_programs`): return before doing anything.
#[inline(always)]
pub fn empty_programs() -> bool {
    config!(empty_programs) != 0
}

/// A test asked for this error path (see `Config::inject_faults`). Always false in
/// production, where the verifier prunes the branch on the frozen value.
#[inline(always)]
pub fn fault_injected(fault: u32) -> bool {
    config!(inject_faults) & fault != 0
}

#[inline(always)]
pub fn count(counter: Counter) {
    if let Some(slot) = AUDITOR_COUNTERS.get_ptr_mut(counter as u32) {
        // Per-CPU slot: no other CPU writes it, so a plain add is exact.
        unsafe { *slot += 1 };
    }
}

/// Who made the connection, as far as the hook knows.
pub struct Actor {
    pub pid: u32,
    pub uid: u32,
    pub comm: [u8; 16],
}

impl Actor {
    /// The task running the hook (process context: connect, sendmsg, SYN_SENT).
    #[inline(always)]
    pub fn current(pid_tgid: u64) -> Actor {
        Actor {
            pid: pid_tgid as u32,
            uid: aya_ebpf::helpers::bpf_get_current_uid_gid() as u32,
            comm: aya_ebpf::helpers::bpf_get_current_comm().unwrap_or([0; 16]),
        }
    }
}

/// Records one sighting of `key`; reports it when it is new or its interval has passed.
/// `actor` is only called when a record is emitted: most sightings of a busy flow are
/// just one atomic add, so the per-connection cost stays small.
#[inline(always)]
pub fn observe(key: &FlowKey, actor: impl FnOnce() -> Actor, hook: u8) {
    count(Counter::Sightings);
    let now = unsafe { bpf_ktime_get_ns() };
    let stats = match AUDITOR_FLOWS.get_ptr_mut(key) {
        Some(stats) => stats,
        None => {
            let fresh = FlowStats {
                first_seen_ns: now,
                last_seen_ns: now,
                last_report_ns: 0,
                count: 0,
            };
            let inject = fault_injected(FAULT_FLOW_INSERT);
            // NOEXIST: another CPU may have inserted the same flow meanwhile; theirs wins.
            if !inject
                && AUDITOR_FLOWS
                    .insert(key, &fresh, BPF_NOEXIST as u64)
                    .is_ok()
            {
                count(Counter::FlowsInserted);
                count_eviction();
            }
            let stats = if inject {
                None
            } else {
                AUDITOR_FLOWS.get_ptr_mut(key)
            };
            match stats {
                Some(stats) => stats,
                None => {
                    count(Counter::FlowInsertFailed);
                    crate::log::flow_insert_failed();
                    emit(key, &actor(), hook, now, now, 1);
                    return;
                }
            }
        }
    };
    // The bpfel target offers no `core::sync::atomic` read-modify-write, so the intrinsics
    // are used directly; they lower to BPF_ATOMIC add / xchg / cmpxchg. SeqCst is the only
    // ordering the BPF backend lowers for cmpxchg and xchg (it is what the kernel does anyway).
    unsafe {
        atomic_xadd::<u64, u64, { SEQ_CST }>(&raw mut (*stats).count, 1);
        (*stats).last_seen_ns = now;

        let last_report = &raw mut (*stats).last_report_ns;
        let previous = core::ptr::read_volatile(last_report);
        if previous != 0 && now.wrapping_sub(previous) < config!(record_interval_ns) {
            return;
        }
        // One reporter per interval even when several CPUs get here together.
        if !atomic_cxchg::<u64, { SEQ_CST }, { SEQ_CST }>(last_report, previous, now).1 {
            return;
        }
        let Some(mut entry) = AUDITOR_EVENTS.reserve::<FlowEvent>(0) else {
            // Counted, and nothing is lost: the connections stay in `count`, user space's
            // sweep of the map delivers them, and the restored stamp retries the record.
            count(Counter::RingbufFull);
            core::ptr::write_volatile(last_report, previous);
            return;
        };
        let total = core::ptr::read_volatile(&raw const (*stats).count);
        let actor = actor();
        entry.write(FlowEvent {
            key: *key,
            first_seen_ns: (*stats).first_seen_ns,
            last_seen_ns: now,
            count: total,
            pid: actor.pid,
            uid: actor.uid,
            comm: actor.comm,
            hook,
            _pad: [0; 7],
        });
        entry.submit(0);
    }
}

/// The programs are the flow map's only writers and nothing deletes from it, so an insert
/// made when it already held FLOWS_MAX_ENTRIES flows displaced one.
#[inline(always)]
fn count_eviction() {
    if let Some(total) = AUDITOR_FLOW_TOTAL.get_ptr_mut(0) {
        // The BPF CPU we build for has no fetch-and-add, so add, then read: two CPUs that
        // cross the capacity at the same instant may both read past it. That can over-count
        // by at most one per CPU, once, when the map first fills.
        let after = unsafe {
            atomic_xadd::<u64, u64, { SEQ_CST }>(total, 1);
            core::ptr::read_volatile(total)
        };
        if after > FLOWS_MAX_ENTRIES as u64 {
            count(Counter::FlowsEvicted);
        }
    }
}

/// Sends one record straight through the ring buffer (the flow map refused the flow).
#[inline(always)]
fn emit(key: &FlowKey, actor: &Actor, hook: u8, first: u64, last: u64, n: u64) {
    match AUDITOR_EVENTS.reserve::<FlowEvent>(0) {
        Some(mut entry) => {
            entry.write(FlowEvent {
                key: *key,
                first_seen_ns: first,
                last_seen_ns: last,
                count: n,
                pid: actor.pid,
                uid: actor.uid,
                comm: actor.comm,
                hook,
                _pad: [0; 7],
            });
            entry.submit(0);
        }
        None => count(Counter::RingbufFull),
    }
}

/// The network namespace cookie of a `struct sock *`, through offsets user space read
/// from kernel BTF (there is no CO-RE in Rust eBPF yet). 0 when unknown.
#[inline(always)]
pub fn sock_netns_cookie(sk: *const u8) -> u64 {
    if config!(netns_offsets_valid) == 0 || sk.is_null() {
        return 0;
    }
    let net =
        match unsafe { bpf_probe_read_kernel(sk.add(config!(off_sock_net) as usize) as *const u64) } {
            Ok(net) if net != 0 => net as *const u8,
            _ => {
                count(Counter::NetnsReadFailed);
                crate::log::netns_read_failed();
                return 0;
            }
        };
    match unsafe { bpf_probe_read_kernel(net.add(config!(off_net_cookie) as usize) as *const u64) } {
        Ok(cookie) => cookie,
        Err(_) => {
            count(Counter::NetnsReadFailed);
            crate::log::netns_read_failed();
            0
        }
    }
}

/// The same through direct loads, for `tp_btf`: `sk` is a BTF pointer there, so the
/// verifier checks each load against the kernel's types (faulting loads read as 0).
#[inline(always)]
pub fn sock_netns_cookie_btf(sk: *const u8) -> u64 {
    if config!(netns_offsets_valid) == 0 {
        return 0;
    }
    unsafe {
        let net =
            core::ptr::read_volatile(sk.add(config!(off_sock_net) as usize).cast::<u64>()) as *const u8;
        if net.is_null() {
            count(Counter::NetnsReadFailed);
            crate::log::netns_read_failed();
            return 0;
        }
        core::ptr::read_volatile(net.add(config!(off_net_cookie) as usize).cast::<u64>())
    }
}

/// The daemon's own connections are not audited.
#[inline(always)]
pub fn is_self(tgid: u32) -> bool {
    tgid != 0 && tgid == config!(self_tgid)
}
