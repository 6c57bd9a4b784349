//! Waiting until no eBPF program still runs with what it read before a given moment.
//!
//! The programs read the current epoch at their start (`AUDITOR_EPOCH`) and count into
//! that epoch's flow map. Before user space drains a map it retired, every program that
//! may have read the old epoch must have finished. Programs run inside an RCU read-side
//! section, and the kernel offers one way for user space to wait out such sections: an
//! update of a map-of-maps returns only after `synchronize_rcu()`
//! (`maybe_wait_bpf_programs` in kernel/bpf/syscall.c, since 4.20; the upstream
//! selftests wait the same way, `kern_sync_rcu`). So the barrier is
//! a one-slot `BPF_MAP_TYPE_ARRAY_OF_MAPS` that nothing reads, updated once per epoch.
//!
//! aya can open such a map from an object but not create one on its own (it needs an
//! inner-map template), so the two `bpf()` commands are made here directly.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_TYPE_ARRAY_OF_MAPS: u32 = 12;

/// The leading fields of `union bpf_attr` for `BPF_MAP_CREATE`; the rest stays zero,
/// which the kernel requires of fields a caller does not use.
#[repr(C)]
#[derive(Default)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    _zero: [u64; 12],
}

/// `union bpf_attr` for `BPF_MAP_UPDATE_ELEM`.
#[repr(C)]
#[derive(Default)]
struct MapUpdate {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
    _zero: [u64; 4],
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a zero-padded `union bpf_attr` prefix of the command's layout,
    // and the size passed is exactly its size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The barrier: a one-slot array of maps holding `inner` (any array map of ours).
pub struct RcuBarrier {
    outer: OwnedFd,
    inner: u32,
}

impl RcuBarrier {
    pub fn new(inner: BorrowedFd<'_>) -> std::io::Result<RcuBarrier> {
        let mut attr = MapCreate {
            map_type: BPF_MAP_TYPE_ARRAY_OF_MAPS,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            inner_map_fd: inner.as_raw_fd() as u32,
            ..MapCreate::default()
        };
        let fd = bpf(BPF_MAP_CREATE, &mut attr)?;
        // SAFETY: BPF_MAP_CREATE returned a new file descriptor that nothing else owns.
        let outer = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let barrier = RcuBarrier {
            outer,
            inner: inner.as_raw_fd() as u32,
        };
        Ok(barrier)
    }

    /// Returns once every eBPF program running when it was called has finished.
    pub fn wait(&self) -> std::io::Result<()> {
        let key: u32 = 0;
        let value: u32 = self.inner;
        let mut attr = MapUpdate {
            map_fd: self.outer.as_raw_fd() as u32,
            key: &key as *const u32 as u64,
            value: &value as *const u32 as u64,
            ..MapUpdate::default()
        };
        bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(|_| ())
    }
}
