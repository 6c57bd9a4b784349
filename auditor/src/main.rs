//! `auditor` entry point: parses the command line, sets up logging, dispatches to the
//! command's handler (`commands/`), and maps errors to exit codes.

use auditor::{
    cli::{
        CaptureConfig, Cli, Command, ExplainConfig, NetworkPolicyConfig, ReplayConfig,
        ReportConfig, RunConfig,
    },
    commands,
};
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Capture(args) => CaptureConfig::try_from(args).and_then(commands::capture::run),
        Command::Run(args) => RunConfig::try_from(args).and_then(commands::run::run),
        Command::Report(args) => ReportConfig::try_from(args).and_then(commands::report::run),
        Command::Replay(args) => ReplayConfig::try_from(args).and_then(commands::replay::run),
        Command::Explain(args) => ExplainConfig::try_from(args).and_then(commands::explain::run),
        Command::NetworkPolicy(args) => {
            NetworkPolicyConfig::try_from(args).and_then(commands::networkpolicy::run)
        }
        Command::Allowlist(cmd) => commands::allowlist::run(cmd),
        Command::Schema(args) => commands::schema::run(args.name),
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
