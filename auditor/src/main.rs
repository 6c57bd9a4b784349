//! `auditor` entry point: parses the command line, sets up logging, runs one command.

use std::io::Write;

use anyhow::Context;
use auditor::{
    capture::{self, ProbeOptions, Probes},
    cli::{
        CaptureConfig, Cli, Command, NetworkPolicyConfig, ReplayConfig, ReportConfig, RunConfig,
        SchemaOutput,
    },
};
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Capture(args) => CaptureConfig::try_from(args)
            .and_then(run_capture)
            .map(|()| std::process::ExitCode::SUCCESS),
        Command::Allowlist(cmd) => auditor::commands::allowlist::run(cmd),
        Command::Run(args) => RunConfig::try_from(args)
            .and_then(auditor::daemon::run)
            .map(|()| std::process::ExitCode::SUCCESS),
        Command::Report(args) => {
            ReportConfig::try_from(args).and_then(auditor::commands::report::run)
        }
        Command::Replay(args) => {
            ReplayConfig::try_from(args).and_then(auditor::commands::verdicts::replay)
        }
        Command::NetworkPolicy(args) => {
            NetworkPolicyConfig::try_from(args).and_then(auditor::commands::networkpolicy::run)
        }
        Command::Explain(args) => auditor::commands::verdicts::explain_cmd(args.into()),
        Command::Schema { output } => {
            let text = match output {
                SchemaOutput::Event => auditor::event::schema_json(),
                SchemaOutput::Report => auditor::report::schema_json(),
                SchemaOutput::WouldBreak => auditor::networkpolicy::would_break::schema_json(),
                SchemaOutput::Baseline => auditor::verdict::baseline::schema_json(),
            };
            std::io::stdout()
                .write_all(text.as_bytes())
                .map(|()| std::process::ExitCode::SUCCESS)
                .map_err(Into::into)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // Exit 2 for errors: exit 1 is a verdict (`--fail-on`, `verify`, `check`).
            eprintln!("auditor: error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run_capture(cfg: CaptureConfig) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut probes = Probes::load_and_attach(&ProbeOptions {
            self_tgid: std::process::id(),
            report_interval: cfg.probes.report_interval,
            active_interval: cfg.probes.active_interval,
            cgroup_root: cfg.probes.cgroup_root.clone(),
            tcp_hook: cfg.probes.tcp_hook,
            existing_sockets: cfg.probes.existing_sockets,
        })
        .context("starting the capture")?;
        // Servers bound before we started: their passive opens get an owner from now on.
        capture::stream::seed_listeners(&mut probes);
        // Before telling anyone we run: a SIGTERM from then on must stop us cleanly.
        let shutdown = auditor::shutdown_signal(cfg.duration);
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
                Ok(())
            }
            // A closed stdout (`auditor capture | head`) is a normal way to stop.
            Err(capture::stream::StreamError::Sink(e))
                if e.kind() == std::io::ErrorKind::BrokenPipe =>
            {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    })
}

/// Logs go to stderr: RUST_LOG sets the level (default info); AUDITOR_LOG_FORMAT=json
/// gives one JSON object per line for log collectors.
fn init_logging() {
    use std::io::IsTerminal;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("AUDITOR_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}
