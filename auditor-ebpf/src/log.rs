//! The programs' error paths, reported through aya-log (user space bridges it to the
//! daemon's `tracing`). Every occurrence is counted by the caller (`flow::count`); the log
//! record is rate-limited to one per kind per CPU per second, so a storm of one failure
//! cannot flood the log ring. Nothing here runs on the success path.

use aya_ebpf::{helpers::bpf_ktime_get_ns, macros::map, maps::PerCpuArray};
use aya_log_ebpf::warn;

/// Error kinds: the index of each one's last-log time.
const FLOW_INSERT_FAILED: u32 = 0;
const NETNS_READ_FAILED: u32 = 1;
const UNEXPECTED_FAMILY: u32 = 2;
const KINDS: u32 = 3;

const LOG_EVERY_NS: u64 = 1_000_000_000;

/// Per CPU and kind: when a record was last logged.
#[map]
static AUDITOR_LOG_LAST: PerCpuArray<u64> = PerCpuArray::with_max_entries(KINDS, 0);

#[inline(always)]
fn due(kind: u32) -> bool {
    let Some(last) = AUDITOR_LOG_LAST.get_ptr_mut(kind) else {
        return false;
    };
    let now = unsafe { bpf_ktime_get_ns() };
    // Per-CPU slot: no other CPU writes it.
    unsafe {
        if *last != 0 && now.wrapping_sub(*last) < LOG_EVERY_NS {
            return false;
        }
        *last = now;
    }
    true
}

// aya-log-ebpf 0.2 writes to its own ring buffer and ignores the context argument.

#[inline(never)]
pub fn flow_insert_failed() {
    if due(FLOW_INSERT_FAILED) {
        warn!(
            &(),
            "flow map refused an insert; the sighting went straight to the ring buffer (counted: flow_insert_failed)"
        );
    }
}

#[inline(never)]
pub fn netns_read_failed() {
    if due(NETNS_READ_FAILED) {
        warn!(
            &(),
            "reading a socket's network namespace failed (counted: netns_read_failed)"
        );
    }
}

#[inline(never)]
pub fn unexpected_family(family: u16) {
    if due(UNEXPECTED_FAMILY) {
        warn!(
            &(),
            "TCP socket of unexpected family {}; skipped (counted: unexpected_family)", family
        );
    }
}
