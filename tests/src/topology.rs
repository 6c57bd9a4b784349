//! The documented Voice Microservices architecture, built as a lab: one network namespace
//! per documented service of the bundled allowlist (hosts s1, s2, …: service names have
//! spaces), an unknown host, and any extra hosts a caller needs; a real listener on every
//! documented port; the peer arguments that drive each documented connection and the four
//! planted violations. `cargo xtask demo` and the day-one test both run it.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use allowlist::{Allowlist, Connection, Ports, Transport};
use anyhow::{Context, bail};

use crate::{
    lab::Lab,
    services::{Daemon, metric},
};

/// A stranger on the bridge that no inventory knows: the "unknown address".
pub const STRANGER: &str = "stranger";
/// Ports this deployment uses where the document gives none (rows 24 and 59).
pub const OVERRIDES: &str = "rows:\n  24: [443]\n  59: [5060]\n";

/// A connection the documents do not allow, planted on purpose.
pub struct Planted {
    pub what: &'static str,
    pub from: &'static str,
    /// A documented service, or `STRANGER`.
    pub to: &'static str,
    pub port: u16,
    pub why: &'static str,
    /// The verdict and the rows the report must show for it.
    pub verdict: &'static str,
    pub rules: &'static [u32],
}

/// The four planted violations: one of each kind a user meets first.
pub const PLANTED: [Planted; 4] = [
    Planted {
        what: "undocumented egress",
        from: "Genesys Engagement Service",
        to: "Redis",
        port: 6379,
        why: "row 10's text describes it; no row lists it",
        verdict: "undocumented_egress",
        rules: &[],
    },
    Planted {
        what: "port drift",
        from: "Tenant Service",
        to: "Config Service",
        port: 9200,
        why: "row 26 documents 9100",
        verdict: "port_drift",
        rules: &[26],
    },
    Planted {
        what: "protocol drift",
        from: "Voice SIP Proxy Service",
        to: "WebRTC Media Service",
        port: 5070,
        why: "row 57 documents SIP/UDP",
        verdict: "protocol_drift",
        rules: &[57],
    },
    Planted {
        what: "unknown address",
        from: "Tenant Service",
        to: STRANGER,
        port: 443,
        why: "a host no inventory knows",
        verdict: "unknown_destination",
        rules: &[],
    },
];

/// The port a documented connection is driven on: its first documented port, or the
/// overrides' port for rows 24 and 59.
pub fn port_of(c: &Connection) -> u16 {
    match (&c.ports, c.number) {
        (Ports::Listed(l), _) => l[0].first,
        (Ports::Unknown { .. }, Some(24)) => 443,
        (Ports::Unknown { .. }, Some(59)) => 5060,
        _ => 443,
    }
}

/// Kills the processes it holds when dropped, however the caller ends.
#[derive(Default)]
pub struct Servers(pub Vec<Child>);

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Spawns `cmd` and waits for the peer's `ready` line on its stdout.
pub fn spawn_ready(mut cmd: Command, what: &str) -> anyhow::Result<Child> {
    let mut child = cmd.stdout(Stdio::piped()).spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout")).read_line(&mut line)?;
    if !line.starts_with("ready") {
        let _ = child.kill();
        let _ = child.wait();
        bail!("{what} did not start");
    }
    Ok(child)
}

pub struct Architecture {
    pub list: Allowlist,
    pub services: Vec<String>,
    hosts: Vec<String>,
    /// Dropped last: the namespaces go once every process in them is gone.
    pub lab: Lab,
}

impl Architecture {
    /// The bundled allowlist's services, one namespace each, then the stranger, then
    /// `extra` hosts.
    pub fn new(root: &Path, extra: &[&str]) -> anyhow::Result<Architecture> {
        let list = allowlist::file::load(&root.join("allowlist/voice-microservices.yaml"))?;
        let services: Vec<String> = list.services.iter().map(|s| s.name.clone()).collect();
        let mut hosts: Vec<String> = (1..=services.len()).map(|i| format!("s{i}")).collect();
        hosts.push(STRANGER.into());
        hosts.extend(extra.iter().map(|h| h.to_string()));
        let refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let lab = Lab::new(&refs).context("creating the network namespaces")?;
        Ok(Architecture {
            list,
            services,
            hosts,
            lab,
        })
    }

    /// The host a documented service (or `STRANGER`, or an extra host) runs on.
    pub fn host_of(&self, service: &str) -> &str {
        match self.services.iter().position(|s| s == service) {
            Some(i) => &self.hosts[i],
            None => {
                &self.hosts[self
                    .hosts
                    .iter()
                    .position(|h| h == service)
                    .unwrap_or_else(|| panic!("{service}: neither a service nor a host"))]
            }
        }
    }

    pub fn addr(&self, host: &str) -> String {
        self.lab.host(host).v4.to_string()
    }

    /// The inventory of this deployment: every service at its host's address, with
    /// `extra(service)` added to its entry (`, probe_ports: [..]`), then `tail`.
    pub fn inventory(&self, extra: impl Fn(&str) -> String, tail: &str) -> String {
        let mut inv = String::from(
            "# Generated: where each documented service runs in this lab.\nversion: 1\nservices:\n",
        );
        for s in &self.services {
            inv.push_str(&format!(
                "  {s:?}: {{addresses: [{}]{}}}\n",
                self.addr(self.host_of(s)),
                extra(s)
            ));
        }
        inv.push_str(tail);
        inv
    }

    /// Every documented port of every destination, plus those the planted violations
    /// reach: host -> `tcp:ADDR:PORT` / `udp:ADDR:PORT` endpoints.
    pub fn listeners(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut listen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for c in &self.list.connections {
            let h = self.host_of(&c.destination).to_string();
            let proto = if c.transport == Transport::Udp {
                "udp"
            } else {
                "tcp"
            };
            let ports: Vec<u16> = match &c.ports {
                Ports::Listed(l) => l.iter().map(|s| s.first).collect(),
                _ => vec![port_of(c)],
            };
            for port in ports {
                listen
                    .entry(h.clone())
                    .or_default()
                    .insert(format!("{proto}:{}:{port}", self.addr(&h)));
            }
        }
        for p in &PLANTED {
            let h = self.host_of(p.to).to_string();
            let ep = format!("tcp:{}:{}", self.addr(&h), p.port);
            listen.entry(h).or_default().insert(ep);
        }
        listen
    }

    /// Starts one `auditor-peer serve` per host, for `secs` seconds.
    pub fn serve(
        &self,
        peer: &Path,
        listen: &BTreeMap<String, BTreeSet<String>>,
        secs: u64,
    ) -> anyhow::Result<Servers> {
        let mut servers = Servers::default();
        let secs = secs.to_string();
        for (h, eps) in listen {
            let mut args: Vec<&str> = vec!["serve", &secs];
            args.extend(eps.iter().map(String::as_str));
            let child = spawn_ready(
                self.lab.command(h, peer, &args),
                &format!("the listener in {h}"),
            )?;
            servers.0.push(child);
        }
        Ok(servers)
    }

    /// The peer arguments that make documented connection `c` (run in its source's host).
    pub fn row_args(&self, c: &Connection) -> Vec<String> {
        let dst = self.addr(self.host_of(&c.destination));
        let port = port_of(c).to_string();
        if c.transport == Transport::Udp {
            vec!["send".into(), dst, port, "unconnected".into()]
        } else {
            vec!["connect".into(), dst, port]
        }
    }

    /// The peer arguments of a planted violation (all over TCP).
    pub fn planted_args(&self, p: &Planted) -> Vec<String> {
        vec![
            "connect".into(),
            self.addr(self.host_of(p.to)),
            p.port.to_string(),
        ]
    }

    /// Runs the peer with `args` in `host`; true when it succeeded.
    pub fn run_peer(&self, peer: &Path, host: &str, args: &[String]) -> anyhow::Result<bool> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Ok(self
            .lab
            .command(host, peer, &args)
            .stdout(Stdio::null())
            .status()?
            .success())
    }
}

/// Waits until the daemon acknowledges at least `n` stored connections (its store commit
/// is durable), for at most `limit`; returns how many it acknowledged.
pub fn wait_stored(daemon: &Daemon, n: u64, limit: Duration) -> anyhow::Result<u64> {
    let deadline = Instant::now() + limit;
    loop {
        let acked = metric(
            &daemon.metrics(),
            "auditor_store_acknowledged_connections_total",
            &[],
        )
        .unwrap_or(0.0) as u64;
        if acked >= n {
            return Ok(acked);
        }
        if Instant::now() > deadline {
            bail!(
                "the daemon stored {acked} of {n} connections in {limit:?}; see {}",
                daemon.log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A violation as the tests compare it: (verdict, source, destination, port, rules), each
/// end named by its service, or its address when it was not attributed.
pub type ViolationKey = (String, String, String, u64, Vec<u64>);

/// An end of an event or a report's edge by name: its service, else its address.
pub fn end_name(end: &serde_json::Value) -> String {
    end["service"]
        .as_str()
        .or(end["addr"].as_str())
        .unwrap_or("?")
        .to_string()
}

/// The violations of a JSON report, sorted.
pub fn violation_keys(report: &serde_json::Value) -> Vec<ViolationKey> {
    let mut got: Vec<ViolationKey> = report["violations"]
        .as_array()
        .map(|v| v.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|v| {
            (
                v["verdict"].as_str().unwrap_or("?").to_string(),
                end_name(&v["src"]),
                end_name(&v["dst"]),
                v["dst"]["port"].as_u64().unwrap_or(0),
                v["rules"]
                    .as_array()
                    .map(|r| r.iter().filter_map(|n| n.as_u64()).collect())
                    .unwrap_or_default(),
            )
        })
        .collect();
    got.sort();
    got
}
