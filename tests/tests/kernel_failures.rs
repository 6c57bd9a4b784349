//! Failing outputs and half-written inputs never stop auditing, on the real kernel:
//! - the events file on a full tmpfs, and standard output closed by its reader: each
//!   failed write is counted (failures and dropped events), the daemon keeps judging and
//!   storing, and once the output works again events are written whole;
//! - the store's directory removed mid-run: every commit fails (counted), nothing more is
//!   acknowledged, and when the directory is back a new store is started there holding
//!   exactly what was acknowledged since; a failed final flush is said so at shutdown;
//! - a policy file written slowly (half, a poll, the rest): the half is never loaded.
//!
//! In each the daemon's file descriptors stay flat.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use auditor_tests::{
    events::read_valid,
    kernel_tests_enabled,
    lab::{Lab, VoiceLab},
    peer::{client, serve},
    services::{Daemon, free_port, http_get, metric, wait_for},
    workspace_bin,
};

static KERNEL: Mutex<()> = Mutex::new(());

/// GES and Redis in network namespaces (GES -> Redis is undocumented), Tenant and Config
/// (Tenant -> Config 9100 is row 26), with their inventory in a temp dir.
struct Setup {
    lab: Lab,
    dir: PathBuf,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let VoiceLab { lab, dir } = VoiceLab::new(&format!("fail-{name}"));
        Setup { lab, dir }
    }

    fn path(&self, p: &str) -> String {
        self.dir.join(p).display().to_string()
    }

    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "--allowlist".into(),
            self.path("allowlist.yaml"),
            "--inventory".into(),
            self.path("inventory.yaml"),
            "--node".into(),
            "node-a".into(),
            "--store-flush".into(),
            "200ms".into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    /// GES -> Redis on `port`: a new violation edge, so a new event.
    fn violation(&self, port: u16) {
        let redis = self.lab.host("redis").v4.to_string();
        let port = port.to_string();
        let mut server = serve(&self.lab, "redis", &["listen", "tcp", &redis, &port, "1"]);
        client(&self.lab, "ges", &["connect", &redis, &port]);
        assert!(server.wait().unwrap().success());
    }

    fn tenant_to_config(&self) {
        let config = self.lab.host("config").v4.to_string();
        let mut server = serve(
            &self.lab,
            "config",
            &["listen", "tcp", &config, "9100", "1"],
        );
        client(&self.lab, "tenant", &["connect", &config, "9100"]);
        assert!(server.wait().unwrap().success());
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The violation series of GES -> Redis on `port`, once judged.
fn judged(metrics: &str, port: u16) -> bool {
    metrics.lines().any(|l| {
        l.starts_with("auditor_violations_total{")
            && l.contains("src=\"Genesys Engagement Service\"")
            && l.contains(&format!("port=\"{port}\""))
    })
}

fn value(metrics: &str, name: &str) -> f64 {
    metric(metrics, name, &[]).unwrap_or(0.0)
}

/// A tmpfs mounted for the test; unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount tmpfs at {}", at.display());
        Tmpfs(at.to_path_buf())
    }

    /// Writes a filler file until the filesystem is full.
    fn fill(&self) {
        let mut f = std::fs::File::create(self.0.join("filler")).unwrap();
        let chunk = vec![b'x'; 4096];
        while f.write_all(&chunk).is_ok() {}
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn events_on_a_full_disk_are_counted_and_auditing_goes_on() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled("events_on_a_full_disk_are_counted_and_auditing_goes_on") {
        return;
    }
    let s = Setup::new("enospc");
    let fs = Tmpfs::mount(&s.dir.join("ev"), "64k");
    let events = s.dir.join("ev/events.jsonl");
    let store = s.path("store.db");
    let daemon = Daemon::start(
        &s.args(&["--events", &events.display().to_string(), "--store", &store]),
        s.dir.join("daemon.log"),
    )
    .expect("daemon");
    std::thread::sleep(Duration::from_secs(1));
    let fds = daemon.fd_count();
    let written = read_valid(&events).len();

    fs.fill();
    // The events file's last page may still have room for an event or two (tmpfs
    // allocates pages): new violations until one does not fit, at most ten.
    let mut port = 7000;
    let m = loop {
        port += 1;
        assert!(port <= 7010, "ten events fitted on a full filesystem");
        s.violation(port);
        wait_for("the violation judged", Duration::from_secs(20), || {
            judged(&daemon.metrics(), port).then_some(())
        });
        std::thread::sleep(Duration::from_millis(300));
        let m = daemon.metrics();
        if value(&m, "auditor_violation_event_write_failures_total") >= 1.0 {
            break m;
        }
    };
    assert!(value(&m, "auditor_events_dropped_total") >= 1.0, "{m}");
    // Still storing: the edge reaches the store.
    wait_for("the violation stored", Duration::from_secs(20), || {
        let st = auditor::store::Store::open_existing(Path::new(&store)).ok()?;
        st.edges(None, None)
            .ok()?
            .iter()
            .any(|e| e.edge.dst.port == Some(port))
            .then_some(())
    });
    // Events written before the disk filled are intact; no partial line was left.
    assert!(read_valid(&events).len() >= written);

    // Space again: after the backoff, the next event is written whole.
    std::fs::remove_file(s.dir.join("ev/filler")).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    s.violation(7020);
    wait_for("the output recovered", Duration::from_secs(30), || {
        let m = daemon.metrics();
        (judged(&m, 7020) && value(&m, "auditor_event_output_recoveries_total") >= 1.0)
            .then_some(())
    });
    let evs = read_valid(&events);
    assert!(evs.iter().any(|e| e["dst"]["port"] == 7020), "{evs:#?}");
    assert!(
        daemon.fd_count() <= fds + 2,
        "fds {} after, {fds} before",
        daemon.fd_count()
    );
    let log = daemon.stop().expect("clean stop");
    assert!(log.contains("events output recovered"), "{log}");
    drop(fs);
}

#[test]
fn stdout_closed_by_its_reader_is_counted_and_auditing_goes_on() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled("stdout_closed_by_its_reader_is_counted_and_auditing_goes_on") {
        return;
    }
    let s = Setup::new("epipe");
    let port = free_port();
    let log = std::fs::File::create(s.dir.join("daemon.log")).unwrap();
    // Events go to stdout, a pipe; the reader reads nothing and goes away.
    let mut child = Command::new(workspace_bin("auditor"))
        .arg("run")
        .args(s.args(&["--store", &s.path("store.db")]))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while http_get(&format!("{url}/readyz")).map_or(true, |r| !r.starts_with("ready")) {
        assert!(child.try_wait().unwrap().is_none(), "auditor run exited");
        assert!(start.elapsed() < Duration::from_secs(30), "not ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(child.stdout.take());
    let metrics = || http_get(&format!("{url}/metrics")).unwrap_or_default();

    s.violation(7101);
    wait_for("the broken pipe counted", Duration::from_secs(20), || {
        (value(&metrics(), "auditor_violation_event_write_failures_total") >= 1.0).then_some(())
    });
    // Later traffic is still judged, by the same process.
    s.violation(7102);
    s.tenant_to_config();
    wait_for("later traffic judged", Duration::from_secs(20), || {
        let m = metrics();
        (judged(&m, 7102)
            && metric(
                &m,
                "auditor_connections_total",
                &[("verdict", "allowed"), ("rules", "26")],
            )
            .is_some())
        .then_some(())
    });
    let m = metrics();
    assert!(value(&m, "auditor_events_dropped_total") >= 2.0, "{m}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the daemon exited on a broken pipe"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    let log = std::fs::read_to_string(s.dir.join("daemon.log")).unwrap();
    assert!(log.contains("store flushed"), "{log}");
}

#[test]
fn a_store_directory_removed_mid_run_acknowledges_nothing_it_does_not_keep() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled(
        "a_store_directory_removed_mid_run_acknowledges_nothing_it_does_not_keep",
    ) {
        return;
    }
    let s = Setup::new("storegone");
    let st_dir = s.dir.join("st");
    std::fs::create_dir_all(&st_dir).unwrap();
    let store = st_dir.join("store.db");
    let daemon = Daemon::start(
        &s.args(&[
            "--store",
            &store.display().to_string(),
            "--events",
            &s.path("events.jsonl"),
        ]),
        s.dir.join("daemon.log"),
    )
    .expect("daemon");
    s.violation(7201);
    wait_for("committed", Duration::from_secs(20), || {
        (value(
            &daemon.metrics(),
            "auditor_store_acknowledged_connections_total",
        ) >= 1.0)
            .then_some(())
    });
    let fds = daemon.fd_count();

    std::fs::remove_dir_all(&st_dir).unwrap();
    let failures =
        |m: &str| metric(m, "auditor_store_commits_total", &[("result", "failure")]).unwrap_or(0.0);
    wait_for("commits failing", Duration::from_secs(20), || {
        (failures(&daemon.metrics()) >= 2.0).then_some(())
    });
    // Nothing is acknowledged while there is nowhere to keep it; judging goes on.
    let acked = value(
        &daemon.metrics(),
        "auditor_store_acknowledged_connections_total",
    );
    s.violation(7202);
    wait_for(
        "judged while the store is gone",
        Duration::from_secs(20),
        || judged(&daemon.metrics(), 7202).then_some(()),
    );
    std::thread::sleep(Duration::from_secs(1));
    let m = daemon.metrics();
    assert_eq!(
        value(&m, "auditor_store_acknowledged_connections_total"),
        acked,
        "{m}"
    );
    assert!(failures(&m) >= 3.0, "{m}");

    // The directory is back: a new store there holds exactly what was acknowledged since.
    std::fs::create_dir_all(&st_dir).unwrap();
    wait_for("a new store started", Duration::from_secs(20), || {
        (value(&daemon.metrics(), "auditor_store_restarts_total") >= 1.0).then_some(())
    });
    let stored = || -> Option<u64> {
        let st = auditor::store::Store::open_existing(&store).ok()?;
        Some(
            st.edges(None, None)
                .ok()?
                .iter()
                .map(|e| e.edge.count)
                .sum(),
        )
    };
    wait_for("acknowledged == kept", Duration::from_secs(20), || {
        let before = stored()?;
        let delta = value(
            &daemon.metrics(),
            "auditor_store_acknowledged_connections_total",
        ) - acked;
        let after = stored()?;
        (before == after && delta as u64 == after).then_some(())
    });
    let st = auditor::store::Store::open_existing(&store).unwrap();
    assert!(
        st.edges(None, None)
            .unwrap()
            .iter()
            .any(|e| e.edge.dst.port == Some(7202)),
        "the violation judged while the store was gone is kept once it is back"
    );
    assert!(
        st.allowlist().unwrap().is_some(),
        "the new store records its allowlist"
    );
    assert!(
        daemon.fd_count() <= fds + 2,
        "fds {} after, {fds} before",
        daemon.fd_count()
    );

    // Gone again at shutdown: the log says the final flush failed, not "store flushed".
    std::fs::remove_dir_all(&st_dir).unwrap();
    let log = daemon.stop().expect("clean stop");
    assert!(log.contains("the final store flush FAILED"), "{log}");
    assert!(!log.contains("store flushed"), "{log}");
}

#[test]
fn a_policy_file_written_slowly_is_loaded_only_when_complete() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled("a_policy_file_written_slowly_is_loaded_only_when_complete") {
        return;
    }
    let s = Setup::new("slowpolicy");
    let daemon = Daemon::start(
        &s.args(&["--events", &s.path("events.jsonl"), "--reload-poll", "2s"]),
        s.dir.join("daemon.log"),
    )
    .expect("daemon");
    let fds = daemon.fd_count();
    let path = s.dir.join("allowlist.yaml");
    let full = std::fs::read_to_string(&path).unwrap();
    // The first half is itself a valid allowlist (30 of the 60 rows): loading it would
    // judge documented traffic as violations.
    let cut = full.find("- number: 31\n").expect("row 31");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    f.write_all(&full.as_bytes()[..cut]).unwrap();
    f.sync_all().unwrap();
    // A poll sees the half file; the rest is written well before the next poll.
    wait_for("the change seen", Duration::from_secs(10), || {
        daemon
            .log_text()
            .contains("policy files changed")
            .then_some(())
    });
    f.write_all(&full.as_bytes()[cut..]).unwrap();
    drop(f);
    let generation = || metric(&daemon.metrics(), "auditor_policy_generation", &[]).unwrap_or(0.0);
    wait_for("the complete file loaded", Duration::from_secs(20), || {
        (generation() >= 2.0).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(generation(), 2.0, "one generation for one change");
    let log = daemon.log_text();
    assert!(log.contains("generation=2 connections=60"), "{log}");
    assert!(
        !log.contains("connections=30"),
        "the half file was loaded: {log}"
    );
    // Row 31 onwards still judges: Tenant -> Config 9100 (row 26) stays allowed, and
    // auditing goes on.
    s.tenant_to_config();
    wait_for(
        "judged under the new generation",
        Duration::from_secs(20),
        || {
            metric(
                &daemon.metrics(),
                "auditor_connections_total",
                &[("verdict", "allowed"), ("rules", "26")],
            )
        },
    );
    assert!(
        daemon.fd_count() <= fds + 2,
        "fds {} after, {fds} before",
        daemon.fd_count()
    );
    daemon.stop().expect("clean stop");
}
