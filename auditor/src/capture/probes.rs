//! Loads the embedded kernel object, fills its load-time config, attaches every program,
//! and gives access to the maps. Dropping `Probes` (or the process exiting, even by
//! SIGKILL) detaches everything: all attachments are bpf links owned by this process.

use std::{fs::File, path::PathBuf};

use auditor_common::{
    COUNTER_SLOTS, Config, Counter, FLOW_EPOCH_MAPS, FlowKey, FlowStats, ListenerKey,
    ListenerOwner, SockOffsets,
    names::{self, *},
};
use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, PerCpuArray, PerCpuValues, RingBuf},
    programs::{
        BtfTracePoint, CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, CgroupSock,
        CgroupSockAddr, ProgramError, SockOps, TracePoint,
    },
};

use super::{
    btf, mounts,
    socket_iter::{self, ExistingSockets, SocketWalker},
};

/// The kernel object built by build.rs from `auditor-ebpf`.
static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/auditor-ebpf.o"));

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(
        "this auditor binary was built without its kernel programs (AUDITOR_SKIP_EBPF); rebuild it with `cargo xtask build`"
    )]
    NoObject,
    /// Checked before anything is loaded, so the user reads which capability is missing
    /// rather than a raw EPERM and a verifier dump.
    #[error(
        "this process lacks {}: run as root, or grant them (the Helm chart does)",
        missing.iter().map(|c| format!("{} ({})", c.name, c.purpose)).collect::<Vec<_>>().join(", ")
    )]
    MissingCapabilities { missing: Vec<Capability> },
    #[error("reading /proc/self/mountinfo: {0}")]
    Mountinfo(std::io::Error),
    #[error(
        "no cgroup v2 hierarchy is mounted (looked for a `cgroup2` mount of `/` in /proc/self/mountinfo); mount one, e.g. `mount -t cgroup2 none /sys/fs/cgroup/unified`"
    )]
    NoCgroup2,
    #[error("opening the cgroup v2 root {path}: {source}")]
    OpenCgroup {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tracefs is not mounted and mounting it at /sys/kernel/tracing failed: {0}")]
    Tracefs(std::io::Error),
    #[error("parsing the kernel object: {0}")]
    Object(#[source] aya::EbpfError),
    #[error("program `{name}` is missing from the kernel object")]
    MissingProgram { name: &'static str },
    #[error("map `{name}` is missing from the kernel object: {detail}")]
    MissingMap { name: &'static str, detail: String },
    /// The verifier's log is logged at debug level (`RUST_LOG=auditor=debug`), not here:
    /// it runs to kilobytes and says nothing to a user who lacks a permission.
    #[error("loading program `{name}` failed: {reason}")]
    Load { name: &'static str, reason: String },
    #[error("{var}: {detail}")]
    Environment { var: &'static str, detail: String },
    #[error("--tcp-hook {hook}: {reason}; `--tcp-hook auto` falls back to the classic tracepoint")]
    HookRefused { hook: &'static str, reason: String },
    #[error("attaching program `{name}` to {target} failed: {source}")]
    Attach {
        name: &'static str,
        target: String,
        source: ProgramError,
    },
}

/// A capability the probes need, with what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    pub name: &'static str,
    bit: u32,
    pub purpose: &'static str,
}

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// What loading and attaching the programs needs. CAP_SYS_ADMIN implies CAP_BPF and
/// CAP_PERFMON to the kernel (bpf_capable(), perfmon_capable()), as on older kernels.
pub const REQUIRED_CAPABILITIES: [Capability; 3] = [
    Capability {
        name: "CAP_BPF",
        bit: CAP_BPF,
        purpose: "load the programs and create their maps",
    },
    Capability {
        name: "CAP_PERFMON",
        bit: CAP_PERFMON,
        purpose: "attach the tracepoint and read socket memory from it",
    },
    Capability {
        name: "CAP_NET_ADMIN",
        bit: CAP_NET_ADMIN,
        purpose: "attach the cgroup connect/sendmsg/bind programs",
    },
];

/// The required capabilities missing from an effective set (`CapEff` of /proc/PID/status).
pub fn missing_capabilities(effective: u64) -> Vec<Capability> {
    let has = |bit: u32| effective & (1u64 << bit) != 0;
    REQUIRED_CAPABILITIES
        .into_iter()
        .filter(|c| !(has(c.bit) || (c.bit != CAP_NET_ADMIN && has(CAP_SYS_ADMIN))))
        .collect()
}

/// This process's effective capabilities.
fn effective_capabilities() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// A load failure in a user's words; the verifier's log goes to the debug log.
fn load_error(name: &'static str, e: ProgramError) -> ProbeError {
    let reason = match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            tracing::debug!(program = name, verifier_log = %verifier_log, "the verifier refused a program");
            let hint = match io_error.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => {
                    " (a capability is missing: CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN are needed)"
                }
                _ => " (RUST_LOG=auditor=debug shows the verifier's log)",
            };
            format!("the kernel said: {io_error}{hint}")
        }
        other => other.to_string(),
    };
    ProbeError::Load { name, reason }
}

/// What the loader needs to know beyond the object itself.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// This process's tgid is excluded from auditing.
    pub self_tgid: u32,
    pub record_interval: std::time::Duration,
    /// Distinct flows each epoch's flow map holds (`--flow-map-entries`).
    pub flow_map_entries: u32,
    /// The cgroup v2 root to attach to; found in /proc/self/mountinfo when None. In a
    /// container with its own cgroup namespace, give the host's (mounted by hostPath).
    pub cgroup_root: Option<PathBuf>,
    /// How often the node's open sockets are enumerated (and once at start).
    pub active_interval: std::time::Duration,
    /// Which TCP hook to use; `Auto` takes tp_btf when the kernel accepts it.
    pub tcp_hook: TcpHookChoice,
    /// How they are enumerated (`--existing-sockets`).
    pub existing_sockets: ExistingSockets,
    /// Attach the DNS answer program (`--dns`, on by default): a cgroup skb program that
    /// runs on every packet a socket of the node receives, and copies those from port 53.
    pub dns: bool,
}

/// Counters read from the kernel, summed over CPUs, in `Counter::ALL` order.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct KernelCounters {
    pub sightings: u64,
    pub ringbuf_full: u64,
    pub flows_inserted: u64,
    pub flow_insert_failed: u64,
    pub passive_no_listener: u64,
    pub netns_read_failed: u64,
    pub connections_lost: u64,
    pub unexpected_family: u64,
    pub dns_packets: u64,
    pub dns_ringbuf_full: u64,
    pub dns_truncated: u64,
    pub dns_unsolicited: u64,
}

impl KernelCounters {
    pub fn get(&self, c: Counter) -> u64 {
        match c {
            Counter::Sightings => self.sightings,
            Counter::RingbufFull => self.ringbuf_full,
            Counter::FlowsInserted => self.flows_inserted,
            Counter::FlowInsertFailed => self.flow_insert_failed,
            Counter::PassiveNoListener => self.passive_no_listener,
            Counter::NetnsReadFailed => self.netns_read_failed,
            Counter::ConnectionsLost => self.connections_lost,
            Counter::UnexpectedFamily => self.unexpected_family,
            Counter::DnsPackets => self.dns_packets,
            Counter::DnsRingFull => self.dns_ringbuf_full,
            Counter::DnsTruncated => self.dns_truncated,
            Counter::DnsUnsolicited => self.dns_unsolicited,
        }
    }
}

/// What one epoch's flow map held when it was drained.
pub struct Drained {
    pub flows: Vec<(FlowKey, FlowStats)>,
    /// Connections lost in the epoch: its map was full and so was the ring buffer.
    pub lost: u64,
}

pub struct Probes {
    ebpf: Ebpf,
    /// How long an epoch lasts: a flow active in it goes through the ring buffer once, and
    /// its map is drained at its end (see `stream`).
    pub record_interval: std::time::Duration,
    barrier: super::barrier::RcuBarrier,
    /// How often the stream enumerates the sockets already open (see `existing`).
    pub active_interval: std::time::Duration,
    /// The walk made before the capture announced itself, for the stream to report.
    pub first_walk: Option<super::existing::Scan>,
    /// When every hook was attached: what the capture watched starts here.
    pub attached_at: std::time::SystemTime,
    pub cgroup_root: PathBuf,
    /// None when kernel BTF could not be read: flows then carry netns_cookie 0 for TCP.
    pub netns_offsets: Option<btf::NetnsOffsets>,
    /// Which program sees TCP opens: sock_ops, `tp_btf` or the classic tracepoint.
    pub tcp_hook: TcpHook,
    /// Enumerates the open sockets: the socket iterator, or /proc (the fallback).
    pub sockets: SocketWalker,
    /// Bridges the programs' aya-log records to `tracing`; kept alive (dropping it closes
    /// the log map).
    _logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
}

/// How TCP opens are hooked. sock_ops runs 9 times per loopback connection (its connect,
/// passive-established, timeout, window and ECN callbacks on both ends), each run a little
/// cheaper than tp_btf's, which runs on all 10 state changes: its floor is 0.89x tp_btf's
/// here (docs/benchmarks.md).
///
/// fentry on `tcp_connect`/`__inet_accept` would cost 2 runs per connection instead of
/// 11, but kernels that forbid ftrace-based attachment (this project's CI kernel refuses
/// fentry programs with EPERM, as hardened kernels often do) cannot run it, and a path
/// that cannot be tested here is not shipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TcpHook {
    /// `tp_btf/inet_sock_set_state`: states read from its arguments, so the eight state
    /// changes per connection we ignore stop at a compare.
    TpBtf,
    /// `tracepoint/sock/inet_sock_set_state`: kernels without BTF, or when tp_btf failed.
    Tracepoint,
    /// `sock_ops` on the cgroup root: its connect and passive-established callbacks (the
    /// default). It needs a kernel that lets sock_ops programs read the current task (pid,
    /// comm, uid, cgroup) and the netns cookie: recent kernels (this project's 6.18 does;
    /// older ones refuse it and `auto` takes tp_btf). Like the UDP hooks it sees the
    /// sockets under `--cgroup-root`.
    SockOps,
}

impl TcpHook {
    pub fn name(self) -> &'static str {
        match self {
            TcpHook::TpBtf => "tp_btf",
            TcpHook::Tracepoint => "tracepoint",
            TcpHook::SockOps => "sock_ops",
        }
    }
}

/// `--tcp-hook`: which `TcpHook` to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TcpHookChoice {
    /// sock_ops, else tp_btf, else the classic tracepoint.
    Auto,
    /// tp_btf only; fail if the kernel refuses it.
    TpBtf,
    /// The classic tracepoint.
    Tracepoint,
    /// sock_ops on the cgroup root; fail if the kernel refuses it.
    SockOps,
}

impl Probes {
    pub fn load_and_attach(opts: &ProbeOptions) -> Result<Self, ProbeError> {
        if EBPF_OBJECT.is_empty() {
            return Err(ProbeError::NoObject);
        }
        if let Some(effective) = effective_capabilities() {
            let missing = missing_capabilities(effective);
            if !missing.is_empty() {
                return Err(ProbeError::MissingCapabilities { missing });
            }
        }
        let mounts = mounts::read_mountinfo().map_err(ProbeError::Mountinfo)?;
        let cgroup_root = match &opts.cgroup_root {
            Some(p) => p.clone(),
            None => mounts::cgroup2_root(&mounts).ok_or(ProbeError::NoCgroup2)?,
        };
        mounts::ensure_tracefs(&mounts).map_err(ProbeError::Tracefs)?;

        let kernel_btf = btf::read(std::path::Path::new(btf::VMLINUX_BTF));
        let netns_offsets = match kernel_btf.as_ref().map(btf::netns_offsets_in) {
            Ok(Ok(o)) => Some(o),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "TCP flows will carry no network namespace");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "TCP flows will carry no network namespace");
                None
            }
        };
        let sock_offsets = match kernel_btf.as_ref().map(btf::sock_offsets_in) {
            Ok(Ok(o)) => Some(o),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "TCP opens go through the classic tracepoint");
                None
            }
            Err(_) => None,
        };
        let config = Config {
            self_tgid: opts.self_tgid,
            netns_offsets_valid: netns_offsets.is_some() as u32,
            off_sock_net: netns_offsets.map_or(0, |o| o.sock_net),
            off_net_cookie: netns_offsets.map_or(0, |o| o.net_cookie),
            _pad0: 0,
            sock: sock_offsets.unwrap_or(SockOffsets::NONE),
            inject_faults: injected_faults()?,
            calibrate: calibrate()?,
        };
        let iter_config = socket_iter::iter_config(kernel_btf.as_ref(), opts.existing_sockets);
        // Both parses of kernel BTF are large (about 34 MiB for this one, 18 MiB for aya's
        // below): they are the daemon's lifetime peak of memory, so never hold both.
        drop(kernel_btf);
        let mut ebpf = EbpfLoader::new()
            .override_global(names::GLOBAL_CONFIG, &config, true)
            .override_global(
                names::GLOBAL_ITER_CONFIG,
                iter_config
                    .as_ref()
                    .unwrap_or(&auditor_common::IterConfig::DEFAULT),
                true,
            )
            .map_max_entries(MAP_FLOWS[0], opts.flow_map_entries)
            .map_max_entries(MAP_FLOWS[1], opts.flow_map_entries)
            .map_max_entries(MAP_FLOWS[2], opts.flow_map_entries)
            .load(EBPF_OBJECT)
            .map_err(ProbeError::Object)?;
        let barrier = {
            let epoch = ebpf.map(MAP_EPOCH).ok_or(ProbeError::MissingMap {
                name: MAP_EPOCH,
                detail: "absent".into(),
            })?;
            let epoch: &MapData = match epoch {
                aya::maps::Map::Array(data) => data,
                _ => {
                    return Err(ProbeError::MissingMap {
                        name: MAP_EPOCH,
                        detail: "not an array".into(),
                    });
                }
            };
            use std::os::fd::AsFd;
            super::barrier::RcuBarrier::new(epoch.fd().as_fd()).map_err(|e| {
                ProbeError::MissingMap {
                    name: MAP_EPOCH,
                    detail: format!(
                        "creating the array of maps that waits for running programs (BPF_MAP_TYPE_ARRAY_OF_MAPS; any kernel with the ring buffer, 5.8+, has it): {e}"
                    ),
                }
            })?
        };
        // aya's own parse, for the programs that attach by BTF id; dropped once they are.
        let aya_btf = Btf::from_sys_fs();
        let sockets = SocketWalker::load(
            &mut ebpf,
            aya_btf.as_ref(),
            opts.existing_sockets,
            iter_config,
        )
        .map_err(|reason| ProbeError::Load {
            name: names::PROG_ITER_SOCKETS,
            reason,
        })?;
        // The programs' error paths log through aya-log; without it they are still counted.
        let logger = match aya_log::EbpfLogger::init(&mut ebpf) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(error = %e, "kernel error records will be counted but not logged");
                None
            }
        };

        let cgroup = File::open(&cgroup_root).map_err(|source| ProbeError::OpenCgroup {
            path: cgroup_root.clone(),
            source,
        })?;
        let cg_name = cgroup_root.display().to_string();
        // Listener owners first, so passive opens right after start find their server.
        for name in [PROG_POST_BIND4, PROG_POST_BIND6] {
            let prog: &mut CgroupSock = program(&mut ebpf, name)?;
            prog.load().map_err(|e| load_error(name, e))?;
            prog.attach(&cgroup, CgroupAttachMode::Single)
                .map_err(|source| ProbeError::Attach {
                    name,
                    target: cg_name.clone(),
                    source,
                })?;
        }
        for name in [
            PROG_CONNECT4,
            PROG_CONNECT6,
            PROG_SENDMSG4,
            PROG_SENDMSG6,
            PROG_RECVMSG4,
            PROG_RECVMSG6,
        ] {
            let prog: &mut CgroupSockAddr = program(&mut ebpf, name)?;
            prog.load().map_err(|e| load_error(name, e))?;
            prog.attach(&cgroup, CgroupAttachMode::Single)
                .map_err(|source| ProbeError::Attach {
                    name,
                    target: cg_name.clone(),
                    source,
                })?;
        }
        if opts.dns {
            let prog: &mut CgroupSkb = program(&mut ebpf, PROG_DNS_INGRESS)?;
            prog.load().map_err(|e| load_error(PROG_DNS_INGRESS, e))?;
            prog.attach(
                &cgroup,
                CgroupSkbAttachType::Ingress,
                CgroupAttachMode::Single,
            )
            .map_err(|source| ProbeError::Attach {
                name: PROG_DNS_INGRESS,
                target: cg_name.clone(),
                source,
            })?;
        }
        // sock_ops, else tp_btf, else the classic tracepoint: the cheapest this kernel
        // takes (docs/benchmarks.md), unless one is named.
        let mut tcp_hook = None;
        if matches!(opts.tcp_hook, TcpHookChoice::Auto | TcpHookChoice::SockOps) {
            match attach_sock_ops(&mut ebpf, &cgroup, &cg_name) {
                Ok(()) => tcp_hook = Some(TcpHook::SockOps),
                Err(e) if opts.tcp_hook == TcpHookChoice::Auto => {
                    // Expected on kernels whose sock_ops cannot read the current task.
                    tracing::info!(error = %e, "sock_ops refused; trying tp_btf for TCP opens");
                }
                Err(e) => return Err(e),
            }
        }
        if tcp_hook.is_none()
            && matches!(opts.tcp_hook, TcpHookChoice::Auto | TcpHookChoice::TpBtf)
            && sock_offsets.is_some()
            && attach_tp_btf(&mut ebpf, aya_btf.as_ref())?
        {
            tcp_hook = Some(TcpHook::TpBtf);
        }
        drop(aya_btf);
        if opts.tcp_hook == TcpHookChoice::TpBtf && tcp_hook.is_none() {
            return Err(ProbeError::HookRefused {
                hook: "tp-btf",
                reason: "this kernel refused it (see the warning above)".into(),
            });
        }
        let tcp_hook = match tcp_hook {
            Some(hook) => hook,
            None => {
                let prog: &mut TracePoint = program(&mut ebpf, PROG_TCP_STATE)?;
                prog.load().map_err(|e| load_error(PROG_TCP_STATE, e))?;
                prog.attach("sock", "inet_sock_set_state")
                    .map_err(|source| ProbeError::Attach {
                        name: PROG_TCP_STATE,
                        target: "tracepoint sock/inet_sock_set_state".into(),
                        source,
                    })?;
                TcpHook::Tracepoint
            }
        };
        tracing::info!(tcp_hook = tcp_hook.name(), "TCP opens hooked");
        Ok(Probes {
            ebpf,
            record_interval: opts.record_interval,
            active_interval: opts.active_interval,
            barrier,
            first_walk: None,
            attached_at: std::time::SystemTime::now(),
            cgroup_root,
            netns_offsets,
            tcp_hook,
            sockets,
            _logger: logger,
        })
    }

    /// Hands the kernel's log records (aya-log) to `tracing`. Called every few seconds:
    /// the programs log only errors, rate-limited, so the buffer never fills between calls.
    pub fn flush_kernel_log(&mut self) {
        if let Some(logger) = &mut self._logger {
            logger.flush();
        }
    }

    /// Records a listening socket's owner found by the enumeration of open sockets, so
    /// passive opens to a server that bound before the probes were attached name it.
    /// A listener the kernel recorded itself (post_bind) is left as it is.
    pub fn seed_listener(
        &mut self,
        key: &ListenerKey,
        owner: &ListenerOwner,
    ) -> Result<(), ProbeError> {
        let map = self
            .ebpf
            .map_mut(MAP_LISTENERS)
            .ok_or(ProbeError::MissingMap {
                name: MAP_LISTENERS,
                detail: "absent".into(),
            })?;
        let mut listeners =
            HashMap::<_, ListenerKey, ListenerOwner>::try_from(map).map_err(|e| {
                ProbeError::MissingMap {
                    name: MAP_LISTENERS,
                    detail: e.to_string(),
                }
            })?;
        // BPF_NOEXIST: an entry that exists is the kernel's own, from bind time.
        match listeners.insert(key, owner, 1) {
            Err(aya::maps::MapError::SyscallError(e))
                if e.io_error.raw_os_error() == Some(libc::EEXIST) =>
            {
                Ok(())
            }
            Err(e) => Err(ProbeError::MissingMap {
                name: MAP_LISTENERS,
                detail: format!("inserting a listener: {e}"),
            }),
            Ok(()) => Ok(()),
        }
    }

    /// Enumerates the node's open sockets with their owners (see `socket_iter`).
    pub fn scan_open_sockets(&mut self) -> super::existing::Scan {
        self.sockets.scan(&mut self.ebpf, &self.cgroup_root)
    }

    /// Takes the ring buffer out (once); records are read from it until shutdown.
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, ProbeError> {
        let map = self
            .ebpf
            .take_map(MAP_EVENTS)
            .ok_or(ProbeError::MissingMap {
                name: MAP_EVENTS,
                detail: "absent or already taken".into(),
            })?;
        RingBuf::try_from(map).map_err(|e| ProbeError::MissingMap {
            name: MAP_EVENTS,
            detail: e.to_string(),
        })
    }

    pub fn counters(&self) -> Result<KernelCounters, ProbeError> {
        let map = self.ebpf.map(MAP_COUNTERS).ok_or(ProbeError::MissingMap {
            name: MAP_COUNTERS,
            detail: "absent".into(),
        })?;
        let array = PerCpuArray::<_, u64>::try_from(map).map_err(|e| ProbeError::MissingMap {
            name: MAP_COUNTERS,
            detail: e.to_string(),
        })?;
        let mut sums = [0u64; COUNTER_SLOTS as usize];
        for (slot, sum) in sums.iter_mut().enumerate() {
            if let Ok(per_cpu) = array.get(&(slot as u32), 0) {
                *sum = per_cpu.iter().sum();
            }
        }
        let get = |c: Counter| sums[c as usize];
        Ok(KernelCounters {
            sightings: get(Counter::Sightings),
            ringbuf_full: get(Counter::RingbufFull),
            flows_inserted: get(Counter::FlowsInserted),
            flow_insert_failed: get(Counter::FlowInsertFailed),
            passive_no_listener: get(Counter::PassiveNoListener),
            netns_read_failed: get(Counter::NetnsReadFailed),
            connections_lost: get(Counter::ConnectionsLost),
            unexpected_family: get(Counter::UnexpectedFamily),
            dns_packets: get(Counter::DnsPackets),
            dns_ringbuf_full: get(Counter::DnsRingFull),
            dns_truncated: get(Counter::DnsTruncated),
            dns_unsolicited: get(Counter::DnsUnsolicited),
        })
    }

    /// Starts `epoch`: from now on the programs count into its map.
    pub fn set_epoch(&mut self, epoch: u32) -> Result<(), ProbeError> {
        let map = self.ebpf.map_mut(MAP_EPOCH).ok_or(ProbeError::MissingMap {
            name: MAP_EPOCH,
            detail: "absent".into(),
        })?;
        let mut array = Array::<_, u32>::try_from(map).map_err(|e| ProbeError::MissingMap {
            name: MAP_EPOCH,
            detail: e.to_string(),
        })?;
        array.set(0, epoch, 0).map_err(|e| ProbeError::MissingMap {
            name: MAP_EPOCH,
            detail: format!("setting the epoch: {e}"),
        })
    }

    /// Returns once every program that was running has finished (see `barrier`).
    pub fn wait_for_programs(&self) -> std::io::Result<()> {
        self.barrier.wait()
    }

    /// Reads everything `epoch`'s map holds, and the connections lost in that epoch,
    /// changing nothing. Call it only for an epoch no program writes any more (see
    /// `stream`), then `empty_epoch` once what it read was delivered: a failure of either
    /// leaves the map as it was, to be tried again. Costs two syscalls per flow the epoch
    /// saw, however many the node ever had.
    pub fn read_epoch(&self, epoch: u32) -> Result<Drained, ProbeError> {
        let slot = epoch % FLOW_EPOCH_MAPS;
        let name = MAP_FLOWS[slot as usize];
        let missing = |detail: String| ProbeError::MissingMap { name, detail };
        let map = self
            .ebpf
            .map(name)
            .ok_or_else(|| missing("absent".into()))?;
        let flows =
            HashMap::<_, FlowKey, FlowStats>::try_from(map).map_err(|e| missing(e.to_string()))?;
        let mut read = Vec::new();
        for key in flows.keys() {
            let key = key.map_err(|e| missing(format!("walking the map: {e}")))?;
            let stats = flows
                .get(&key, 0)
                .map_err(|e| missing(format!("reading a flow: {e}")))?;
            read.push((key, stats));
        }
        let lost = self
            .lost_array()?
            .get(&slot, 0)
            .map_err(|e| ProbeError::MissingMap {
                name: MAP_LOST,
                detail: e.to_string(),
            })?;
        Ok(Drained {
            flows: read,
            lost: lost.iter().sum(),
        })
    }

    /// Empties `epoch`'s map of what `read_epoch` found, and its lost count, so the
    /// slot starts empty when a later epoch uses it. Retried whole on failure (a key
    /// already removed is skipped).
    pub fn empty_epoch(&mut self, epoch: u32, drained: &Drained) -> Result<(), ProbeError> {
        let slot = epoch % FLOW_EPOCH_MAPS;
        let name = MAP_FLOWS[slot as usize];
        let missing = |detail: String| ProbeError::MissingMap { name, detail };
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or_else(|| missing("absent".into()))?;
        let mut flows =
            HashMap::<_, FlowKey, FlowStats>::try_from(map).map_err(|e| missing(e.to_string()))?;
        for (key, _) in &drained.flows {
            match flows.remove(key) {
                Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
                Err(e) => return Err(missing(format!("emptying the map: {e}"))),
            }
        }
        if drained.lost > 0 {
            let lost_err = |e: &dyn std::fmt::Display| ProbeError::MissingMap {
                name: MAP_LOST,
                detail: e.to_string(),
            };
            let cpus = aya::util::nr_cpus().map_err(|(_, e)| lost_err(&e))?;
            let zero = PerCpuValues::try_from(vec![0u64; cpus]).map_err(|e| lost_err(&e))?;
            let map = self.ebpf.map_mut(MAP_LOST).ok_or(ProbeError::MissingMap {
                name: MAP_LOST,
                detail: "absent".into(),
            })?;
            PerCpuArray::<_, u64>::try_from(map)
                .map_err(|e| lost_err(&e))?
                .set(slot, zero, 0)
                .map_err(|e| lost_err(&e))?;
        }
        Ok(())
    }

    fn lost_array(&self) -> Result<PerCpuArray<&MapData, u64>, ProbeError> {
        let map = self.ebpf.map(MAP_LOST).ok_or(ProbeError::MissingMap {
            name: MAP_LOST,
            detail: "absent".into(),
        })?;
        PerCpuArray::try_from(map).map_err(|e| ProbeError::MissingMap {
            name: MAP_LOST,
            detail: e.to_string(),
        })
    }

    /// Detaches and unloads every program; the maps stay readable for a final drain
    /// (after `wait_for_programs`).
    pub fn detach(&mut self) {
        use aya::programs::Program;
        for (name, prog) in self.ebpf.programs_mut() {
            let result = match prog {
                Program::TracePoint(p) => p.unload(),
                Program::BtfTracePoint(p) => p.unload(),
                Program::CgroupSockAddr(p) => p.unload(),
                Program::CgroupSock(p) => p.unload(),
                Program::CgroupSkb(p) => p.unload(),
                Program::SockOps(p) => p.unload(),
                _ => Ok(()),
            };
            match result {
                // Two of the three TCP programs are never loaded (see `TcpHook`).
                Ok(()) | Err(ProgramError::NotLoaded) => {}
                Err(e) => tracing::warn!(program = name, error = %e, "unloading program"),
            }
        }
    }
}

/// `AUDITOR_INJECT_KERNEL_FAULTS`: kernel error paths to take on purpose, for the tests
/// that prove errors are logged and counted. Comma-separated: `flow_insert`. Never set it
/// in production: every new flow then goes straight through the ring buffer.
pub const INJECT_FAULTS_ENV: &str = "AUDITOR_INJECT_KERNEL_FAULTS";

fn injected_faults() -> Result<u32, ProbeError> {
    let Ok(spec) = std::env::var(INJECT_FAULTS_ENV) else {
        return Ok(0);
    };
    let mut faults = 0;
    for name in spec.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        faults |= match name {
            "flow_insert" => auditor_common::FAULT_FLOW_INSERT,
            other => {
                return Err(ProbeError::Environment {
                    var: INJECT_FAULTS_ENV,
                    detail: format!("unknown fault `{other}` (known: flow_insert)"),
                });
            }
        };
    }
    if faults != 0 {
        tracing::warn!(faults = %spec, "{INJECT_FAULTS_ENV} is set: kernel error paths are taken on purpose (tests only)");
    }
    Ok(faults)
}

/// `AUDITOR_KERNEL_CALIBRATE`: how far the programs go (`Config::calibrate`). Only
/// `cargo xtask bench capture` sets it, to split the cost: `empty-programs` (every program
/// returns at once: the hooks' floor) or `no-flow-map` (all but the flow maps). Either
/// way nothing is captured.
pub const CALIBRATE_ENV: &str = "AUDITOR_KERNEL_CALIBRATE";

fn calibrate() -> Result<u32, ProbeError> {
    let level = match std::env::var(CALIBRATE_ENV).as_deref() {
        Err(_) | Ok("") => return Ok(auditor_common::CALIBRATE_OFF),
        Ok("empty-programs") => auditor_common::CALIBRATE_EMPTY_PROGRAMS,
        Ok("no-flow-map") => auditor_common::CALIBRATE_NO_FLOW_MAP,
        Ok(other) => {
            return Err(ProbeError::Environment {
                var: CALIBRATE_ENV,
                detail: format!("unknown value `{other}` (known: empty-programs, no-flow-map)"),
            });
        }
    };
    tracing::warn!(
        "{CALIBRATE_ENV} is set: the programs stop early and NOTHING is captured (benchmark arms only)"
    );
    Ok(level)
}

/// Loads and attaches the sock_ops TCP program on the cgroup root.
fn attach_sock_ops(ebpf: &mut Ebpf, cgroup: &File, cg_name: &str) -> Result<(), ProbeError> {
    let prog: &mut SockOps = program(ebpf, PROG_TCP_SOCK_OPS)?;
    prog.load().map_err(|e| load_error(PROG_TCP_SOCK_OPS, e))?;
    prog.attach(cgroup, CgroupAttachMode::Single)
        .map_err(|source| ProbeError::Attach {
            name: PROG_TCP_SOCK_OPS,
            target: cg_name.to_string(),
            source,
        })?;
    Ok(())
}

/// Loads and attaches the tp_btf TCP program. Ok(false) when this kernel refuses it (the
/// caller falls back to the classic tracepoint, which every kernel with BPF offers).
fn attach_tp_btf(ebpf: &mut Ebpf, btf: Result<&Btf, &aya::BtfError>) -> Result<bool, ProbeError> {
    let btf = match btf {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "no kernel BTF for tp_btf; using the classic tracepoint");
            return Ok(false);
        }
    };
    let prog: &mut BtfTracePoint = program(ebpf, PROG_TCP_STATE_BTF)?;
    if let Err(e) = prog.load(TP_BTF_TCP_STATE, btf) {
        tracing::warn!(error = %load_error(PROG_TCP_STATE_BTF, e), "using the classic tracepoint");
        return Ok(false);
    }
    if let Err(e) = prog.attach() {
        tracing::warn!(error = %e, "attaching tp_btf/{TP_BTF_TCP_STATE}; using the classic tracepoint");
        let _ = prog.unload();
        return Ok(false);
    }
    Ok(true)
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, ProbeError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program>,
{
    let prog = ebpf
        .program_mut(name)
        .ok_or(ProbeError::MissingProgram { name })?;
    prog.try_into()
        .map_err(|_| ProbeError::MissingProgram { name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_capabilities_are_named_and_sys_admin_stands_in_for_bpf_and_perfmon() {
        let all = (1u64 << CAP_BPF) | (1u64 << CAP_PERFMON) | (1u64 << CAP_NET_ADMIN);
        assert!(missing_capabilities(all).is_empty());
        assert!(missing_capabilities(u64::MAX).is_empty());
        let names = |m: Vec<Capability>| m.iter().map(|c| c.name).collect::<Vec<_>>();
        assert_eq!(
            names(missing_capabilities(0)),
            ["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN"]
        );
        assert_eq!(
            names(missing_capabilities(all & !(1u64 << CAP_PERFMON))),
            ["CAP_PERFMON"]
        );
        // Older kernels' way: SYS_ADMIN covers bpf() and perf, not the cgroup attach.
        assert_eq!(
            names(missing_capabilities(1u64 << CAP_SYS_ADMIN)),
            ["CAP_NET_ADMIN"]
        );
        let e = ProbeError::MissingCapabilities {
            missing: missing_capabilities(all & !(1u64 << CAP_PERFMON)),
        };
        assert_eq!(
            e.to_string(),
            "this process lacks CAP_PERFMON (attach the tracepoint and read socket memory from it): \
             run as root, or grant them (the Helm chart does)"
        );
    }
}
