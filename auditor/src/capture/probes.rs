//! Loads the embedded kernel object, fills its load-time config, attaches every program,
//! and gives access to the maps. Dropping `Probes` (or the process exiting, even by
//! SIGKILL) detaches everything: all attachments are bpf links owned by this process.

use std::{fs::File, path::PathBuf};

use auditor_common::{
    COUNTER_SLOTS, Config, Counter, FlowKey, FlowStats,
    names::{self, *},
};
use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap, MapData, PerCpuArray, RingBuf},
    programs::{CgroupAttachMode, CgroupSock, CgroupSockAddr, ProgramError, TracePoint},
};

use super::{btf, mounts};

/// The kernel object built by build.rs from `auditor-ebpf`.
static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/auditor-ebpf.o"));

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(
        "this auditor binary was built without its kernel programs (AUDITOR_SKIP_EBPF); rebuild it with `cargo xtask build`"
    )]
    NoObject,
    #[error(
        "loading kernel programs needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_SYS_RESOURCE); run as root"
    )]
    NotRoot,
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
    /// The verifier's log is part of `source`'s message.
    #[error("loading program `{name}` failed: {source}")]
    Load {
        name: &'static str,
        source: ProgramError,
    },
    #[error("attaching program `{name}` to {target} failed: {source}")]
    Attach {
        name: &'static str,
        target: String,
        source: ProgramError,
    },
}

/// What the loader needs to know beyond the object itself.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// This process's tgid is excluded from auditing.
    pub self_tgid: u32,
    pub report_interval: std::time::Duration,
    /// The cgroup v2 root to attach to; found in /proc/self/mountinfo when None. In a
    /// container with its own cgroup namespace, give the host's (mounted by hostPath).
    pub cgroup_root: Option<PathBuf>,
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
        }
    }
}

pub struct Probes {
    ebpf: Ebpf,
    /// How often the kernel re-reports an active flow; user space sweeps as often.
    pub report_interval: std::time::Duration,
    pub cgroup_root: PathBuf,
    /// None when kernel BTF could not be read: flows then carry netns_cookie 0 for TCP.
    pub netns_offsets: Option<btf::NetnsOffsets>,
}

impl Probes {
    pub fn load_and_attach(opts: &ProbeOptions) -> Result<Self, ProbeError> {
        if EBPF_OBJECT.is_empty() {
            return Err(ProbeError::NoObject);
        }
        if !nix::unistd::geteuid().is_root() {
            return Err(ProbeError::NotRoot);
        }
        let mounts = mounts::read_mountinfo().map_err(ProbeError::Mountinfo)?;
        let cgroup_root = match &opts.cgroup_root {
            Some(p) => p.clone(),
            None => mounts::cgroup2_root(&mounts).ok_or(ProbeError::NoCgroup2)?,
        };
        mounts::ensure_tracefs(&mounts).map_err(ProbeError::Tracefs)?;

        let netns_offsets = match btf::netns_offsets(std::path::Path::new(btf::VMLINUX_BTF)) {
            Ok(o) => Some(o),
            Err(e) => {
                tracing::warn!(error = %e, "TCP flows will carry no network namespace");
                None
            }
        };
        let config = Config {
            self_tgid: opts.self_tgid,
            netns_offsets_valid: netns_offsets.is_some() as u32,
            off_sock_net: netns_offsets.map_or(0, |o| o.sock_net),
            off_net_cookie: netns_offsets.map_or(0, |o| o.net_cookie),
            report_interval_ns: opts.report_interval.as_nanos().min(u64::MAX as u128) as u64,
        };
        let mut ebpf = EbpfLoader::new()
            .override_global(names::GLOBAL_CONFIG, &config, true)
            .load(EBPF_OBJECT)
            .map_err(ProbeError::Object)?;

        let cgroup = File::open(&cgroup_root).map_err(|source| ProbeError::OpenCgroup {
            path: cgroup_root.clone(),
            source,
        })?;
        let cg_name = cgroup_root.display().to_string();
        // Listener owners first, so passive opens right after start find their server.
        for name in [PROG_POST_BIND4, PROG_POST_BIND6] {
            let prog: &mut CgroupSock = program(&mut ebpf, name)?;
            prog.load()
                .map_err(|source| ProbeError::Load { name, source })?;
            prog.attach(&cgroup, CgroupAttachMode::Single)
                .map_err(|source| ProbeError::Attach {
                    name,
                    target: cg_name.clone(),
                    source,
                })?;
        }
        for name in [PROG_CONNECT4, PROG_CONNECT6, PROG_SENDMSG4, PROG_SENDMSG6] {
            let prog: &mut CgroupSockAddr = program(&mut ebpf, name)?;
            prog.load()
                .map_err(|source| ProbeError::Load { name, source })?;
            prog.attach(&cgroup, CgroupAttachMode::Single)
                .map_err(|source| ProbeError::Attach {
                    name,
                    target: cg_name.clone(),
                    source,
                })?;
        }
        let prog: &mut TracePoint = program(&mut ebpf, PROG_TCP_STATE)?;
        prog.load().map_err(|source| ProbeError::Load {
            name: PROG_TCP_STATE,
            source,
        })?;
        prog.attach("sock", "inet_sock_set_state")
            .map_err(|source| ProbeError::Attach {
                name: PROG_TCP_STATE,
                target: "tracepoint sock/inet_sock_set_state".into(),
                source,
            })?;
        Ok(Probes {
            ebpf,
            report_interval: opts.report_interval,
            cgroup_root,
            netns_offsets,
        })
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
        })
    }

    /// Every flow in the kernel's LRU map. Costs one syscall per entry: call it rarely.
    pub fn flows(&self) -> Result<Vec<(FlowKey, FlowStats)>, ProbeError> {
        let map = self.ebpf.map(MAP_FLOWS).ok_or(ProbeError::MissingMap {
            name: MAP_FLOWS,
            detail: "absent".into(),
        })?;
        let flows = HashMap::<_, FlowKey, FlowStats>::try_from(map).map_err(|e| {
            ProbeError::MissingMap {
                name: MAP_FLOWS,
                detail: e.to_string(),
            }
        })?;
        // An entry evicted between "next key" and "lookup" is simply skipped.
        Ok(flows.iter().filter_map(Result::ok).collect())
    }

    /// Detaches and unloads every program; the maps stay readable for a final drain.
    pub fn detach(&mut self) {
        use aya::programs::Program;
        for (name, prog) in self.ebpf.programs_mut() {
            let result = match prog {
                Program::TracePoint(p) => p.unload(),
                Program::CgroupSockAddr(p) => p.unload(),
                Program::CgroupSock(p) => p.unload(),
                _ => Ok(()),
            };
            if let Err(e) = result {
                tracing::warn!(program = name, error = %e, "unloading program");
            }
        }
    }
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
