//! `auditor capture`: attach the probes and print every flow record as a JSON line on
//! stdout until stopped, then the kernel's summary on stderr.

use std::io::Write;

use anyhow::Context;

use crate::{
    capture::{self, ProbeOptions, Probes},
    cli::CaptureConfig,
};

pub fn run(cfg: CaptureConfig) -> anyhow::Result<std::process::ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut probes = Probes::load_and_attach(&ProbeOptions {
            self_tgid: std::process::id(),
            record_interval: cfg.probes.record_interval,
            active_interval: cfg.probes.active_interval,
            cgroup_root: cfg.probes.cgroup_root.clone(),
            tcp_hook: cfg.probes.tcp_hook,
            existing_sockets: cfg.probes.existing_sockets,
        })
        .context("starting the capture")?;
        // Servers bound before we started: their passive opens get an owner from now on.
        capture::stream::seed_listeners(&mut probes);
        // Before telling anyone we run: a SIGTERM from then on must stop us cleanly.
        let shutdown = crate::shutdown_signal(cfg.duration);
        eprintln!(
            "auditor: capturing (cgroup v2 root {}, netns from BTF: {}, TCP hook: {}, open sockets: {}); Ctrl-C to stop",
            probes.cgroup_root.display(),
            if probes.netns_offsets.is_some() {
                "yes"
            } else {
                "no"
            },
            probes.tcp_hook.name(),
            probes.sockets.method.name(),
        );
        let stdout = std::io::stdout();
        let mut out = std::io::LineWriter::new(stdout.lock());
        let sink = |rec: capture::FlowRecord| -> std::io::Result<()> {
            serde_json::to_writer(&mut out, &rec)?;
            out.write_all(b"\n")
        };
        let mut handler = capture::stream::RecordSink(sink);
        let summary = capture::stream::run(&mut probes, &mut handler, shutdown).await;
        match summary {
            Ok(summary) => {
                eprintln!("{}", serde_json::json!({ "summary": summary }));
                Ok(std::process::ExitCode::SUCCESS)
            }
            // A closed stdout (`auditor capture | head`) is a normal way to stop.
            Err(capture::stream::StreamError::Sink(e))
                if e.kind() == std::io::ErrorKind::BrokenPipe =>
            {
                Ok(std::process::ExitCode::SUCCESS)
            }
            Err(e) => Err(e.into()),
        }
    })
}
