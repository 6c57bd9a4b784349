//! `--help` teaches: every command and every argument says what it is for. A new flag
//! without a doc comment fails here, not in a user's terminal.

use auditor::cli::Cli;
use clap::CommandFactory;

fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
    let here = format!("{path} {}", cmd.get_name()).trim().to_string();
    if cmd.get_about().is_none() && !path.is_empty() {
        missing.push(format!("`{here}` has no about text"));
    }
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        if arg.get_help().is_none() && arg.get_long_help().is_none() {
            missing.push(format!("`{here}`: argument `{id}` has no help"));
        }
    }
    for sub in cmd.get_subcommands() {
        if sub.get_name() != "help" {
            walk(sub, &here, missing);
        }
    }
}

#[test]
fn every_command_and_argument_has_help() {
    let cmd = Cli::command();
    cmd.clone().debug_assert();
    let mut missing = Vec::new();
    walk(&cmd, "", &mut missing);
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn examples_print_as_examples() {
    let mut cmd = Cli::command();
    let report = cmd.find_subcommand_mut("report").unwrap();
    let help = report.render_long_help().to_string();
    // One example a line, not run together into a paragraph.
    let examples: Vec<&str> = help
        .lines()
        .filter(|l| l.trim_start().starts_with("auditor report "))
        .collect();
    assert!(examples.len() >= 3, "{help}");
}
