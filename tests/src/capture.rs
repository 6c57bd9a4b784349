//! Runs `auditor capture` as a child process and collects what it printed.

use std::{
    io::{BufRead, BufReader, Read},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use anyhow::{Context, bail};
use serde_json::Value;

pub struct CaptureProc {
    child: Option<Child>,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: mpsc::Receiver<String>,
    /// The line that said the capture runs (`auditor: capturing (...)`): what it hooked.
    pub banner: String,
}

pub struct Captured {
    /// Every line of stdout in order: flow records, `dns` and `watch` lines.
    pub lines: Vec<Value>,
    /// The flow records (the stream's `watch` lines are in `watches`).
    pub records: Vec<Value>,
    /// The `watch` lines: the spans the records are complete for.
    pub watches: Vec<Value>,
    pub summary: Value,
    pub stderr: String,
}

impl CaptureProc {
    /// Starts the capture and returns once its probes are attached.
    pub fn start(args: &[&str]) -> anyhow::Result<CaptureProc> {
        Self::start_env(args, &[])
    }

    /// The same with extra environment variables.
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<CaptureProc> {
        let bin = crate::workspace_bin("auditor");
        let mut child = Command::new(&bin)
            .arg("capture")
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let mut out = child.stdout.take().expect("stdout");
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut proc = CaptureProc {
            child: Some(child),
            stdout: Some(stdout),
            stderr: rx,
            banner: String::new(),
        };
        let mut seen = Vec::new();
        loop {
            match proc.stderr.recv_timeout(Duration::from_secs(20)) {
                Ok(line) if line.contains("capturing") => {
                    proc.banner = line;
                    return Ok(proc);
                }
                Ok(line) => seen.push(line),
                Err(_) => bail!("auditor capture did not become ready:\n{}", seen.join("\n")),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGTERM, then everything it printed.
    pub fn stop(mut self) -> anyhow::Result<Captured> {
        let child = self.child.as_mut().expect("running");
        // If the signal fails, Drop still kills and reaps the child.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )?;
        let status = child.wait()?;
        self.child = None;
        let stdout = self
            .stdout
            .take()
            .expect("stdout")
            .join()
            .unwrap_or_default();
        // The reader thread ends at EOF, which the exit has just caused.
        let stderr: Vec<String> = self.stderr.iter().collect();
        let stderr = stderr.join("\n");
        if !status.success() {
            bail!("auditor capture exited with {status}:\n{stderr}");
        }
        let records = stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l).with_context(|| format!("flow record is not JSON: {l}"))
            })
            .collect::<anyhow::Result<Vec<Value>>>()?;
        let lines = records.clone();
        let (watches, records): (Vec<Value>, Vec<Value>) =
            records.into_iter().partition(|v| v.get("watch").is_some());
        let summary = stderr
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find_map(|v| v.get("summary").cloned())
            .context("no summary line on stderr")?;
        Ok(Captured {
            lines,
            records,
            watches,
            summary,
            stderr,
        })
    }

    /// SIGKILL: for the test that nothing stays attached even then.
    pub fn kill(mut self) -> anyhow::Result<()> {
        let child = self.child.as_mut().expect("running");
        child.kill()?;
        child.wait()?;
        self.child = None;
        Ok(())
    }
}

impl Drop for CaptureProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
