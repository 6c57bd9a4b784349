//! auditor-peer: the real process the kernel tests and the capture benchmark run, inside
//! network namespaces or on loopback. Every loop is bounded in count and in time.
//!
//!   auditor-peer listen tcp|udp ADDR PORT N   serve N connections/datagrams, then exit
//!   auditor-peer connect ADDR PORT [refused]  one TCP connect (refused: expect ECONNREFUSED)
//!   auditor-peer connect-many ADDR PORT N     N TCP connects, one after another
//!   auditor-peer serve SECS tcp:ADDR:PORT udp:ADDR:PORT …   serve them all for SECS seconds
//!   auditor-peer send ADDR PORT connected|unconnected   one UDP datagram
//!   auditor-peer storm tcp|udp ADDR PORTS N SECS    N connects/datagrams spread over ports
//!   auditor-peer hold SECS ENDPOINT…   open these and hold them SECS seconds (or until
//!       killed): tcp:ADDR:PORT (a TCP connection), udp:ADDR:PORT (a connected UDP socket),
//!       listen:ADDR:PORT (a TCP listener), accept:ADDR:PORT (a listener whose accepted
//!       connections are held open too)
//!   auditor-peer scan ADDR FROM TO SECS   one TCP connect to each port FROM..TO (exclusive)
//!   auditor-peer pace ADDR PORT RATE SECS   TCP connects to ADDR:PORT at RATE per second for
//!       SECS seconds (PORT 0: to a listener of its own on ADDR, which closes each at once)
//!   auditor-peer newports ADDR FROM RATE SECS   one TCP connect each 1/RATE s to a port not
//!       used before: FROM, FROM+1, … (refused is fine); a new edge each time
//!   auditor-peer resolve DNS NAME udp|tcp|auto one DNS A query to DNS:53 (IPv4 or IPv6);
//!       prints the address
//!       (auto: UDP, and TCP when the answer comes back truncated, as a stub resolver does)
//!   auditor-peer probe SECS MS ADDR:PORT …     a TCP connect to each every MS ms, for SECS
//!   auditor-peer sidecar SECS NAME fwd:LADDR:LPORT:TADDR:TPORT …   a mesh sidecar named
//!                                              NAME: forwards each listener to its target
//!
//! `serve` also takes `http:ADDR:PORT`: a metrics endpoint answering every HTTP request.

use std::{
    io::{Read, Write},
    net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["listen", proto, addr, port, n] => listen(proto, sock(addr, port), n.parse().unwrap_or(1)),
        ["connect", addr, port] => connect(sock(addr, port), false),
        ["connect", addr, port, "refused"] => connect(sock(addr, port), true),
        ["serve", secs, endpoints @ ..] => serve(secs.parse().unwrap_or(60), endpoints),
        ["hold", secs, endpoints @ ..] => hold(secs.parse().unwrap_or(60), endpoints),
        ["connect-many", addr, port, n] => {
            (0..n.parse::<u32>().unwrap_or(1)).try_for_each(|_| connect(sock(addr, port), false))
        }
        ["send", addr, port, mode] => send(sock(addr, port), *mode == "connected"),
        ["storm", proto, addr, ports, n, secs] => storm(
            proto,
            addr.parse().expect("address"),
            ports.split(',').map(|p| p.parse().expect("port")).collect(),
            n.parse().expect("count"),
            Duration::from_secs_f64(secs.parse().expect("seconds")),
        ),
        ["scan", addr, from, to, secs] => scan(
            addr.parse().expect("address"),
            from.parse().expect("port")..to.parse().expect("port"),
            Duration::from_secs_f64(secs.parse().expect("seconds")),
        ),
        ["pace", addr, port, rate, secs] => pace(
            addr.parse().expect("address"),
            port.parse().expect("port"),
            rate.parse().expect("rate"),
            secs.parse().expect("seconds"),
        ),
        ["newports", addr, from, rate, secs] => newports(
            addr.parse().expect("address"),
            from.parse().expect("port"),
            rate.parse().expect("rate"),
            secs.parse().expect("seconds"),
        ),
        ["resolve", dns, name, proto] => resolve(dns, name, proto),
        ["probe", secs, ms, targets @ ..] => probe(
            Duration::from_secs(secs.parse().unwrap_or(10)),
            Duration::from_millis(ms.parse().unwrap_or(1000)),
            targets,
        ),
        ["sidecar", secs, name, forwards @ ..] => sidecar(
            Duration::from_secs(secs.parse().unwrap_or(60)),
            name,
            forwards,
        ),
        _ => Err("usage: see the header of tests/src/bin/peer.rs".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("auditor-peer: {e}");
            ExitCode::FAILURE
        }
    }
}

type Res = Result<(), String>;

fn sock(addr: &str, port: &str) -> SocketAddr {
    SocketAddr::new(addr.parse().expect("address"), port.parse().expect("port"))
}

fn ready() {
    // The test waits for this line before it makes the client connect.
    println!("ready {}", std::process::id());
    let _ = std::io::stdout().flush();
}

fn listen(proto: &str, at: SocketAddr, n: usize) -> Res {
    let deadline = Instant::now() + IO_TIMEOUT;
    match proto {
        "tcp" => {
            let l = TcpListener::bind(at).map_err(|e| format!("bind {at}: {e}"))?;
            l.set_nonblocking(true).map_err(|e| e.to_string())?;
            ready();
            let mut served = 0;
            while served < n && Instant::now() < deadline {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.write_all(b"ok");
                        served += 1;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(e) => return Err(format!("accept: {e}")),
                }
            }
            if served < n {
                Err(format!("served {served} of {n} before the deadline"))
            } else {
                Ok(())
            }
        }
        "udp" => {
            let s = UdpSocket::bind(at).map_err(|e| format!("bind {at}: {e}"))?;
            s.set_read_timeout(Some(IO_TIMEOUT))
                .map_err(|e| e.to_string())?;
            ready();
            let mut buf = [0u8; 64];
            for _ in 0..n {
                s.recv_from(&mut buf).map_err(|e| format!("recv: {e}"))?;
            }
            Ok(())
        }
        other => Err(format!("unknown protocol {other}")),
    }
}

/// Accepts (TCP) and receives (UDP) on every endpoint until the deadline: the demo's
/// documented services.
fn serve(secs: u64, endpoints: &[&str]) -> Res {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut threads = Vec::new();
    for ep in endpoints {
        let (proto, rest) = ep
            .split_once(':')
            .ok_or_else(|| format!("{ep}: give tcp:ADDR:PORT or udp:ADDR:PORT"))?;
        let at: SocketAddr = rest.parse().map_err(|e| format!("{ep}: {e}"))?;
        match proto {
            "tcp" => {
                let l = TcpListener::bind(at).map_err(|e| format!("bind {at}: {e}"))?;
                l.set_nonblocking(true).map_err(|e| e.to_string())?;
                threads.push(std::thread::spawn(move || {
                    while Instant::now() < deadline {
                        match l.accept() {
                            Ok((mut s, _)) => {
                                let _ = s.write_all(b"ok");
                            }
                            Err(_) => std::thread::sleep(Duration::from_millis(2)),
                        }
                    }
                }));
            }
            "udp" => {
                let s = UdpSocket::bind(at).map_err(|e| format!("bind {at}: {e}"))?;
                s.set_read_timeout(Some(Duration::from_millis(100)))
                    .map_err(|e| e.to_string())?;
                threads.push(std::thread::spawn(move || {
                    let mut buf = [0u8; 64];
                    while Instant::now() < deadline {
                        let _ = s.recv_from(&mut buf);
                    }
                }));
            }
            "http" => {
                let l = TcpListener::bind(at).map_err(|e| format!("bind {at}: {e}"))?;
                l.set_nonblocking(true).map_err(|e| e.to_string())?;
                threads.push(std::thread::spawn(move || {
                    while Instant::now() < deadline {
                        match l.accept() {
                            Ok((s, _)) => {
                                std::thread::spawn(move || http_answer(s));
                            }
                            Err(_) => std::thread::sleep(Duration::from_millis(2)),
                        }
                    }
                }));
            }
            other => return Err(format!("{ep}: unknown protocol {other}")),
        }
    }
    ready();
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

fn connect(to: SocketAddr, expect_refused: bool) -> Res {
    match TcpStream::connect_timeout(&to, IO_TIMEOUT) {
        Ok(mut s) if !expect_refused => {
            s.set_read_timeout(Some(IO_TIMEOUT))
                .map_err(|e| e.to_string())?;
            let mut buf = [0u8; 2];
            s.read_exact(&mut buf).map_err(|e| format!("read: {e}"))?;
            Ok(())
        }
        Ok(_) => Err(format!("connect {to} succeeded; expected it to be refused")),
        Err(e) if expect_refused && e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(()),
        Err(e) => Err(format!("connect {to}: {e}")),
    }
}

fn send(to: SocketAddr, connected: bool) -> Res {
    let any: SocketAddr = if to.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    let s = UdpSocket::bind(any).map_err(|e| e.to_string())?;
    if connected {
        s.connect(to).map_err(|e| format!("connect {to}: {e}"))?;
        s.send(b"audit").map_err(|e| format!("send: {e}"))?;
    } else {
        s.send_to(b"audit", to)
            .map_err(|e| format!("send_to {to}: {e}"))?;
    }
    Ok(())
}

/// Opens long-lived sockets, as a connection pool or a server that started before the
/// auditor does, and keeps them open until the deadline.
fn hold(secs: u64, endpoints: &[&str]) -> Res {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut held_tcp = Vec::new();
    let mut held_udp = Vec::new();
    let mut listeners = Vec::new();
    let mut threads = Vec::new();
    for ep in endpoints {
        let (kind, rest) = ep
            .split_once(':')
            .ok_or_else(|| format!("{ep}: give KIND:ADDR:PORT"))?;
        let at: SocketAddr = rest.parse().map_err(|e| format!("{ep}: {e}"))?;
        match kind {
            "tcp" => held_tcp.push(
                TcpStream::connect_timeout(&at, IO_TIMEOUT)
                    .map_err(|e| format!("connect {at}: {e}"))?,
            ),
            "udp" => {
                let any: SocketAddr = if at.is_ipv4() {
                    "0.0.0.0:0".parse().unwrap()
                } else {
                    "[::]:0".parse().unwrap()
                };
                let s = UdpSocket::bind(any).map_err(|e| e.to_string())?;
                s.connect(at).map_err(|e| format!("connect {at}: {e}"))?;
                held_udp.push(s);
            }
            "listen" => {
                listeners.push(TcpListener::bind(at).map_err(|e| format!("bind {at}: {e}"))?)
            }
            "accept" => {
                let l = TcpListener::bind(at).map_err(|e| format!("bind {at}: {e}"))?;
                l.set_nonblocking(true).map_err(|e| e.to_string())?;
                threads.push(std::thread::spawn(move || {
                    let mut accepted = Vec::new();
                    while Instant::now() < deadline {
                        match l.accept() {
                            Ok((mut s, _)) => {
                                let _ = s.write_all(b"ok");
                                accepted.push(s);
                            }
                            Err(_) => std::thread::sleep(Duration::from_millis(5)),
                        }
                    }
                }));
            }
            other => return Err(format!("{ep}: unknown kind {other}")),
        }
    }
    ready();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop((held_tcp, held_udp, listeners));
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

/// A connect (or datagram) storm against servers it runs itself, for the benchmark.
/// Hygiene from docs: the server closes first so TIME_WAIT stays off the client's
/// ephemeral ports; destinations are spread over several ports; EADDRNOTAVAIL is counted.
fn storm(proto: &str, addr: IpAddr, ports: Vec<u16>, n: u64, limit: Duration) -> Res {
    let stop = Arc::new(AtomicBool::new(false));
    let mut servers = Vec::new();
    let mut udp_targets = Vec::new();
    for &port in &ports {
        let at = SocketAddr::new(addr, port);
        if proto == "tcp" {
            // Blocking accept: a back-off sleep would measure the sleep, not the kernel.
            // The stop flag is checked after each accept; a last connect wakes it.
            let l = TcpListener::bind(at).map_err(|e| format!("bind {at}: {e}"))?;
            let stop = stop.clone();
            servers.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((s, _)) = l.accept() {
                        drop(s); // server closes first
                    }
                }
            }));
        } else {
            let s = UdpSocket::bind(at).map_err(|e| format!("bind {at}: {e}"))?;
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .map_err(|e| e.to_string())?;
            let stop = stop.clone();
            servers.push(std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while !stop.load(Ordering::Relaxed) {
                    let _ = s.recv_from(&mut buf);
                }
            }));
            udp_targets.push(at);
        }
    }
    let started = Instant::now();
    let (mut done, mut addr_not_avail, mut other_errors) = (0u64, 0u64, 0u64);
    let udp = if proto == "udp" {
        let any: SocketAddr = if addr.is_ipv4() {
            "0.0.0.0:0".parse().unwrap()
        } else {
            "[::]:0".parse().unwrap()
        };
        Some(UdpSocket::bind(any).map_err(|e| e.to_string())?)
    } else {
        None
    };
    while done < n && started.elapsed() < limit {
        let to = SocketAddr::new(addr, ports[(done as usize) % ports.len()]);
        let outcome = match &udp {
            Some(s) => s.send_to(b"x", to).map(|_| ()),
            None => TcpStream::connect(to).map(|mut s| {
                let mut buf = [0u8; 1];
                let _ = s.read(&mut buf); // wait for the server's FIN
            }),
        };
        match outcome {
            Ok(()) => done += 1,
            Err(e) if e.raw_os_error() == Some(libc_eaddrnotavail()) => addr_not_avail += 1,
            Err(_) => other_errors += 1,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    // Wake-up connects are real connects too: reported as `extra` so callers can count
    // every connection the storm made.
    let mut extra = 0u64;
    if proto == "tcp" {
        for &port in &ports {
            let wake = SocketAddr::new(addr, port);
            if TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok() {
                extra += 1;
            }
        }
    }
    for s in servers {
        let _ = s.join();
    }
    println!(
        "{{\"ops\":{done},\"extra\":{extra},\"seconds\":{secs:.6},\"rate\":{:.1},\"eaddrnotavail\":{addr_not_avail},\"errors\":{other_errors},\"tgid\":{},\"cpu_ns\":{}}}",
        done as f64 / secs,
        std::process::id(),
        cpu_ns()
    );
    Ok(())
}

/// CPU time (user + system) of this whole process so far: the benchmark's "CPU per
/// operation". The eBPF programs run in this process's context (or its softirqs), so
/// their cost is part of it.
fn cpu_ns() -> u64 {
    // SAFETY: getrusage only writes the struct we hand it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0;
    }
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    ns(ru.ru_utime) + ns(ru.ru_stime)
}

/// A port scan: one connect to each port, as a scanner would. Closed ports answer with a
/// RST (refused); the kernel still saw each connect leave (SYN_SENT). Prints what it did
/// as one JSON line, so the caller knows how many connects to expect.
fn scan(addr: IpAddr, ports: std::ops::Range<u16>, limit: Duration) -> Res {
    let started = Instant::now();
    let (mut attempts, mut refused, mut connected, mut errors) = (0u64, 0u64, 0u64, 0u64);
    for port in ports {
        if started.elapsed() >= limit {
            break;
        }
        attempts += 1;
        match TcpStream::connect_timeout(&SocketAddr::new(addr, port), Duration::from_secs(1)) {
            Ok(_) => connected += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => refused += 1,
            Err(_) => errors += 1,
        }
    }
    println!(
        "{{\"attempts\":{attempts},\"refused\":{refused},\"connected\":{connected},\"errors\":{errors},\"seconds\":{:.3}}}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// How far past SECS a paced run may go. Connects that fell behind schedule (a slow
/// connect on a loaded machine) are not made up beyond it: the run ends on time, and its
/// summary says how many it made.
const PACE_GRACE: Duration = Duration::from_secs(2);

/// A loopback connect is answered at once (accepted or refused); one that takes a second
/// is counted as an error rather than allowed to stall the schedule.
const PACE_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// What a paced run did.
#[derive(Default, Debug)]
struct Paced {
    attempts: u64,
    connected: u64,
    refused: u64,
    errors: u64,
    seconds: f64,
}

/// Connects on a fixed schedule: connect `i` is due at `i / rate` seconds after the start
/// (a late one does not push the later ones back, so the rate holds on average). At most
/// `rate * secs` connects (rounded) and `secs` + PACE_GRACE seconds. `target(i)` is where
/// connect `i` goes. With `wait_fin`, a connection that was accepted is read until the
/// server closes it (the server closing first keeps TIME_WAIT off this side's ephemeral
/// ports, as in `storm`); otherwise it is closed at once.
fn paced(
    rate: f64,
    secs: f64,
    wait_fin: bool,
    mut target: impl FnMut(u64) -> SocketAddr,
) -> Result<Paced, String> {
    if !(rate.is_finite() && rate > 0.0) {
        return Err(format!(
            "rate {rate}: give a positive number of connects per second"
        ));
    }
    if !(secs.is_finite() && secs >= 0.0) {
        return Err(format!(
            "seconds {secs}: give a number of seconds, 0 or more"
        ));
    }
    let count = (rate * secs).round() as u64;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs) + PACE_GRACE;
    let mut p = Paced::default();
    for i in 0..count {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if due > now {
            std::thread::sleep(due - now);
        }
        p.attempts += 1;
        match TcpStream::connect_timeout(&target(i), PACE_CONNECT_TIMEOUT) {
            Ok(mut s) => {
                p.connected += 1;
                if wait_fin {
                    let _ = s.set_read_timeout(Some(PACE_CONNECT_TIMEOUT));
                    let mut buf = [0u8; 64];
                    // Bounded: a server that talks on and never closes gets 16 reads.
                    for _ in 0..16 {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => p.refused += 1,
            Err(_) => p.errors += 1,
        }
    }
    p.seconds = started.elapsed().as_secs_f64();
    Ok(p)
}

/// Steady load for the daemon benchmarks: TCP connects to `addr:port` at `rate` per second
/// for `secs` seconds. Port 0: to a listener of its own on `addr` (a thread accepts each
/// connection and closes it at once), so the load needs no second process. Prints one JSON
/// line: what it did, and the port it connected to.
fn pace(addr: IpAddr, port: u16, rate: f64, secs: f64) -> Res {
    let stop = Arc::new(AtomicBool::new(false));
    let mut server = None;
    let port = if port == 0 {
        let l = TcpListener::bind(SocketAddr::new(addr, 0))
            .map_err(|e| format!("bind {addr}:0: {e}"))?;
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        let stop = stop.clone();
        // The same bound as the connects, and a little more for the last of them.
        let deadline = Instant::now() + Duration::from_secs_f64(secs.max(0.0)) + PACE_GRACE * 2;
        server = Some(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                match l.accept() {
                    Ok((s, _)) => drop(s), // the server closes first
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        }));
        port
    } else {
        port
    };
    let to = SocketAddr::new(addr, port);
    let result = paced(rate, secs, true, |_| to);
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = server {
        let _ = t.join();
    }
    let p = result?;
    println!(
        "{{\"attempts\":{},\"connected\":{},\"refused\":{},\"errors\":{},\"seconds\":{:.3},\"rate\":{:.1},\"port\":{port}}}",
        p.attempts,
        p.connected,
        p.refused,
        p.errors,
        p.seconds,
        p.attempts as f64 / p.seconds.max(f64::MIN_POSITIVE),
    );
    Ok(())
}

/// New edges at a steady rate: one TCP connect each 1/`rate` s to a port not used before
/// in this run (`from`, `from` + 1, …), closed at once; a refused connect is as new an
/// edge as an accepted one. Refuses to start when the run would pass port 65535. Prints
/// one JSON line: what it did, and the last port it tried.
fn newports(addr: IpAddr, from: u16, rate: f64, secs: f64) -> Res {
    let count = (rate * secs).round();
    if count.is_finite() && count >= 1.0 && from as f64 + count - 1.0 > u16::MAX as f64 {
        return Err(format!(
            "{count} ports from {from} pass port 65535: give a lower FROM, RATE or SECS"
        ));
    }
    let p = paced(rate, secs, false, |i| {
        SocketAddr::new(addr, from + i as u16)
    })?;
    let last = if p.attempts == 0 {
        serde_json::Value::Null
    } else {
        (from as u64 + p.attempts - 1).into()
    };
    println!(
        "{{\"attempts\":{},\"connected\":{},\"refused\":{},\"errors\":{},\"seconds\":{:.3},\"from\":{from},\"last_port\":{last}}}",
        p.attempts, p.connected, p.refused, p.errors, p.seconds,
    );
    Ok(())
}

const fn libc_eaddrnotavail() -> i32 {
    99 // EADDRNOTAVAIL on Linux
}

/// Answers one HTTP request with a tiny exposition and closes the connection, so every
/// scrape is a connection of its own (as with a target that does not keep connections
/// alive).
fn http_answer(mut s: TcpStream) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let body = "# TYPE peer_up gauge\npeer_up 1\n";
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(answer.as_bytes());
            return;
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    }
}

/// One DNS query (A, recursion desired) for `name` to `dns`:53 over UDP or TCP; prints
/// the first address of the answer.
fn resolve(dns: &str, name: &str, proto: &str) -> Res {
    let server = sock(dns, "53");
    let mut q: Vec<u8> = vec![0x4a, 0x17, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let answer = match proto {
        "auto" => {
            let udp = query_udp(server, &q)?;
            // TC: the answer did not fit 512 bytes; ask again over TCP.
            if udp.len() > 2 && udp[2] & 0x02 != 0 {
                query_tcp(server, &q)?
            } else {
                udp
            }
        }
        "udp" => query_udp(server, &q)?,
        "tcp" => query_tcp(server, &q)?,
        other => return Err(format!("unknown protocol {other}")),
    };
    let addr =
        first_a_record(&answer).ok_or_else(|| format!("{name}: no address in the answer"))?;
    println!("{addr}");
    Ok(())
}

fn query_udp(server: SocketAddr, q: &[u8]) -> Result<Vec<u8>, String> {
    let any = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let s = UdpSocket::bind(any).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.connect(server)
        .map_err(|e| format!("connect {server}: {e}"))?;
    s.send(q).map_err(|e| format!("send: {e}"))?;
    let mut buf = [0u8; 512];
    let n = s.recv(&mut buf).map_err(|e| format!("recv: {e}"))?;
    Ok(buf[..n].to_vec())
}

fn query_tcp(server: SocketAddr, q: &[u8]) -> Result<Vec<u8>, String> {
    let mut s = TcpStream::connect_timeout(&server, IO_TIMEOUT)
        .map_err(|e| format!("connect {server}: {e}"))?;
    s.set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(q);
    s.write_all(&framed).map_err(|e| format!("send: {e}"))?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).map_err(|e| format!("recv: {e}"))?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).map_err(|e| format!("recv: {e}"))?;
    Ok(buf)
}

/// The first A record of a DNS answer (rcode 0), skipping the question.
fn first_a_record(m: &[u8]) -> Option<std::net::Ipv4Addr> {
    if m.len() < 12 || m[3] & 0x0f != 0 || u16::from_be_bytes([m[6], m[7]]) == 0 {
        return None;
    }
    let skip_name = |mut i: usize| -> Option<usize> {
        loop {
            let len = *m.get(i)? as usize;
            if len == 0 {
                return Some(i + 1);
            }
            if len & 0xc0 == 0xc0 {
                return Some(i + 2);
            }
            i += len + 1;
        }
    };
    let mut i = skip_name(12)? + 4;
    for _ in 0..u16::from_be_bytes([m[6], m[7]]) {
        i = skip_name(i)?;
        let rtype = u16::from_be_bytes([*m.get(i)?, *m.get(i + 1)?]);
        let rdlen = u16::from_be_bytes([*m.get(i + 8)?, *m.get(i + 9)?]) as usize;
        let data = m.get(i + 10..i + 10 + rdlen)?;
        if rtype == 1 && rdlen == 4 {
            return Some(std::net::Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        i += 10 + rdlen;
    }
    None
}

/// The kubelet: a TCP connect to every target each `every`, for `limit`.
fn probe(limit: Duration, every: Duration, targets: &[&str]) -> Res {
    let targets: Vec<SocketAddr> = targets
        .iter()
        .map(|t| t.parse().map_err(|e| format!("{t}: {e}")))
        .collect::<Result<_, String>>()?;
    let started = Instant::now();
    let (mut probes, mut failed) = (0u64, 0u64);
    ready();
    while started.elapsed() < limit {
        let round = Instant::now();
        for t in &targets {
            match TcpStream::connect_timeout(t, Duration::from_secs(1)) {
                Ok(_) => probes += 1,
                Err(_) => failed += 1,
            }
        }
        std::thread::sleep(every.saturating_sub(round.elapsed()));
    }
    println!("{{\"probes\":{probes},\"failed\":{failed}}}");
    Ok(())
}

/// A service-mesh sidecar: its process is named `name` (how the inventory's `mesh:`
/// recognises it), and each `fwd:LADDR:LPORT:TADDR:TPORT` relays every connection to
/// its target, both ways, until `limit`.
fn sidecar(limit: Duration, name: &str, forwards: &[&str]) -> Res {
    let comm = std::ffi::CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    if unsafe { libc::prctl(libc::PR_SET_NAME, comm.as_ptr()) } != 0 {
        return Err(format!("prctl: {}", std::io::Error::last_os_error()));
    }
    let deadline = Instant::now() + limit;
    let mut threads = Vec::new();
    for f in forwards {
        let parts: Vec<&str> = f.splitn(5, ':').collect();
        let ["fwd", la, lp, ta, tp] = parts.as_slice() else {
            return Err(format!("{f}: give fwd:LADDR:LPORT:TADDR:TPORT"));
        };
        let (at, to) = (sock(la, lp), sock(ta, tp));
        let l = TcpListener::bind(at).map_err(|e| format!("bind {at}: {e}"))?;
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
        threads.push(std::thread::spawn(move || {
            while Instant::now() < deadline {
                match l.accept() {
                    Ok((client, _)) => {
                        std::thread::spawn(move || relay(client, to));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        }));
    }
    ready();
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

fn relay(client: TcpStream, to: SocketAddr) {
    let _ = client.set_nonblocking(false);
    let Ok(upstream) = TcpStream::connect_timeout(&to, IO_TIMEOUT) else {
        return;
    };
    for s in [&client, &upstream] {
        let _ = s.set_read_timeout(Some(IO_TIMEOUT));
    }
    let (Ok(mut c2), Ok(mut u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut u2);
        let _ = u2.shutdown(std::net::Shutdown::Write);
    });
    let (mut c, mut u) = (client, upstream);
    let _ = std::io::copy(&mut u, &mut c);
    let _ = c.shutdown(std::net::Shutdown::Both);
    let _ = up.join();
}
