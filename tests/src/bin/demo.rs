//! `cargo xtask demo`: the documented architecture, live, on this machine. One network
//! namespace per documented service on an isolated bridge (no route off the machine), a
//! real listener on every documented port, `auditor run` with the bundled allowlist, all
//! 60 documented connections driven from the right namespace, then four scripted
//! violations. Alerts show as they happen; the report is written in all three formats.
//! Everything it made is removed at the end, also on Ctrl-C.
//!
//! `cargo xtask demo` builds this binary after set-up and runs it; xtask itself depends on
//! no crate of the project, so that it builds on a machine without the eBPF toolchain.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader, IsTerminal, Seek},
    path::{Path, PathBuf},
    process::{Child, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use allowlist::{Connection, Ports, Transport};
use anyhow::{Context, bail};
use auditor_tests::{
    lab::Lab,
    services::{Daemon, metric},
};

/// A stranger on the bridge that no inventory knows: the "unknown address".
const STRANGER: &str = "stranger";
/// Ports this deployment uses where the document gives none (rows 24 and 59).
const OVERRIDES: &str = "rows:\n  24: [443]\n  59: [5060]\n";
const SERVE_SECS: &str = "300";

/// `auditor-demo`: the documented architecture, live, under `auditor run` (root).
#[derive(clap::Parser)]
#[command(name = "auditor-demo", version)]
struct Options {
    /// Where the store, events, inventory and reports go (created if missing).
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
    /// The directory holding the `auditor` and `auditor-peer` binaries to run.
    #[arg(long)]
    bin_dir: PathBuf,
    /// The workspace root, for the bundled allowlist (`allowlist/voice-microservices.yaml`).
    #[arg(long, default_value = ".")]
    root: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let mut opts = <Options as clap::Parser>::parse();
    if !opts.out.is_absolute() {
        opts.out = std::env::current_dir()?.join(&opts.out);
    }
    run(opts)
}

struct Painter {
    color: bool,
}

impl Painter {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

fn port_of(c: &Connection) -> u16 {
    match (&c.ports, c.number) {
        (Ports::Listed(l), _) => l[0].first,
        (Ports::Unknown { .. }, Some(24)) => 443,
        (Ports::Unknown { .. }, Some(59)) => 5060,
        _ => 443,
    }
}

/// Kills the listeners when the demo ends, however it ends.
struct Servers(Vec<Child>);

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn run(opts: Options) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "the demo needs root (it loads eBPF programs and makes network namespaces): run `sudo -E cargo xtask demo`"
        );
    }
    let started = Instant::now();
    let interrupted = Arc::new(AtomicBool::new(false));
    // Ctrl-C and SIGTERM stop the demo between steps, so the guards below clean up.
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, interrupted.clone())?;
    }
    let check = || {
        if interrupted.load(Ordering::Relaxed) {
            bail!("interrupted: cleaning up")
        } else {
            Ok(())
        }
    };
    let p = Painter {
        color: std::io::stdout().is_terminal(),
    };
    let root = opts
        .root
        .canonicalize()
        .with_context(|| format!("--root {}: not a directory", opts.root.display()))?;
    let list = allowlist::file::load(&root.join("allowlist/voice-microservices.yaml"))?;
    std::fs::create_dir_all(&opts.out)?;
    let out = opts.out.canonicalize()?;
    for f in ["store.db", "store.db-wal", "store.db-shm", "events.jsonl"] {
        let _ = std::fs::remove_file(out.join(f));
    }
    let peer = opts.bin_dir.join("auditor-peer");
    let auditor = opts.bin_dir.join("auditor");
    for b in [&peer, &auditor] {
        if !b.exists() {
            bail!(
                "{} is missing: build first (cargo xtask build)",
                b.display()
            );
        }
    }

    println!(
        "{}",
        p.paint(
            "1",
            "auditor demo: the Voice Microservices architecture, live, on this machine"
        )
    );
    // One namespace per service: hosts are named s1, s2, … (service names have spaces).
    let services: Vec<&str> = list.services.iter().map(|s| s.name.as_str()).collect();
    let mut hosts: Vec<String> = (1..=services.len()).map(|i| format!("s{i}")).collect();
    hosts.push(STRANGER.into());
    let host_refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let lab = Lab::new(&host_refs).context("creating the network namespaces")?;
    let host_of = |service: &str| -> &str {
        &hosts[services
            .iter()
            .position(|s| *s == service)
            .expect("service in allowlist")]
    };
    let addr = |host: &str| lab.host(host).v4.to_string();
    println!(
        "[setup] {} network namespaces, one per documented service, + 1 unknown host, on an isolated bridge (198.18.0.0/24)",
        services.len()
    );
    check()?;

    // Inventory and overrides for this deployment.
    let mut inv = String::from(
        "# Generated by cargo xtask demo: where each documented service runs in the demo.\nversion: 1\nservices:\n",
    );
    for s in &services {
        inv.push_str(&format!("  {s:?}: {{addresses: [{}]}}\n", addr(host_of(s))));
    }
    std::fs::write(out.join("inventory.yaml"), inv)?;
    std::fs::write(
        out.join("overrides.yaml"),
        format!("# Generated by cargo xtask demo.\n{OVERRIDES}"),
    )?;

    // Listeners: every documented port of every destination, plus the scripted ones.
    let mut listen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in &list.connections {
        let h = host_of(&c.destination).to_string();
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
                .insert(format!("{proto}:{}:{port}", addr(&h)));
        }
    }
    let config = host_of("Config Service").to_string();
    let webrtc = host_of("WebRTC Media Service").to_string();
    listen
        .entry(config.clone())
        .or_default()
        .insert(format!("tcp:{}:9200", addr(&config)));
    listen
        .entry(webrtc.clone())
        .or_default()
        .insert(format!("tcp:{}:5070", addr(&webrtc)));
    listen
        .entry(STRANGER.into())
        .or_default()
        .insert(format!("tcp:{}:443", addr(STRANGER)));
    let mut servers = Servers(Vec::new());
    for (h, eps) in &listen {
        let mut args: Vec<&str> = vec!["serve", SERVE_SECS];
        args.extend(eps.iter().map(String::as_str));
        let mut child = lab
            .command(h, &peer, &args)
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout")).read_line(&mut line)?;
        if !line.starts_with("ready") {
            bail!("the listener in {h} did not start");
        }
        servers.0.push(child);
    }
    println!(
        "[setup] {} listeners on the documented ports (TCP, and UDP for row 57)",
        listen.values().map(BTreeSet::len).sum::<usize>()
    );
    check()?;

    let daemon_args: Vec<String> = [
        "--allowlist",
        &root
            .join("allowlist/voice-microservices.yaml")
            .display()
            .to_string(),
        "--inventory",
        &out.join("inventory.yaml").display().to_string(),
        "--overrides",
        &out.join("overrides.yaml").display().to_string(),
        "--store",
        &out.join("store.db").display().to_string(),
        "--events",
        &out.join("events.jsonl").display().to_string(),
        "--node",
        "demo-node",
        "--scope",
        "198.18.0.0/24",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let daemon = Daemon::start_with(&auditor, &daemon_args, out.join("auditor.log"))
        .context("starting auditor run")?;
    println!(
        "[auditor] auditor run is watching (metrics at {}/metrics, log in {})",
        daemon.url(),
        out.join("auditor.log").display()
    );

    // The live view: violation events as the daemon writes them.
    let stop_view = Arc::new(AtomicBool::new(false));
    let view = {
        let (path, stop, color) = (out.join("events.jsonl"), stop_view.clone(), p.color);
        std::thread::spawn(move || live_view(&path, &stop, color))
    };

    let mut driven = 0u64;
    for c in &list.connections {
        check()?;
        let (src, dst) = (host_of(&c.source), host_of(&c.destination));
        let port = port_of(c);
        let args: Vec<String> = if c.transport == Transport::Udp {
            vec![
                "send".into(),
                addr(dst),
                port.to_string(),
                "unconnected".into(),
            ]
        } else {
            vec!["connect".into(), addr(dst), port.to_string()]
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let ok = lab
            .command(src, &peer, &args)
            .stdout(Stdio::null())
            .status()?
            .success();
        driven += 1;
        println!(
            "[traffic] row {:>2}  {:<38} -> {:<28} {:<8} {}/{:<5} {}",
            c.number.unwrap_or(0),
            c.source,
            c.destination,
            c.protocol,
            c.transport,
            port,
            if ok {
                p.paint("32", "sent")
            } else {
                p.paint("31", "FAILED")
            }
        );
        if !ok {
            bail!("row {:?}: the documented connection failed", c.number);
        }
    }
    println!("[traffic] now four connections the documents do not allow:");
    let scripted: [(&str, &str, &str, &str, u16, &str); 4] = [
        (
            "undocumented egress",
            "Genesys Engagement Service",
            "Redis",
            "tcp",
            6379,
            "row 10's text describes it; no row lists it",
        ),
        (
            "port drift",
            "Tenant Service",
            "Config Service",
            "tcp",
            9200,
            "row 26 documents 9100",
        ),
        (
            "protocol drift",
            "Voice SIP Proxy Service",
            "WebRTC Media Service",
            "tcp",
            5070,
            "row 57 documents SIP/UDP",
        ),
        (
            "unknown address",
            "Tenant Service",
            STRANGER,
            "tcp",
            443,
            "a host no inventory knows",
        ),
    ];
    for (what, from, to, proto, port, why) in scripted {
        check()?;
        let dst_host = if to == STRANGER {
            STRANGER
        } else {
            host_of(to)
        };
        let (dst_addr, port_text) = (addr(dst_host), port.to_string());
        let args = [
            if proto == "udp" { "send" } else { "connect" },
            dst_addr.as_str(),
            port_text.as_str(),
        ];
        let ok = lab
            .command(host_of(from), &peer, &args)
            .stdout(Stdio::null())
            .status()?
            .success();
        driven += 1;
        println!(
            "[traffic] {:<20} {from} -> {to} {proto}/{port} ({why}) {}",
            what,
            if ok { "sent" } else { "FAILED" }
        );
    }

    // Wait until the daemon has stored every connection, then stop it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        check()?;
        let acked = metric(
            &daemon.metrics(),
            "auditor_store_acknowledged_connections_total",
            &[],
        )
        .unwrap_or(0.0) as u64;
        if acked >= driven {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "the daemon stored {acked} of {driven} connections in 30 s; see {}",
                out.join("auditor.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    daemon.stop()?;
    stop_view.store(true, Ordering::Relaxed);
    let _ = view.join();
    drop(servers);
    drop(lab);
    println!("[cleanup] listeners stopped, namespaces removed");

    let mut paths = Vec::new();
    for (format, ext) in [("json", "json"), ("markdown", "md"), ("html", "html")] {
        let path = out.join(format!("report.{ext}"));
        let status = std::process::Command::new(&auditor)
            .args(["report", "--store"])
            .arg(out.join("store.db"))
            .args(["--format", format, "-o"])
            .arg(&path)
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("auditor report --format {format} failed");
        }
        paths.push(path);
    }
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&paths[0])?)?;
    println!(
        "\n{}",
        p.paint("1", report["summary"]["headline"].as_str().unwrap_or(""))
    );
    println!("reports:");
    for path in &paths {
        println!("  {}", path.display());
    }
    println!(
        "done in {:.0} s (after the build)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn live_view(path: &Path, stop: &AtomicBool, color: bool) {
    let p = Painter { color };
    let mut offset = 0u64;
    loop {
        let done = stop.load(Ordering::Relaxed);
        if let Ok(mut f) = std::fs::File::open(path)
            && f.seek(std::io::SeekFrom::Start(offset)).is_ok()
        {
            let mut reader = BufReader::new(f);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if !line.ends_with('\n') {
                    break; // half-written: read it again next time
                }
                offset += line.len() as u64;
                if let Ok(e) = serde_json::from_str::<serde_json::Value>(&line) {
                    let rows = e["rules"]
                        .as_array()
                        .filter(|r| !r.is_empty())
                        .map(|r| {
                            format!(
                                " (documented row {})",
                                r.iter()
                                    .map(ToString::to_string)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        })
                        .unwrap_or_default();
                    println!(
                        "{} {}  {} -> {} {}/{}{rows}",
                        p.paint("1;31", "[ALERT]"),
                        p.paint("31", e["verdict"].as_str().unwrap_or("?")),
                        end_name(&e["src"]),
                        end_name(&e["dst"]),
                        e["transport"].as_str().unwrap_or("?"),
                        e["dst"]["port"]
                    );
                }
                line.clear();
            }
        }
        if done {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An event's end by name: its service, or its address when it was not attributed.
fn end_name(end: &serde_json::Value) -> &str {
    end["service"]
        .as_str()
        .or(end["addr"].as_str())
        .unwrap_or("?")
}
