//! Capture: the kernel probes (load, attach, detach), their records, and the stream that
//! turns ring-buffer records into complete flow records: enriched here (cgroup path,
//! network namespace addresses) from /sys and /proc, so nothing downstream reads them.

pub mod barrier;
pub mod btf;
pub mod cgroups;
pub mod enrich;
pub mod existing;
pub mod mounts;
pub mod netns;
pub mod probes;
pub mod record;
pub mod socket_iter;
pub mod stream;

pub use probes::{ProbeError, ProbeOptions, Probes};
pub use record::{Direction, FlowRecord, Transport};
pub use stream::Summary;

/// The kernel's release (`uname -r`), or "unknown": where observations came from.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`), or "unknown": network namespace
/// cookies are only unique within one boot.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
