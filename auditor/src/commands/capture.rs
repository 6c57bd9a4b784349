//! `auditor capture`: attach the probes and print every flow record as a JSON line on
//! stdout until stopped, then the kernel's summary on stderr.

use std::io::Write;

use anyhow::Context;

use crate::{
    capture::{self, Probes, stream::WatchSpan},
    cli::CaptureConfig,
    commands::watch::{DnsLine, Watch, WatchLine},
    edge::Drops,
    model::time::{rfc3339_millis, unix_ms},
};

/// Writes flow records and, between them, the spans they are complete for.
struct Lines<W: Write> {
    out: W,
    node: String,
    kernel: String,
    /// None with `--no-dns`.
    dns: Option<crate::dns::PacketReader>,
    /// DNS packets that gave no answer, by reason (printed with the summary).
    dns_unreadable: std::collections::BTreeMap<&'static str, u64>,
    dns_answers: u64,
}

impl<W: Write> Lines<W> {
    fn line<T: serde::Serialize>(&mut self, v: &T) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, v)?;
        self.out.write_all(b"\n")
    }
}

impl<W: Write> capture::stream::Handler for Lines<W> {
    fn flow(&mut self, rec: capture::FlowRecord, _lag: std::time::Duration) -> std::io::Result<()> {
        self.line(&rec)
    }

    fn dns(&mut self, packet: capture::record::DnsPacketRecord) -> std::io::Result<()> {
        let Some(reader) = self.dns.as_mut() else {
            return Ok(());
        };
        for read in reader.read(&packet) {
            match read {
                Ok(answer) => {
                    self.dns_answers += 1;
                    self.line(&DnsLine { dns: answer })?;
                }
                Err(e) => *self.dns_unreadable.entry(e.kind()).or_default() += 1,
            }
        }
        Ok(())
    }

    fn watch(&mut self, span: &WatchSpan) -> std::io::Result<()> {
        let line = WatchLine {
            watch: Watch {
                node: self.node.clone(),
                auditor_version: crate::provenance::AUDITOR_VERSION.into(),
                kernel: self.kernel.clone(),
                start: rfc3339_millis(unix_ms(span.start)),
                end: rfc3339_millis(unix_ms(span.end)),
                drops: Drops {
                    ringbuf_full: span.ringbuf_full,
                    connections_lost: span.connections_lost,
                    flow_insert_failed: span.flow_insert_failed,
                },
                dns: self.dns.is_some(),
                dns_lost: span.dns_lost,
            },
        };
        self.line(&line)?;
        self.out.flush()
    }
}

pub fn run(cfg: CaptureConfig) -> anyhow::Result<std::process::ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut probes = Probes::load_and_attach(&cfg.probes.options(std::process::id()))
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
        let mut handler = Lines {
            out: std::io::LineWriter::new(stdout.lock()),
            node: cfg.node.clone(),
            kernel: capture::kernel_release(),
            dns: cfg.probes.dns.then(crate::dns::PacketReader::default),
            dns_unreadable: Default::default(),
            dns_answers: 0,
        };
        let summary = capture::stream::run(&mut probes, &mut handler, shutdown).await;
        match summary {
            Ok(summary) => {
                let dns = serde_json::json!({
                    "answers": handler.dns_answers,
                    "unreadable": handler.dns_unreadable,
                });
                eprintln!("{}", serde_json::json!({ "summary": summary, "dns": dns }));
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
