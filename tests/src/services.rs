//! Real services the daemon tests run: Debian's Prometheus and Alertmanager on loopback,
//! each in a temporary directory, and `auditor run` itself. Every process is killed on
//! drop; every wait is bounded.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde_json::Value;

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn http_get(url: &str) -> anyhow::Result<String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .get(url)
        .call()
        .with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let body = resp.body_mut().read_to_string()?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {body}");
    }
    Ok(body)
}

pub fn http_json(url: &str) -> anyhow::Result<Value> {
    Ok(serde_json::from_str(&http_get(url)?)?)
}

/// Polls `f` until it returns Some, for at most `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The value of one sample in Prometheus text exposition, matched by name and labels.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, ""));
        if n != name
            || !labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        {
            return None;
        }
        value.parse().ok()
    })
}

fn require(binary: &str) -> PathBuf {
    let path = PathBuf::from("/usr/bin").join(binary);
    assert!(
        path.exists(),
        "{binary} is missing: `cargo xtask setup` installs Debian's prometheus and prometheus-alertmanager"
    );
    path
}

pub struct Service {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
}

impl Service {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn temp_dir(what: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "auditor-{what}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn start(binary: &str, args: Vec<String>, port: u16, dir: PathBuf) -> anyhow::Result<Service> {
    let log = std::fs::File::create(dir.join("log"))?;
    let child = Command::new(require(binary))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let svc = Service {
        child: Some(child),
        port,
        dir,
    };
    let ready = format!("{}/-/ready", svc.url());
    let start = Instant::now();
    while http_get(&ready).is_err() {
        if start.elapsed() > Duration::from_secs(30) {
            bail!(
                "{binary} did not become ready:\n{}",
                std::fs::read_to_string(svc.dir.join("log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(svc)
}

/// Alertmanager with one do-nothing receiver, clustering off (no gossip port).
pub fn alertmanager() -> anyhow::Result<Service> {
    let dir = temp_dir("alertmanager");
    let port = free_port();
    std::fs::write(
        dir.join("am.yml"),
        "route:\n  receiver: sink\n  group_wait: 1s\nreceivers:\n  - name: sink\n",
    )?;
    start(
        "prometheus-alertmanager",
        vec![
            format!("--config.file={}", dir.join("am.yml").display()),
            format!("--storage.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--cluster.listen-address=".into(),
        ],
        port,
        dir,
    )
}

/// Prometheus scraping `target` every second, evaluating `rules`, alerting to `alertmanager`.
pub fn prometheus(target: &str, rules: &Path, alertmanager: &Service) -> anyhow::Result<Service> {
    let dir = temp_dir("prometheus");
    let port = free_port();
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [{rules:?}]\n\
         alerting: {{alertmanagers: [{{static_configs: [{{targets: ['127.0.0.1:{am}']}}]}}]}}\n\
         scrape_configs: [{{job_name: auditor, static_configs: [{{targets: ['{target}']}}]}}]\n",
        am = alertmanager.port
    );
    std::fs::write(dir.join("prometheus.yml"), config)?;
    start(
        "prometheus",
        vec![
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
        port,
        dir,
    )
}

/// Prometheus scraping daemons every second as the chart's ServiceMonitor does: job
/// `auditor`, a `node` label per target, the daemons' own labels honoured.
pub fn prometheus_nodes(targets: &[(&str, String)]) -> anyhow::Result<Service> {
    let dir = temp_dir("prometheus-nodes");
    let port = free_port();
    let statics = targets
        .iter()
        .map(|(node, t)| format!("{{targets: ['{t}'], labels: {{node: '{node}'}}}}"))
        .collect::<Vec<_>>()
        .join(", ");
    let config = format!(
        "global: {{scrape_interval: 1s}}\n\
         scrape_configs: [{{job_name: auditor, honor_labels: true, static_configs: [{statics}]}}]\n"
    );
    std::fs::write(dir.join("prometheus.yml"), config)?;
    start(
        "prometheus",
        vec![
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
        port,
        dir,
    )
}

/// `auditor run` as a child process.
pub struct Daemon {
    child: Option<Child>,
    pub port: u16,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts the daemon and waits until /readyz says its probes are attached.
    pub fn start(args: &[String], log: PathBuf) -> anyhow::Result<Daemon> {
        Daemon::start_with(&crate::workspace_bin("auditor"), args, log)
    }

    /// As `start`, with an explicit `auditor` binary.
    pub fn start_with(bin: &Path, args: &[String], log: PathBuf) -> anyhow::Result<Daemon> {
        Daemon::start_env(bin, args, log, &[])
    }

    /// As `start_with`, with extra environment (e.g. KUBECONFIG).
    pub fn start_env(
        bin: &Path,
        args: &[String],
        log: PathBuf,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Daemon> {
        let port = free_port();
        let file = std::fs::File::create(&log)?;
        let child = Command::new(bin)
            .envs(env.iter().copied())
            .arg("run")
            .args(args)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()?;
        let mut d = Daemon {
            child: Some(child),
            port,
            log,
        };
        let start = Instant::now();
        while http_get(&format!("{}/readyz", d.url())).is_err() {
            if let Some(status) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("auditor run exited with {status}:\n{}", d.log_text());
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("auditor run did not become ready:\n{}", d.log_text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(d)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The daemon's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The daemon's open file descriptors (from /proc/PID/fd).
    pub fn fd_count(&self) -> usize {
        let pid = self.child.as_ref().expect("running").id();
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    pub fn metrics(&self) -> String {
        http_get(&format!("{}/metrics", self.url())).unwrap_or_default()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        if let Some(c) = &self.child {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), sig);
        }
    }

    /// SIGTERM and wait: the daemon flushes its store and detaches.
    pub fn stop(mut self) -> anyhow::Result<String> {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let status = self.child.as_mut().expect("running").wait()?;
        self.child = None;
        if !status.success() {
            bail!("auditor run exited with {status}:\n{}", self.log_text());
        }
        Ok(self.log_text())
    }

    /// SIGKILL: no chance to flush.
    pub fn kill(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
