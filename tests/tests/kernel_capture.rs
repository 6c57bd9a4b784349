//! `auditor capture` on the real kernel: real processes in network namespaces this test
//! creates (and always removes), each connection checked the way a user would check it.
//! Tests run one at a time (KERNEL lock): they share the kernel's hooks.

use std::{net::IpAddr, sync::Mutex};

use auditor_tests::peer::{client, finish, peer_bin, serve};
use auditor_tests::{capture::CaptureProc, kernel_tests_enabled, lab::Lab};
use serde_json::Value;

static KERNEL: Mutex<()> = Mutex::new(());

/// The records whose destination is one of the lab's addresses.
fn lab_records<'a>(records: &'a [Value], lab: &Lab) -> Vec<&'a Value> {
    let ours: Vec<String> = lab
        .hosts
        .iter()
        .flat_map(|h| [h.v4.to_string(), h.v6.to_string()])
        .collect();
    records
        .iter()
        .filter(|r| ours.iter().any(|a| r["dst_addr"] == a.as_str()))
        .collect()
}

fn only<'a>(records: &[&'a Value], what: &str, pred: impl Fn(&Value) -> bool) -> &'a Value {
    let found: Vec<&&Value> = records.iter().filter(|r| pred(r)).collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one record for {what}, got {found:#?}\nall: {records:#?}"
    );
    found[0]
}

/// What a user expects to read in one captured record.
struct Expect {
    transport: &'static str,
    direction: &'static str,
    src: IpAddr,
    dst: IpAddr,
    port: u16,
    pid: u32,
    hook: &'static str,
}

fn assert_flow(r: &Value, e: Expect) {
    let Expect {
        transport,
        direction,
        src,
        dst,
        port,
        pid,
        hook,
    } = e;
    assert_eq!(r["transport"], transport, "{r}");
    assert_eq!(r["direction"], direction, "{r}");
    assert_eq!(r["src_addr"], src.to_string(), "{r}");
    assert_eq!(r["dst_addr"], dst.to_string(), "{r}");
    assert_eq!(r["dst_port"], port, "{r}");
    assert_eq!(r["tgid"], pid, "{r}");
    assert_eq!(r["pid"], pid, "{r}");
    assert_eq!(r["comm"], "auditor-peer", "{r}");
    assert_eq!(r["count"], 1, "{r}");
    assert_eq!(r["hook"], hook, "{r}");
    assert_eq!(r["new"], true, "{r}");
    assert_ne!(r["netns_cookie"], 0, "{r}");
}

fn assert_nothing_lost(summary: &Value) {
    for k in ["ringbuf_full", "flow_insert_failed", "netns_read_failed"] {
        assert_eq!(summary["kernel"][k], 0, "kernel counter {k}: {summary}");
    }
    assert_eq!(summary["malformed"], 0, "{summary}");
    assert_eq!(summary["connections_lost"], 0, "{summary}");
}

#[test]
fn tcp_active_v4_v6_refused_and_passive_each_captured_once() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled("tcp_active_v4_v6_refused_and_passive_each_captured_once") {
        return;
    }
    // The default: sock_ops on this kernel.
    tcp_opens_each_captured_once(&[], "TCP hook: sock_ops");
}

/// tp_btf, the fallback of kernels that refuse sock_ops (older ones do not let it read
/// the current task) and what `--tcp-hook tp-btf` names.
#[test]
fn the_tp_btf_fallback_captures_the_same_tcp_opens() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled("the_tp_btf_fallback_captures_the_same_tcp_opens") {
        return;
    }
    tcp_opens_each_captured_once(&["--tcp-hook", "tp-btf"], "TCP hook: tp_btf");
}

/// The classic-tracepoint program, which kernels without BTF (or that refuse tp_btf) run and
/// this kernel otherwise never would. BTF offsets are still read here, so the other
/// consequences of a kernel without BTF (no netns cookie, the degraded warning) are not.
#[test]
fn the_classic_tracepoint_fallback_captures_the_same_tcp_opens() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled("the_classic_tracepoint_fallback_captures_the_same_tcp_opens") {
        return;
    }
    tcp_opens_each_captured_once(&["--tcp-hook", "tracepoint"], "TCP hook: tracepoint");
}

fn tcp_opens_each_captured_once(args: &[&str], banner: &str) {
    let lab = Lab::new(&["cli", "srv"]).expect("lab");
    let (cli, srv) = (lab.host("cli").clone(), lab.host("srv").clone());
    let capture = CaptureProc::start(args).expect("capture");
    assert!(capture.banner.contains(banner), "{}", capture.banner);

    let s4 = serve(
        &lab,
        "srv",
        &["listen", "tcp", &srv.v4.to_string(), "8080", "1"],
    );
    let s6 = serve(
        &lab,
        "srv",
        &["listen", "tcp", &srv.v6.to_string(), "8443", "1"],
    );
    let c4 = client(&lab, "cli", &["connect", &srv.v4.to_string(), "8080"]);
    let c6 = client(&lab, "cli", &["connect", &srv.v6.to_string(), "8443"]);
    let refused = client(
        &lab,
        "cli",
        &["connect", &srv.v4.to_string(), "9", "refused"],
    );
    let (s4, s6) = (finish(s4), finish(s6));

    let out = capture.stop().expect("capture output");
    let recs = lab_records(&out.records, &lab);
    let (cv4, cv6, sv4, sv6) = (
        IpAddr::V4(cli.v4),
        IpAddr::V6(cli.v6),
        IpAddr::V4(srv.v4),
        IpAddr::V6(srv.v6),
    );

    let r = only(&recs, "tcp v4 connect", |r| {
        r["direction"] == "egress" && r["dst_port"] == 8080
    });
    assert_flow(
        r,
        Expect {
            transport: "tcp",
            direction: "egress",
            src: cv4,
            dst: sv4,
            port: 8080,
            pid: c4,
            hook: "tcp_active",
        },
    );
    let r = only(&recs, "tcp v6 connect", |r| {
        r["direction"] == "egress" && r["dst_port"] == 8443
    });
    assert_flow(
        r,
        Expect {
            transport: "tcp",
            direction: "egress",
            src: cv6,
            dst: sv6,
            port: 8443,
            pid: c6,
            hook: "tcp_active",
        },
    );
    let r = only(&recs, "refused connect", |r| r["dst_port"] == 9);
    assert_flow(
        r,
        Expect {
            transport: "tcp",
            direction: "egress",
            src: cv4,
            dst: sv4,
            port: 9,
            pid: refused,
            hook: "tcp_active",
        },
    );
    let a4 = only(&recs, "tcp v4 accept", |r| {
        r["direction"] == "ingress" && r["dst_port"] == 8080
    });
    assert_flow(
        a4,
        Expect {
            transport: "tcp",
            direction: "ingress",
            src: cv4,
            dst: sv4,
            port: 8080,
            pid: s4,
            hook: "tcp_passive",
        },
    );
    let a6 = only(&recs, "tcp v6 accept", |r| {
        r["direction"] == "ingress" && r["dst_port"] == 8443
    });
    assert_flow(
        a6,
        Expect {
            transport: "tcp",
            direction: "ingress",
            src: cv6,
            dst: sv6,
            port: 8443,
            pid: s6,
            hook: "tcp_passive",
        },
    );
    assert_eq!(recs.len(), 5, "unexpected extra records: {recs:#?}");

    // Both ends are told apart by their network namespace.
    let client_ns = &recs.iter().find(|r| r["direction"] == "egress").unwrap()["netns_cookie"];
    assert!(
        recs.iter()
            .filter(|r| r["direction"] == "egress")
            .all(|r| &r["netns_cookie"] == client_ns)
    );
    assert!(
        recs.iter()
            .filter(|r| r["direction"] == "ingress")
            .all(|r| &r["netns_cookie"] != client_ns)
    );
    assert_nothing_lost(&out.summary);
}

/// An error path of the kernel programs (the flow map refusing an insert), taken on
/// purpose: every sighting is still delivered, each failure is counted, and the failure
/// reaches the log through aya-log, rate-limited.
#[test]
fn a_kernel_error_path_is_logged_through_aya_log_and_counted() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled("a_kernel_error_path_is_logged_through_aya_log_and_counted") {
        return;
    }
    let lab = Lab::new(&["cli", "srv"]).expect("lab");
    let srv = lab.host("srv").clone();
    let started = std::time::Instant::now();
    let capture = CaptureProc::start_env(&[], &[("AUDITOR_INJECT_KERNEL_FAULTS", "flow_insert")])
        .expect("capture");
    const CONNECTIONS: usize = 20;
    let server = serve(
        &lab,
        "srv",
        &[
            "listen",
            "tcp",
            &srv.v4.to_string(),
            "8080",
            &CONNECTIONS.to_string(),
        ],
    );
    for _ in 0..CONNECTIONS {
        client(&lab, "cli", &["connect", &srv.v4.to_string(), "8080"]);
    }
    finish(server);
    let out = capture.stop().expect("capture output");
    let seconds = started.elapsed().as_secs() + 1;

    let k = &out.summary["kernel"];
    let failed = k["flow_insert_failed"].as_u64().unwrap();
    // Both ends of every lab connection, and whatever else the machine did meanwhile.
    assert!(failed >= 2 * CONNECTIONS as u64, "{}", out.summary);
    assert_eq!(
        failed,
        k["sightings"].as_u64().unwrap(),
        "every sighting took the error path: {}",
        out.summary
    );
    assert_eq!(k["flows_inserted"], 0, "{}", out.summary);
    // Nothing lost: each sighting went through the ring buffer as its own record.
    let recs = lab_records(&out.records, &lab);
    let delivered: u64 = recs.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(delivered, 2 * CONNECTIONS as u64, "{recs:#?}");
    assert_eq!(out.summary["kernel"]["ringbuf_full"], 0, "{}", out.summary);

    let logged = out
        .stderr
        .lines()
        .filter(|l| l.contains("flow map refused an insert") && l.contains("WARN"))
        .count();
    assert!(logged >= 1, "the error was not logged:\n{}", out.stderr);
    // Rate-limited to one record per kind per CPU per second, whatever the failures.
    // Per online CPU (passive opens run in softirq on any of them), not this process's
    // affinity.
    let cpus = online_cpus();
    assert!(
        (logged as u64) <= cpus * seconds,
        "{logged} log lines for {failed} failures: not rate-limited"
    );
    assert!(
        (logged as u64) < failed,
        "{logged} log lines for {failed} failures"
    );
}

/// The kernel's online CPUs (`/sys/devices/system/cpu/online`, e.g. "0-1,4").
fn online_cpus() -> u64 {
    let list = std::fs::read_to_string("/sys/devices/system/cpu/online").expect("online CPUs");
    list.trim()
        .split(',')
        .map(|range| match range.split_once('-') {
            Some((a, b)) => b.parse::<u64>().unwrap() - a.parse::<u64>().unwrap() + 1,
            None => 1,
        })
        .sum()
}

#[test]
fn udp_connected_and_unconnected_each_captured_once() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled("udp_connected_and_unconnected_each_captured_once") {
        return;
    }
    let lab = Lab::new(&["cli", "srv"]).expect("lab");
    let (cli, srv) = (lab.host("cli").clone(), lab.host("srv").clone());
    let capture = CaptureProc::start(&[]).expect("capture");

    let s1 = serve(
        &lab,
        "srv",
        &["listen", "udp", &srv.v4.to_string(), "5060", "1"],
    );
    let s2 = serve(
        &lab,
        "srv",
        &["listen", "udp", &srv.v6.to_string(), "5070", "1"],
    );
    let (s1_pid, s2_pid) = (s1.id(), s2.id());
    let connected = client(
        &lab,
        "cli",
        &["send", &srv.v4.to_string(), "5060", "connected"],
    );
    let unconnected = client(
        &lab,
        "cli",
        &["send", &srv.v6.to_string(), "5070", "unconnected"],
    );
    finish(s1);
    finish(s2);

    let out = capture.stop().expect("capture output");
    let all = lab_records(&out.records, &lab);
    // Each datagram was also received: ingress UDP, from the receiver's side.
    let (recs, ingress): (Vec<&Value>, Vec<&Value>) =
        all.iter().partition(|r| r["direction"] == "egress");
    for (port, server, src, dst) in [
        (5060, s1_pid, IpAddr::V4(cli.v4), IpAddr::V4(srv.v4)),
        (5070, s2_pid, IpAddr::V6(cli.v6), IpAddr::V6(srv.v6)),
    ] {
        let r = only(&ingress, "udp datagram received", |r| r["dst_port"] == port);
        assert_flow(
            r,
            Expect {
                transport: "udp",
                direction: "ingress",
                src,
                dst,
                port,
                pid: server,
                hook: "udp_recvmsg",
            },
        );
    }
    assert_eq!(ingress.len(), 2, "{ingress:#?}");
    let r = only(&recs, "connected udp", |r| r["dst_port"] == 5060);
    assert_eq!(
        (&r["transport"], &r["direction"], &r["hook"]),
        (&"udp".into(), &"egress".into(), &"udp_connect".into()),
        "{r}"
    );
    assert_eq!(
        (&r["tgid"], &r["comm"], &r["count"]),
        (&connected.into(), &"auditor-peer".into(), &1.into()),
        "{r}"
    );
    assert_eq!(r["dst_addr"], srv.v4.to_string());
    let r = only(&recs, "unconnected udp", |r| r["dst_port"] == 5070);
    assert_eq!(
        (&r["transport"], &r["direction"], &r["hook"]),
        (&"udp".into(), &"egress".into(), &"udp_sendmsg".into()),
        "{r}"
    );
    assert_eq!(
        (&r["tgid"], &r["comm"], &r["count"]),
        (&unconnected.into(), &"auditor-peer".into(), &1.into()),
        "{r}"
    );
    assert_eq!(r["dst_addr"], srv.v6.to_string());
    // The sender's socket was unbound, so the kernel had no source address at sendmsg;
    // user space asks the sender's namespace which one it would use.
    assert_eq!(r["src_addr"], cli.v6.to_string(), "{r}");
    assert_eq!(
        r["netns_addrs"],
        serde_json::json!([cli.v4.to_string(), cli.v6.to_string()]),
        "{r}"
    );
    assert_eq!(recs.len(), 2, "unexpected extra records: {recs:#?}");
    assert_nothing_lost(&out.summary);
}

#[test]
fn a_connection_storm_becomes_a_few_records_and_loses_no_connection() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled("a_connection_storm_becomes_a_few_records_and_loses_no_connection") {
        return;
    }
    let lab = Lab::new(&["cli"]).expect("lab");
    let cli = lab.host("cli").clone();
    let capture = CaptureProc::start(&["--report-interval", "200ms"]).expect("capture");
    let out = lab
        .command(
            "cli",
            &peer_bin(),
            &[
                "storm",
                "tcp",
                &cli.v4.to_string(),
                "7001,7002",
                "2000",
                "20",
            ],
        )
        .output()
        .expect("storm");
    assert!(
        out.status.success(),
        "storm failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let storm: Value = serde_json::from_slice(&out.stdout).expect("storm output");
    assert_eq!(storm["ops"], 2000, "{storm}");

    let cap = capture.stop().expect("capture output");
    let egress: Vec<&Value> = cap
        .records
        .iter()
        .filter(|r| r["tgid"] == storm["tgid"] && r["direction"] == "egress")
        .collect();
    let total: u64 = egress.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    let made = 2000 + storm["extra"].as_u64().expect("extra");
    assert_eq!(total, made, "every connect is counted once: {egress:#?}");
    // Two flows (one per port); each reported at most once per 200ms while active.
    assert!(
        egress.len() < 2000 / 10,
        "the storm was not aggregated: {} records",
        egress.len()
    );
    assert_eq!(
        egress.iter().filter(|r| r["new"] == true).count(),
        2,
        "{egress:#?}"
    );
    assert_nothing_lost(&cap.summary);
}

fn our_programs() -> Vec<String> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter_map(|p| p.name_as_str().map(str::to_string))
        .filter(|n| n.starts_with("auditor_"))
        .collect()
}

#[test]
fn nothing_stays_attached_after_exit_or_sigkill() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled("nothing_stays_attached_after_exit_or_sigkill") {
        return;
    }
    // A previous test's tracing program may still be in its RCU grace period.
    for _ in 0..50 {
        if our_programs().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        our_programs(),
        Vec::<String>::new(),
        "programs were left over before the test"
    );
    let capture = CaptureProc::start(&[]).expect("capture");
    // post_bind, connect, sendmsg, recvmsg (v4 and v6 each), one TCP program (sock_ops,
    // or a fallback where the kernel refuses it), the socket iterator, and the
    // DNS answer program (cgroup skb ingress).
    assert_eq!(
        our_programs().len(),
        11,
        "all eleven programs load: {:?}",
        our_programs()
    );
    capture.stop().expect("stop");
    // Programs are freed after an RCU grace period: give it a moment.
    for _ in 0..50 {
        if our_programs().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        our_programs(),
        Vec::<String>::new(),
        "programs left after a clean exit"
    );

    let capture = CaptureProc::start(&[]).expect("capture");
    assert!(capture.pid() > 0);
    capture.kill().expect("kill");
    // The kernel releases links when the last fd closes; give it a moment.
    for _ in 0..50 {
        if our_programs().is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("programs left after SIGKILL: {:?}", our_programs());
}

/// This process's network namespace cookie: the auditor runs in the same one.
fn own_netns_cookie() -> u64 {
    use std::os::fd::AsRawFd;
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("socket");
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: a valid socket; the out pointer and length describe `cookie`.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NETNS_COOKIE,
            (&raw mut cookie).cast(),
            &raw mut len,
        )
    };
    assert_eq!(rc, 0, "SO_NETNS_COOKIE");
    cookie
}

#[test]
fn connections_and_listeners_open_before_the_capture_are_reported_existing_with_their_owner() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled(
        "connections_and_listeners_open_before_the_capture_are_reported_existing_with_their_owner",
    ) {
        return;
    }
    // The default: the BPF socket iterator, on this kernel (BTF, iterators).
    existing_sockets_are_reported(&[], "iterator");
}

/// The same through the /proc walk, the fallback for kernels that cannot run the iterator.
#[test]
fn the_proc_walk_fallback_reports_the_same_existing_connections_and_listeners() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled(
        "the_proc_walk_fallback_reports_the_same_existing_connections_and_listeners",
    ) {
        return;
    }
    existing_sockets_are_reported(&["--existing-sockets", "proc"], "proc");
}

/// Sockets opened before `auditor capture` starts (run with `args`) come out with hook
/// `existing` and their owners; `method` is the enumeration its banner must name.
fn existing_sockets_are_reported(args: &[&str], method: &str) {
    let lab = Lab::new(&["cli", "srv"]).expect("lab");
    let (cli, srv) = (lab.host("cli").clone(), lab.host("srv").clone());
    // A server and a client with a pooled TCP connection, a connected UDP socket and a
    // listener of its own, all opened before the auditor starts.
    let server = serve(
        &lab,
        "srv",
        &["hold", "60", &format!("accept:{}:7100", srv.v4)],
    );
    let holder = serve(
        &lab,
        "cli",
        &[
            "hold",
            "60",
            &format!("tcp:{}:7100", srv.v4),
            &format!("udp:{}:7101", srv.v4),
            &format!("listen:{}:7102", cli.v4),
        ],
    );
    let (server_pid, holder_pid) = (server.id(), holder.id());
    let capture = CaptureProc::start(args).expect("capture");
    assert!(
        capture.banner.contains(&format!("open sockets: {method})")),
        "the capture names how it enumerates open sockets ({method}): {}",
        capture.banner
    );
    // A new connection to the listener that predates the capture: its owner is known.
    client(&lab, "cli", &["connect", &srv.v4.to_string(), "7100"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = capture.stop().expect("capture output");
    for mut c in [server, holder] {
        let _ = c.kill();
        let _ = c.wait();
    }
    let recs = lab_records(&out.records, &lab);
    let own = own_netns_cookie();
    let existing = |r: &Value| r["hook"] == "existing";
    let check_owner = |r: &Value, pid: u32| {
        assert_eq!((&r["tgid"], &r["pid"]), (&pid.into(), &pid.into()), "{r}");
        assert_eq!(r["comm"], "auditor-peer", "{r}");
        assert_ne!(r["netns_cookie"], 0, "{r}");
        assert_ne!(r["netns_cookie"], own, "not the auditor's namespace: {r}");
        assert_eq!(r["new"], false, "{r}");
    };

    let r = only(&recs, "existing tcp connection", |r| {
        existing(r) && r["transport"] == "tcp" && r["direction"] == "egress"
    });
    assert_eq!(r["src_addr"], cli.v4.to_string(), "{r}");
    assert_eq!(
        (&r["dst_addr"], &r["dst_port"]),
        (&srv.v4.to_string().into(), &7100.into()),
        "{r}"
    );
    assert_eq!(r["count"], 1, "{r}");
    check_owner(r, holder_pid);

    let r = only(&recs, "existing connected udp", |r| {
        existing(r) && r["transport"] == "udp"
    });
    assert_eq!(
        (&r["direction"], &r["dst_port"], &r["count"]),
        (&"egress".into(), &7101.into(), &1.into()),
        "{r}"
    );
    assert_eq!(r["dst_addr"], srv.v4.to_string(), "{r}");
    check_owner(r, holder_pid);

    let r = only(&recs, "existing client-side listener", |r| {
        existing(r) && r["dst_port"] == 7102
    });
    assert_eq!(
        (&r["direction"], &r["src_addr"], &r["count"]),
        (&"ingress".into(), &Value::Null, &0.into()),
        "{r}"
    );
    assert_eq!(r["dst_addr"], cli.v4.to_string(), "{r}");
    check_owner(r, holder_pid);

    // The server's side: its accepted connection and its listener, in its own namespace.
    let r = only(&recs, "existing accepted connection", |r| {
        existing(r)
            && r["direction"] == "ingress"
            && r["dst_port"] == 7100
            && r["src_addr"] == cli.v4.to_string()
    });
    assert_eq!(
        (&r["direction"], &r["count"]),
        (&"ingress".into(), &1.into()),
        "{r}"
    );
    check_owner(r, server_pid);
    let r = only(&recs, "existing server listener", |r| {
        existing(r) && r["dst_port"] == 7100 && r["src_addr"].is_null()
    });
    check_owner(r, server_pid);

    // The passive open after the start names the listener's owner found by the walk.
    let r = only(&recs, "passive open to the older listener", |r| {
        r["hook"] == "tcp_passive"
    });
    assert_eq!(
        (&r["tgid"], &r["comm"]),
        (&server_pid.into(), &"auditor-peer".into()),
        "{r}"
    );
    assert_nothing_lost(&out.summary);
}
