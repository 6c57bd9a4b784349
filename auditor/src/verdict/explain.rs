//! `auditor explain`: for humans, how each end of one connection was resolved and why
//! each documented row between them did or did not match. It names things as every
//! other output does (`src`, `dst`, `verdict`, `rules`; see crate::edge).

use std::{fmt::Write, net::IpAddr};

use allowlist::{PortBasis, Transport};

use super::Judge;
use crate::capture::Direction;
use crate::model::FlowView;

/// One connection, judged and explained. `names` are the DNS names its source's pod had
/// for the destination (`--name`, or the answers of a recording), with the answers that
/// gave them when known.
pub fn explain(
    judge: &Judge,
    from: IpAddr,
    to: IpAddr,
    port: u16,
    transport: Transport,
    names: &crate::dns::FlowNames,
) -> String {
    let flow = FlowView {
        transport,
        direction: Direction::Egress,
        src_addr: Some(from),
        dst_addr: to,
        dst_port: port,
        comm: "",
        cgroup: None,
        netns_addrs: &[],
        dst_names: &names.names,
        resolution: names.resolution,
    };
    let j = judge.judge(&flow);
    let mut out = String::new();
    let _ = writeln!(out, "connection: {from} -> {to}:{port}/{transport}");
    match names.resolution {
        None => {}
        Some(crate::model::Resolution::Bare) => {
            let _ = writeln!(
                out,
                "names: none; the source's pod resolved {to} by no trusted answer (used bare)"
            );
        }
        Some(crate::model::Resolution::Dns) => {
            for h in &names.hits {
                let _ = writeln!(
                    out,
                    "name: {to} is {} for the source's pod: answered by {} at {}, valid until {}",
                    h.name,
                    h.resolver,
                    crate::model::time::rfc3339_millis(h.learned_ms),
                    crate::model::time::rfc3339_millis(h.expires_ms)
                );
            }
            if names.hits.is_empty() {
                for n in &names.names {
                    let _ = writeln!(out, "name: {to} is {n} for the source (given with --name)");
                }
            }
        }
    }
    if let Some(d) = &j.domain {
        let _ = writeln!(out, "dst judged by the name {d}");
    }
    let side = |name: &str, r: &Option<crate::identity::Resolved>, addr: IpAddr| match r {
        Some(r) => format!(
            "{name}: {addr} is {} (matched by {} in {})",
            r.service,
            r.via,
            judge.resolver.source_names().join(", ")
        ),
        None => format!(
            "{name}: {addr} matches no entry of {}",
            judge.resolver.source_names().join(", ")
        ),
    };
    let _ = writeln!(out, "{}", side("src", &j.src, from));
    let _ = writeln!(out, "{}", side("dst", &j.dst, to));
    if j.port != port {
        let _ = writeln!(
            out,
            "  (a mesh upstream: judged as the service's port {})",
            j.port
        );
    }
    let _ = writeln!(
        out,
        "verdict: {}{}",
        j.verdict.as_str(),
        match j.rules().as_slice() {
            [] => String::new(),
            r => format!(
                " (rules: {})",
                r.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            ),
        }
    );
    if let Some(entry) = j
        .platform
        .as_ref()
        .and_then(|n| judge.baseline.entries().iter().find(|e| &e.name == n))
    {
        let _ = writeln!(
            out,
            "platform baseline entry {:?} ({}) allows it: {}",
            entry.name,
            judge.baseline.origin(),
            entry.description
        );
    }

    let (Some(src), Some(dst)) = (&j.src, &j.dst) else {
        return out;
    };
    let (s, d) = (
        judge.index.service_id(&src.service),
        judge.index.service_id(&dst.service),
    );
    let (Some(s), Some(d)) = (s, d) else {
        let ends = [(&src.service, s), (&dst.service, d)];
        let missing: Vec<&str> = ends
            .iter()
            .filter(|(_, id)| id.is_none())
            .map(|(n, _)| n.as_ref())
            .collect();
        let _ = writeln!(
            out,
            "not in the documented allowlist: {}",
            missing.join(", ")
        );
        return out;
    };
    let rows = judge.index.edge(s, d);
    if rows.is_empty() {
        let _ = writeln!(
            out,
            "rows considered: none document {} -> {}",
            src.service, dst.service
        );
    } else {
        let _ = writeln!(out, "rows considered ({} -> {}):", src.service, dst.service);
    }
    for rule in rows {
        let c = &judge.allowlist.connections[rule.index];
        let ports = match rule.basis {
            PortBasis::Any => "any port".to_string(),
            PortBasis::Unverified => "no documented port".to_string(),
            _ => rule
                .ports
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        };
        let why = if rule.transport != transport {
            format!("no: documented over {}, not {transport}", rule.transport)
        } else if !rule.allows_port(j.port) {
            format!("no: port {} is not {ports}", j.port)
        } else if rule.basis == PortBasis::Unverified {
            "yes, unverified: the document gives no port and the overrides none".to_string()
        } else if !rule.transport_verified {
            "yes, unverified: the document's protocol does not tell TCP or UDP".to_string()
        } else {
            "yes".to_string()
        };
        let basis = if rule.basis == PortBasis::Override {
            " (ports from overrides)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {}: {} {}/{ports}{basis}: {why}",
            c.label(),
            c.protocol,
            rule.transport
        );
    }
    // Hints a reviewer wants: the reverse direction, and this port to other services.
    let reverse = judge.index.edge(d, s);
    if !reverse.is_empty() {
        let nums: Vec<String> = reverse
            .iter()
            .map(|r| judge.allowlist.connections[r.index].label())
            .collect();
        let _ = writeln!(
            out,
            "note: the reverse direction {} -> {} is documented ({})",
            dst.service,
            src.service,
            nums.join(", ")
        );
    }
    out
}
