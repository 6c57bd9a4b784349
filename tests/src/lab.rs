//! A lab of network namespaces: one per host, each with one veth into a bridge that lives
//! in a namespace of its own. That namespace has no uplink, so nothing the tests send
//! can leave the machine. Dropping the `Lab` deletes every namespace it made.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    process::{Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::{Context, bail};

/// RFC 2544 benchmarking range and a ULA prefix: addresses of our own namespace hosts.
pub const V4_NET: [u8; 3] = [198, 18, 0];
pub const V6_PREFIX: &str = "fd00:a0d1:7e57::";

static NEXT: AtomicU32 = AtomicU32::new(0);

#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub netns: String,
    pub v4: Ipv4Addr,
    pub v6: Ipv6Addr,
}

#[derive(Debug)]
pub struct Lab {
    hub: String,
    pub hosts: Vec<Host>,
}

pub fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running `ip` (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Lab {
    /// Creates one namespace per name, addressed 198.18.0.(i+1) and fd00:a0d1:7e57::(i+1).
    pub fn new(names: &[&str]) -> anyhow::Result<Lab> {
        let id = format!(
            "aud{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let hub = format!("{id}-hub");
        // The guard exists before the first namespace, so a failure half-way cleans up.
        let mut lab = Lab {
            hub: hub.clone(),
            hosts: Vec::new(),
        };
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for (i, name) in names.iter().enumerate() {
            let n = i as u8 + 1;
            let netns = format!("{id}-{name}");
            ip(&["netns", "add", &netns])?;
            lab.hosts.push(Host {
                name: name.to_string(),
                netns: netns.clone(),
                v4: Ipv4Addr::new(V4_NET[0], V4_NET[1], V4_NET[2], n),
                v6: format!("{V6_PREFIX}{n}").parse()?,
            });
            let port = format!("p{n}");
            ip(&[
                "-n", &netns, "link", "add", "eth0", "type", "veth", "peer", "name", &port,
                "netns", &hub,
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0", "up"])?;
            ip(&[
                "-n",
                &netns,
                "addr",
                "add",
                &format!("198.18.0.{n}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&[
                "-n",
                &netns,
                "addr",
                "add",
                &format!("{V6_PREFIX}{n}/64"),
                "dev",
                "eth0",
                "nodad",
            ])?;
            ip(&["-n", &netns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &netns, "link", "set", "lo", "up"])?;
        }
        Ok(lab)
    }

    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host {name} in the lab"))
    }

    /// A command that runs `program args` inside `host`'s namespace (same pid: `ip netns
    /// exec` execs in place).
    pub fn command(&self, host: &str, program: &std::path::Path, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.host(host).netns])
            .arg(program)
            .args(args);
        cmd
    }
}

impl Lab {
    /// As `command`, with the process placed in the cgroup `dir` before it starts. It
    /// joins before `ip netns exec`, which remounts /sys and hides the cgroup tree.
    pub fn command_in_cgroup(
        &self,
        host: &str,
        program: &std::path::Path,
        args: &[&str],
        dir: &std::path::Path,
    ) -> Command {
        use std::os::unix::{ffi::OsStrExt, process::CommandExt};
        let procs = std::ffi::CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
            .expect("a path without NUL");
        let mut cmd = self.command(host, program, args);
        // SAFETY: between fork and exec only async-signal-safe calls (open, write, close)
        // on memory prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let n = libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
                if n != 1 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(())
                }
            });
        }
        cmd
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace deletes its veth end, and with it the peer.
        for h in &self.hosts {
            let _ = ip(&["netns", "del", &h.netns]);
        }
        let _ = ip(&["netns", "del", &self.hub]);
    }
}

/// Four hosts playing GES, Redis, Tenant Service and Config Service (GES -> Redis is
/// undocumented; Tenant -> Config 9100 is row 26), with the bundled allowlist and an
/// inventory naming the hosts' addresses, in a fresh temp dir `auditor-{tag}-{pid}`.
pub struct VoiceLab {
    pub lab: Lab,
    pub dir: std::path::PathBuf,
}

impl VoiceLab {
    pub fn new(tag: &str) -> VoiceLab {
        let lab = Lab::new(&["ges", "redis", "tenant", "config"]).expect("lab");
        let dir = std::env::temp_dir().join(format!("auditor-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let a = |h: &str| lab.host(h).v4.to_string();
        std::fs::write(
            dir.join("inventory.yaml"),
            format!(
                "version: 1\nservices:\n  Genesys Engagement Service: {{addresses: [{}]}}\n  Redis: {{addresses: [{}]}}\n  Tenant Service: {{addresses: [{}]}}\n  Config Service: {{addresses: [{}]}}\n",
                a("ges"),
                a("redis"),
                a("tenant"),
                a("config")
            ),
        )
        .unwrap();
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../allowlist/voice-microservices.yaml"
            ),
            dir.join("allowlist.yaml"),
        )
        .unwrap();
        VoiceLab { lab, dir }
    }
}
