//! Running `auditor-peer`, the tests' workload, inside the lab's namespaces.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Stdio},
};

use crate::lab::Lab;

pub fn peer_bin() -> PathBuf {
    crate::workspace_bin("auditor-peer")
}

/// Starts a server in `host` and returns once it listens.
pub fn serve(lab: &Lab, host: &str, args: &[&str]) -> Child {
    let mut child = lab
        .command(host, &peer_bin(), args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn server");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("server output");
    assert!(line.starts_with("ready"), "server did not start: {line:?}");
    child
}

/// Runs a client to completion; it must succeed (audit mode never fails a connect).
/// Returns its pid.
pub fn client(lab: &Lab, host: &str, args: &[&str]) -> u32 {
    let mut child = lab
        .command(host, &peer_bin(), args)
        .spawn()
        .expect("spawn client");
    let pid = child.id();
    let status = child.wait().expect("client");
    assert!(
        status.success(),
        "client {host} {args:?} failed with the probes attached: {status}"
    );
    pid
}

/// Waits for a server that was told how many connections to serve.
pub fn finish(mut server: Child) -> u32 {
    let pid = server.id();
    assert!(server.wait().expect("server").success(), "server failed");
    pid
}
