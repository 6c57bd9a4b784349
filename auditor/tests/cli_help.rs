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

/// Every command below the root, with its path (`report verify`), from a built tree so
/// the help renders as a user sees it, at `width` columns.
fn commands_at(width: usize) -> Vec<(String, clap::Command)> {
    fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            let here = format!("{path} {}", sub.get_name()).trim().to_string();
            out.push((here.clone(), sub.clone()));
            walk(sub, &here, out);
        }
    }
    let mut root = Cli::command().term_width(width);
    root.build();
    let mut out = Vec::new();
    walk(&root, "", &mut out);
    out
}

/// The lines of a help text's "Example:"/"Examples:" blocks, each to the next blank line.
fn example_lines(help: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        match line.trim() {
            "Example:" | "Examples:" => inside = true,
            "" => inside = false,
            _ if inside => lines.push(line),
            _ => {}
        }
    }
    lines
}

#[test]
fn examples_are_whole_shell_lines_at_80_columns() {
    let mut checked = 0;
    for (name, mut cmd) in commands_at(80) {
        let source = cmd
            .get_after_long_help()
            .or(cmd.get_after_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        let help = cmd.render_long_help().to_string();
        let mut continued = false;
        for line in example_lines(&help) {
            let t = line.trim();
            // Printed as written: not one wrapped at 80 columns (its tail would be a
            // bare argument a user copies by itself, or loses when copying the head).
            assert!(
                source.lines().any(|s| s.trim() == t),
                "`auditor {name} --help`: the example line {t:?} was wrapped:\n{help}"
            );
            // A command, or the continuation of one that ends in `\`.
            let command = ["auditor ", "sudo auditor ", "openssl "]
                .iter()
                .any(|p| t.starts_with(p));
            assert!(
                command || continued,
                "`auditor {name} --help`: {t:?} is neither a command nor the continuation of one:\n{help}"
            );
            continued = t.ends_with('\\');
            checked += 1;
        }
        assert!(
            !continued,
            "`auditor {name} --help`: the last example ends in `\\`"
        );
    }
    assert!(checked >= 15, "only {checked} example lines found");
}

#[test]
fn replay_help_names_every_verdict() {
    let (_, mut replay) = commands_at(100)
        .into_iter()
        .find(|(n, _)| n == "replay")
        .unwrap();
    let help = replay.render_long_help().to_string();
    for v in auditor::model::Verdict::ALL {
        assert!(
            help.contains(v.as_str()),
            "{} missing in:\n{help}",
            v.as_str()
        );
    }
}

#[test]
fn usage_and_help_agree_on_what_is_optional() {
    for (name, mut cmd) in commands_at(100) {
        let usage = cmd.render_usage().to_string();
        let help = cmd.render_long_help().to_string();
        for arg in cmd.get_positionals() {
            let value = arg.get_id().as_str().to_uppercase();
            let shown = if arg.is_required_set() {
                format!("<{value}>")
            } else {
                format!("[{value}]")
            };
            assert!(
                usage.contains(&shown) && help.contains(&format!("  {shown}")),
                "`auditor {name}`: {value} should read {shown} in the usage and the help:\n{help}"
            );
        }
    }
}
