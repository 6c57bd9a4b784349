//! Maps, load-time config and the per-flow aggregation every hook feeds: a flow's first
//! sighting in each epoch goes through the ring buffer at once; later sightings in the
//! epoch are an atomic add in the epoch's flow map, which user space drains.
//!
//! Epochs (see `auditor_common::FLOW_EPOCH_MAPS`): the programs count into one of three
//! flow maps, chosen by the epoch user space writes into `AUDITOR_EPOCH` at each sweep.
//! User space drains (reads, then empties) an ended epoch's map once no program still
//! runs with that epoch and all of its ring records can be read. So a sweep costs what the last epoch saw, not every flow the
//! node ever had, and a full map never evicts: a sighting it cannot hold goes through the
//! ring buffer, and one neither can take is counted as lost, in its epoch.

use core::intrinsics::{AtomicOrdering, atomic_cxchg, atomic_xadd};

const SEQ_CST: AtomicOrdering = AtomicOrdering::SeqCst;

use auditor_common::{
    CALIBRATE_EMPTY_PROGRAMS, CALIBRATE_NO_FLOW_MAP, COUNTER_SLOTS, Config, Counter,
    EVENTS_RING_BYTES, FAULT_FLOW_INSERT, FLOW_EPOCH_MAPS, FLOW_EVENT_ALONE, FLOWS_MAX_ENTRIES,
    FlowEvent, FlowKey, FlowStats, LISTENERS_MAX_ENTRIES, ListenerKey, ListenerOwner,
};
use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_ktime_get_ns, bpf_probe_read_kernel},
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
};

// One map per epoch slot (`epoch % FLOW_EPOCH_MAPS`). Plain hash maps, not LRU: a map
// that is full refuses the insert (the sighting then goes through the ring buffer)
// instead of silently evicting a flow whose connections were not delivered yet.
#[map]
pub static AUDITOR_FLOWS_0: HashMap<FlowKey, FlowStats> =
    HashMap::with_max_entries(FLOWS_MAX_ENTRIES, 0);
#[map]
pub static AUDITOR_FLOWS_1: HashMap<FlowKey, FlowStats> =
    HashMap::with_max_entries(FLOWS_MAX_ENTRIES, 0);
#[map]
pub static AUDITOR_FLOWS_2: HashMap<FlowKey, FlowStats> =
    HashMap::with_max_entries(FLOWS_MAX_ENTRIES, 0);
const _: () = assert!(FLOW_EPOCH_MAPS == 3);

/// The current epoch, written by user space at each sweep (slot 0).
#[map]
static AUDITOR_EPOCH: Array<u32> = Array::with_max_entries(1, 0);

/// Per epoch slot and CPU: connections neither a flow map nor the ring buffer could take.
/// User space reads and clears a slot when it drains that slot's map, so each loss is
/// recorded with the observations of its own epoch.
#[map]
static AUDITOR_LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(FLOW_EPOCH_MAPS, 0);

#[map]
pub static AUDITOR_EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_RING_BYTES, 0);

#[map]
pub static AUDITOR_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_SLOTS, 0);

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

/// The benchmark's floor arm (`CALIBRATE_EMPTY_PROGRAMS`): return before doing anything.
#[inline(always)]
pub fn empty_programs() -> bool {
    config!(calibrate) == CALIBRATE_EMPTY_PROGRAMS
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

/// A connection that reached neither a flow map nor the ring buffer: counted node-wide
/// (metrics) and in its epoch's slot (what the store records with that epoch).
#[inline(always)]
fn count_lost(epoch: u32) {
    count(Counter::ConnectionsLost);
    if let Some(slot) = AUDITOR_LOST.get_ptr_mut(epoch % FLOW_EPOCH_MAPS) {
        // Per-CPU, but a program in softirq (a passive open) can interrupt one in process
        // context on the same CPU between a load and a store: atomic, so none is missed.
        unsafe { atomic_xadd::<u64, u64, { SEQ_CST }>(slot, 1) };
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

/// Records one sighting of `key` in the current epoch's map; reports it through the ring
/// buffer when it is the flow's first in the epoch. `actor` is only called when a record
/// is emitted: a repeat sighting is a lookup and an atomic add.
#[inline(always)]
pub fn observe(key: &FlowKey, actor: impl FnOnce() -> Actor, hook: u8) {
    count(Counter::Sightings);
    // The benchmark's arm that measures everything but the flow maps.
    if config!(calibrate) == CALIBRATE_NO_FLOW_MAP {
        return;
    }
    let epoch = match AUDITOR_EPOCH.get(0) {
        Some(e) => unsafe { core::ptr::read_volatile(e) },
        None => 0,
    };
    // One call site per map, so the verifier knows each map and can inline its lookups.
    match epoch % FLOW_EPOCH_MAPS {
        0 => observe_in(&AUDITOR_FLOWS_0, epoch, key, actor, hook),
        1 => observe_in(&AUDITOR_FLOWS_1, epoch, key, actor, hook),
        _ => observe_in(&AUDITOR_FLOWS_2, epoch, key, actor, hook),
    }
}

#[inline(always)]
fn observe_in(
    flows: &HashMap<FlowKey, FlowStats>,
    epoch: u32,
    key: &FlowKey,
    actor: impl FnOnce() -> Actor,
    hook: u8,
) {
    let stats = match flows.get_ptr_mut(key) {
        Some(stats) => stats,
        None => {
            let now = unsafe { bpf_ktime_get_ns() };
            let fresh = FlowStats {
                first_seen_ns: now,
                last_report_ns: 0,
                count: 0,
            };
            let inject = fault_injected(FAULT_FLOW_INSERT);
            // NOEXIST: another CPU may have inserted the same flow meanwhile; theirs wins.
            if !inject && flows.insert(key, &fresh, BPF_NOEXIST as u64).is_ok() {
                count(Counter::FlowsInserted);
            }
            let stats = if inject { None } else { flows.get_ptr_mut(key) };
            match stats {
                Some(stats) => stats,
                None => {
                    // The epoch's map is full (or refused): this one connection goes
                    // through the ring buffer on its own.
                    count(Counter::FlowInsertFailed);
                    crate::log::flow_insert_failed();
                    emit(key, &actor(), hook, epoch, now);
                    return;
                }
            }
        }
    };
    // The bpfel target offers no `core::sync::atomic` read-modify-write, so the intrinsics
    // are used directly; they lower to BPF_ATOMIC add / cmpxchg. SeqCst is the only
    // ordering the BPF backend lowers for cmpxchg (it is what the kernel does anyway).
    unsafe {
        atomic_xadd::<u64, u64, { SEQ_CST }>(&raw mut (*stats).count, 1);

        // The repeat sighting's whole cost ends here: the flow was reported this epoch.
        // No clock is read for it (a clock read costs as much as the rest of this path on
        // a virtual machine): its drained record is timed by the epoch's end.
        let last_report = &raw mut (*stats).last_report_ns;
        if core::ptr::read_volatile(last_report) != 0 {
            return;
        }
        let now = bpf_ktime_get_ns();
        // One reporter per epoch even when several CPUs get here together.
        if !atomic_cxchg::<u64, { SEQ_CST }, { SEQ_CST }>(last_report, 0, now).1 {
            return;
        }
        let Some(mut entry) = AUDITOR_EVENTS.reserve::<FlowEvent>(0) else {
            // Counted, and nothing is lost: the connections stay in `count`, the drain of
            // this map delivers them, and the cleared stamp lets the next sighting retry.
            count(Counter::RingbufFull);
            core::ptr::write_volatile(last_report, 0);
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
            flags: 0,
            _pad: 0,
            epoch,
        });
        entry.submit(0);
    }
}

/// Sends one connection straight through the ring buffer (the epoch's map refused the
/// flow). With the ring full too it is lost, and counted in its epoch.
#[inline(always)]
fn emit(key: &FlowKey, actor: &Actor, hook: u8, epoch: u32, now: u64) {
    match AUDITOR_EVENTS.reserve::<FlowEvent>(0) {
        Some(mut entry) => {
            entry.write(FlowEvent {
                key: *key,
                first_seen_ns: now,
                last_seen_ns: now,
                count: 1,
                pid: actor.pid,
                uid: actor.uid,
                comm: actor.comm,
                hook,
                flags: FLOW_EVENT_ALONE,
                _pad: 0,
                epoch,
            });
            entry.submit(0);
        }
        None => {
            count(Counter::RingbufFull);
            count_lost(epoch);
        }
    }
}

/// The network namespace cookie of a `struct sock *`, through offsets user space read
/// from kernel BTF (there is no CO-RE in Rust eBPF yet). 0 when unknown.
#[inline(always)]
pub fn sock_netns_cookie(sk: *const u8) -> u64 {
    if config!(netns_offsets_valid) == 0 || sk.is_null() {
        return 0;
    }
    let net = match unsafe {
        bpf_probe_read_kernel(sk.add(config!(off_sock_net) as usize) as *const u64)
    } {
        Ok(net) if net != 0 => net as *const u8,
        _ => {
            count(Counter::NetnsReadFailed);
            crate::log::netns_read_failed();
            return 0;
        }
    };
    match unsafe { bpf_probe_read_kernel(net.add(config!(off_net_cookie) as usize) as *const u64) }
    {
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
        let net = core::ptr::read_volatile(sk.add(config!(off_sock_net) as usize).cast::<u64>())
            as *const u8;
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
