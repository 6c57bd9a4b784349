//! Pod churn under `auditor run`: 200 network namespaces come and go, each sending from a
//! process inside it (so the daemon looks the namespace up, as it does for a mesh
//! sidecar's loopback traffic), and the daemon's file descriptors stay flat: its netns
//! cache forgets namespaces that are gone.

use std::{
    process::Command,
    sync::Mutex,
    time::{Duration, Instant},
};

use auditor_tests::{kernel_tests_enabled, lab::ip, services::Daemon, workspace_bin};

static KERNEL: Mutex<()> = Mutex::new(());
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Namespaces this test made; dropping it deletes any still there.
struct Namespaces(Vec<String>);

impl Namespaces {
    fn create(prefix: &str, n: usize) -> Namespaces {
        let mut made = Namespaces(Vec::new());
        for i in 0..n {
            let name = format!("{prefix}-{i}");
            ip(&["netns", "add", &name]).expect("ip netns add");
            made.0.push(name.clone());
            ip(&["-n", &name, "link", "set", "lo", "up"]).expect("lo up");
        }
        made
    }

    /// An unbound UDP datagram to loopback from inside each namespace: the daemon needs
    /// the namespace's own addresses to attribute it.
    fn send_from_each(&self) {
        let peer = workspace_bin("auditor-peer");
        let children: Vec<_> = self
            .0
            .iter()
            .map(|ns| {
                Command::new("ip")
                    .args(["netns", "exec", ns])
                    .arg(&peer)
                    .args(["send", "127.0.0.1", "9", "unconnected"])
                    .spawn()
                    .expect("auditor-peer")
            })
            .collect();
        for mut c in children {
            let _ = c.wait();
        }
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in self.0.drain(..) {
            let _ = ip(&["netns", "del", &ns]);
        }
    }
}

#[test]
fn two_hundred_namespaces_come_and_go_and_the_daemons_fds_stay_flat() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled("two_hundred_namespaces_come_and_go_and_the_daemons_fds_stay_flat") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("auditor-netns-churn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("inventory.yaml"), "version: 1\nservices: {}\n").unwrap();
    let arg = |p: &str| dir.join(p).display().to_string();
    let args: Vec<String> = vec![
        "--allowlist".into(),
        format!("{ROOT}/allowlist/voice-microservices.yaml"),
        "--inventory".into(),
        arg("inventory.yaml"),
        "--events".into(),
        arg("events.jsonl"),
    ];
    let daemon = Daemon::start(&args, dir.join("daemon.log")).expect("daemon");
    std::thread::sleep(Duration::from_secs(2));
    let before = daemon.fd_count();

    // Four waves of 50: created, sending (twice, more than the daemon's 1 s scan limit
    // apart, so every namespace is found), deleted.
    let mut peak = before;
    for wave in 0..4 {
        let ns = Namespaces::create(&format!("aud{}w{wave}", std::process::id()), 50);
        ns.send_from_each();
        std::thread::sleep(Duration::from_millis(1500));
        ns.send_from_each();
        std::thread::sleep(Duration::from_millis(500));
        peak = peak.max(daemon.fd_count());
        drop(ns);
    }
    // Nothing is left of them; the daemon forgets them within its tidy interval.
    let start = Instant::now();
    let mut after = daemon.fd_count();
    while after > before + 5 && start.elapsed() < Duration::from_secs(40) {
        std::thread::sleep(Duration::from_millis(500));
        after = daemon.fd_count();
    }
    eprintln!(
        "daemon fds: {before} before, {peak} at the peak, {after} after 200 namespaces came and went"
    );
    assert!(
        peak > before,
        "the namespaces were looked up (else this test proves nothing): peak {peak}, before {before}"
    );
    assert!(
        after <= before + 5,
        "the daemon keeps descriptors of deleted namespaces: {after} fds, {before} before"
    );
    // Auditing goes on after the churn: a namespace made now is still found and its
    // traffic judged.
    let judged = || -> f64 {
        daemon
            .metrics()
            .lines()
            .filter(|l| {
                l.starts_with("auditor_connections_total{") && l.contains("transport=\"udp\"")
            })
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    };
    let before_late = judged();
    let late = Namespaces::create(&format!("aud{}late", std::process::id()), 1);
    late.send_from_each();
    auditor_tests::services::wait_for(
        "traffic after the churn judged",
        Duration::from_secs(20),
        || (judged() > before_late).then_some(()),
    );
    drop(late);
    daemon.stop().expect("clean stop");
    std::fs::remove_dir_all(&dir).unwrap();
}
