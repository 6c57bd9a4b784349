//! Normalising a row: its number, names (versions and parenthesised aliases become aliases
//! of one service), protocol and transport, ports and classification.

use std::collections::{HashMap, HashSet};

use super::{Col, Header, Problem, account::Pending};
use crate::{
    model::{Classification, Connection, Ports, Service, parse_port_spec},
    names,
};

/// `1,024` and `65,535`: digits grouped by thousands, read as one number when the result
/// is a port. `80,443` (80443 is no port) stays a list.
fn join_thousands(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let starts_number =
            b[i].is_ascii_digit() && (i == 0 || !(b[i - 1].is_ascii_digit() || b[i - 1] == b','));
        if !starts_number {
            let ch = text[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        let lead = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let mut end = i + lead;
        let mut groups = 0;
        while b.get(end) == Some(&b',')
            && end + 4 <= b.len()
            && b[end + 1..end + 4].iter().all(u8::is_ascii_digit)
            && b.get(end + 4).is_none_or(|c| !c.is_ascii_digit())
        {
            end += 4;
            groups += 1;
        }
        let digits: String = text[i..end].chars().filter(char::is_ascii_digit).collect();
        if lead <= 3 && groups > 0 && digits.parse::<u32>().is_ok_and(|n| n <= 65535) {
            out.push_str(&digits);
        } else {
            out.push_str(&text[i..end]);
        }
        i = end;
    }
    out
}

/// Parses the Port cell: lists ("5050, 8888", "8080 / 8443"), alternatives ("9092/9093*";
/// the `*` after a group marks every port in it configurable), ranges ("20000-45000"),
/// thousands separators ("8,443", "1,024-65,535"), "(configurable)", "Any", "N/A" and
/// "Not known (…)".
pub fn parse_ports(text: &str) -> Result<Ports, String> {
    let t = names::clean(text);
    let lower = t.to_lowercase();
    if t.is_empty() {
        return Err("the port is empty".into());
    }
    if matches!(lower.as_str(), "n/a" | "na" | "none" | "-" | "—" | "–")
        || lower.starts_with("not known")
        || lower.starts_with("unknown")
    {
        return Ok(Ports::Unknown { reason: t });
    }
    if matches!(lower.as_str(), "any" | "all" | "any port" | "all ports") {
        return Ok(Ports::Any { reason: t });
    }
    let configurable_word = lower.contains("configurable");
    let body = lower
        .replace("(configurable)", "")
        .replace("configurable", "")
        .replace("(default)", "")
        .replace("default", "");
    let mut specs = Vec::new();
    // Spaces around `/`, `-` and before `*` belong to the item ("8080 / 8443", "6379 *");
    // other spaces separate items, as commas do ("8080 8443" from an HTML list).
    let mut items = join_thousands(&body)
        .replace(" and ", ",")
        .replace(" or ", ",")
        .replace(';', ",");
    for joiner in ["/", "-", "–", "*"] {
        while items.contains(&format!(" {joiner}")) {
            items = items.replace(&format!(" {joiner}"), joiner);
        }
        if joiner != "*" {
            while items.contains(&format!("{joiner} ")) {
                items = items.replace(&format!("{joiner} "), joiner);
            }
        }
    }
    for group in items.split([',', ' ']) {
        let group = group.trim();
        if group.is_empty() {
            continue;
        }
        let group_configurable = group.ends_with('*');
        for alt in group.trim_end_matches('*').split('/') {
            let mut spec = parse_port_spec(alt)?;
            spec.configurable |= group_configurable || configurable_word;
            specs.push(spec);
        }
    }
    if specs.is_empty() {
        return Err(format!("{t:?} names no port"));
    }
    Ok(Ports::Listed(specs))
}

pub(super) fn convert(
    row: &Pending,
    header: &Header,
    seen: &mut HashSet<u32>,
    warnings: &mut Vec<Problem>,
) -> Result<Connection, Problem> {
    let what = match (row.number, row.number_text.is_empty()) {
        (Some(n), _) => format!("row {n}"),
        (None, true) => {
            let first = row
                .cells
                .values()
                .find(|c| !c.is_empty())
                .map_or("", String::as_str);
            let shown: String = first.chars().take(60).collect();
            format!("an unnumbered row ({shown:?})")
        }
        (None, false) => format!("row {:?}", row.number_text),
    };
    let err = |message: String| Problem {
        line: row.line,
        message: format!("{what}: {message}"),
    };
    let get = |c: Col| row.cells.get(&c).map(String::as_str).unwrap_or("");
    if row.number.is_none() && !row.number_text.is_empty() {
        return Err(err("the connection number is not a whole number".into()));
    }
    if let Some(n) = row.number
        && !seen.insert(n)
    {
        return Err(err(format!("connection number {n} appears twice")));
    }
    let missing: Vec<&str> = [Col::Source, Col::Destination, Col::Port]
        .into_iter()
        .filter(|c| get(*c).is_empty())
        .map(Col::name)
        .collect();
    if !missing.is_empty() {
        return Err(err(format!(
            "the {} cell{} empty (columns: {})",
            missing.join(", "),
            if missing.len() > 1 { "s are" } else { " is" },
            header.describe(", ")
        )));
    }
    let source = get(Col::Source).to_string();
    let destination = get(Col::Destination).to_string();
    let transport_cell = get(Col::Transport);
    let protocol_text = match get(Col::Protocol) {
        "" => transport_cell,
        p => p,
    };
    let read = names::protocol(protocol_text).map_err(err)?;
    let column = if transport_cell.is_empty() {
        None
    } else {
        Some(names::transport_column(transport_cell).map_err(err)?)
    };
    let transport = match column {
        Some(t) if read.names_transport && t != read.transport => {
            return Err(err(format!(
                "the Transport column says {t} but protocol {} runs over {}",
                read.name, read.transport
            )));
        }
        Some(t) => t,
        None => {
            if let Some(w) = &read.warning {
                warnings.push(err(w.clone()));
            }
            read.transport
        }
    };
    let description = get(Col::Description).to_string();
    let mut ports =
        parse_ports(get(Col::Port)).map_err(|m| err(format!("port {:?}: {m}", get(Col::Port))))?;
    if description.to_lowercase().contains("configurable")
        && let Ports::Listed(list) = &mut ports
    {
        for p in list.iter_mut() {
            p.configurable = true;
        }
    }
    // The classification is descriptive (reports show it; no verdict depends on it), and
    // documents word it their own way: a value we do not know is a warning, not a lost row.
    let classification = if header.has(Col::Classification) {
        let text = get(Col::Classification);
        match Classification::parse_list(text) {
            Some(list) => list,
            None => {
                warnings.push(err(format!(
                    "classification {text:?} is not Intra-cluster, Egress, Ingress or a \
                     combination like Ingress/Egress; the row is kept without one"
                )));
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    Ok(Connection {
        number: row.number,
        source,
        destination,
        protocol: read.name,
        transport,
        ports,
        classification,
        description,
        documented_source: None,
        documented_destination: None,
        line: Some(row.line),
    })
}

/// A name as written, split into its base name and the aliases it carries: a version
/// ("Redis 6.x": the written form is the alias) and a parenthesised alias ("Tenant Service
/// (Voice Config Service)").
pub(super) fn endpoint_names(written: &str) -> (String, Vec<String>) {
    let (base, paren) = match names::split_alias(written) {
        Some((b, a)) => (b.to_string(), Some(a.to_string())),
        None => (written.to_string(), None),
    };
    let mut aliases = Vec::new();
    let base = match names::strip_version(&base) {
        Some(stripped) => {
            aliases.push(base.clone());
            stripped.to_string()
        }
        None => base,
    };
    aliases.extend(paren);
    (base, aliases)
}

/// Resolves every endpoint to one service name: aliases (versions, parenthesised names)
/// become aliases of the service, and a row that uses an alias alone points at the
/// service, with the name as written kept.
pub(super) fn name_services(mut connections: Vec<Connection>) -> (Vec<Connection>, Vec<Service>) {
    let mut canonical: HashMap<String, String> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut aliases: HashMap<String, Vec<String>> = HashMap::new();
    let mut resolve = |written: &str| -> String {
        let (base, alias_list) = endpoint_names(written);
        let name = canonical
            .get(&base)
            .or_else(|| alias_list.iter().find_map(|a| canonical.get(a)))
            .cloned()
            .unwrap_or_else(|| base.clone());
        if !order.contains(&name) {
            order.push(name.clone());
        }
        for n in std::iter::once(&base).chain(alias_list.iter()) {
            if !canonical.contains_key(n) {
                canonical.insert(n.clone(), name.clone());
                if *n != name {
                    aliases.entry(name.clone()).or_default().push(n.clone());
                }
            }
        }
        name
    };
    for c in &mut connections {
        for (field, written) in [
            (&mut c.source, &mut c.documented_source),
            (&mut c.destination, &mut c.documented_destination),
        ] {
            let name = resolve(field);
            if name != *field {
                *written = Some(std::mem::replace(field, name));
            }
        }
    }
    let services = order
        .into_iter()
        .map(|name| Service {
            kind: names::kind_of(&name),
            aliases: aliases.remove(&name).unwrap_or_default(),
            name,
        })
        .collect();
    (connections, services)
}
