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
