//! Imports a connections table from an architecture document's text: the PDF-extracted
//! form (tab-separated, header repeated at page breaks, rows split across pages) and plain
//! tab- or pipe-separated tables. A row it cannot read is an error naming the row and the
//! line; nothing is dropped silently.

use std::collections::{BTreeMap, HashSet};

use crate::{
    model::{Allowlist, Classification, Connection, DocumentRef, Ports, Service, parse_port_spec},
    names,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error(
        "no connections table found: expected a header line with Source, Destination, \
         Protocol and Port columns, separated by tabs or |"
    )]
    NoTable,
    #[error("line {line}: {what}: {message}")]
    Row {
        line: u32,
        what: String,
        message: String,
    },
    #[error("the connections table has a header but no rows")]
    Empty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Col {
    Number,
    Source,
    Destination,
    Protocol,
    Port,
    Classification,
    Description,
}

#[derive(Debug)]
struct Header {
    sep: char,
    columns: Vec<Option<Col>>,
}

impl Header {
    fn has(&self, col: Col) -> bool {
        self.columns.contains(&Some(col))
    }
}

fn column_of(name: &str) -> Option<Col> {
    let n = names::clean(name).to_ascii_lowercase();
    let n = n.trim_matches(|c: char| c == '*' || c == ':');
    Some(match n {
        "connection" | "#" | "no" | "no." | "number" | "id" | "connection number" => Col::Number,
        "source" => Col::Source,
        "destination" | "target" => Col::Destination,
        _ if n.starts_with("protocol") => Col::Protocol,
        _ if n.starts_with("port") => Col::Port,
        _ if n.contains("classification") => Col::Classification,
        _ if n.starts_with("data") || n.starts_with("description") || n.starts_with("purpose") => {
            Col::Description
        }
        _ => return None,
    })
}

fn split(line: &str, sep: char) -> Vec<&str> {
    let line = line.trim_end_matches(['\r', '\n']);
    if sep == '|' {
        let t = line.trim();
        let t = t.strip_prefix('|').unwrap_or(t);
        let t = t.strip_suffix('|').unwrap_or(t);
        t.split('|').collect()
    } else {
        line.split(sep).collect()
    }
}

fn header(line: &str) -> Option<Header> {
    let sep = if line.contains('\t') {
        '\t'
    } else if line.contains('|') {
        '|'
    } else {
        return None;
    };
    let columns: Vec<Option<Col>> = split(line, sep).iter().map(|c| column_of(c)).collect();
    let h = Header { sep, columns };
    (h.has(Col::Source) && h.has(Col::Destination) && h.has(Col::Protocol) && h.has(Col::Port))
        .then_some(h)
}

/// A row being assembled from its line and any continuation lines.
#[derive(Debug)]
struct Pending {
    line: u32,
    number: Option<u32>,
    cells: BTreeMap<Col, String>,
}

/// Joins a cell's continuation: PDF extraction breaks cells at page ends. When it does so
/// inside parentheses it closes them early ("…in customer)" then "CME)"): a continuation
/// with an unmatched `)` means the previous part's final `)` was the extractor's.
fn append(cell: &mut String, more: &str) {
    if more.is_empty() {
        return;
    }
    let unmatched_close = more.matches(')').count() > more.matches('(').count();
    if unmatched_close && cell.ends_with(')') {
        cell.pop();
    }
    // A word broken at "/" or a hyphen ("Intra-" + "cluster") joins without a space.
    let broken_word = cell.ends_with('/') || (cell.ends_with('-') && !cell.ends_with(" -"));
    if !cell.is_empty() && !broken_word {
        cell.push(' ');
    }
    cell.push_str(more);
}

/// Parses the Port cell: lists ("5050, 8888"), alternatives ("9092/9093*"; the `*`
/// after a group marks every port in it configurable), ranges ("20000-45000"), "Any",
/// "N/A" and "Not known (…)".
pub fn parse_ports(text: &str) -> Result<Ports, String> {
    let t = names::clean(text);
    let lower = t.to_ascii_lowercase();
    if t.is_empty() {
        return Err("the port is empty".into());
    }
    if matches!(lower.as_str(), "n/a" | "na" | "none" | "-" | "—")
        || lower.starts_with("not known")
        || lower.starts_with("unknown")
    {
        return Ok(Ports::Unknown { reason: t });
    }
    if matches!(lower.as_str(), "any" | "all" | "any port" | "all ports") {
        return Ok(Ports::Any { reason: t });
    }
    let mut specs = Vec::new();
    for group in lower.replace(" and ", ",").replace(';', ",").split(',') {
        let group = group.trim();
        if group.is_empty() {
            continue;
        }
        let group_configurable = group.ends_with('*');
        for alt in group.trim_end_matches('*').split('/') {
            let mut spec = parse_port_spec(alt)?;
            spec.configurable |= group_configurable;
            specs.push(spec);
        }
    }
    if specs.is_empty() {
        return Err(format!("{t:?} names no port"));
    }
    Ok(Ports::Listed(specs))
}

/// The document's title: its first short line of text (PDF exports start with it,
/// after any boilerplate sentence).
fn title(text: &str) -> Option<String> {
    text.lines().map(names::clean).find(|l| {
        !l.is_empty()
            && l.len() <= 100
            && !l.contains('\t')
            && l.chars().any(char::is_alphabetic)
            && !l.ends_with('.')
    })
}

pub fn import(text: &str, source_name: Option<&str>) -> Result<Allowlist, ImportError> {
    let mut head: Option<Header> = None;
    let mut in_table = false;
    let mut rows: Vec<Pending> = Vec::new();

    for (i, raw) in text.lines().enumerate() {
        let line_no = i as u32 + 1;
        if let Some(h) = header(raw) {
            // A repeated header (page break) continues the same table.
            if head.is_none() {
                head = Some(h);
            }
            in_table = true;
            continue;
        }
        let Some(h) = head.as_ref().filter(|_| in_table) else {
            continue;
        };
        if raw.trim().is_empty() {
            continue;
        }
        let cells = split(raw, h.sep);
        if cells.len() < 2 {
            // Prose or a legend ("* Configurable ports"): the table has ended.
            in_table = false;
            continue;
        }
        if h.sep == '|'
            && cells
                .iter()
                .all(|c| c.trim().chars().all(|ch| matches!(ch, '-' | ':' | ' ')))
        {
            continue; // markdown separator row
        }
        let mut values: BTreeMap<Col, String> = BTreeMap::new();
        for (idx, col) in h.columns.iter().enumerate() {
            if let Some(col) = col {
                values.insert(*col, names::clean(cells.get(idx).copied().unwrap_or("")));
            }
        }
        let get = |c: Col| values.get(&c).map(String::as_str).unwrap_or("");
        let number_cell = get(Col::Number).to_string();
        let complete = [Col::Source, Col::Destination, Col::Protocol, Col::Port]
            .iter()
            .all(|c| !get(*c).is_empty());
        let starts_row = if h.has(Col::Number) {
            !number_cell.is_empty() || complete
        } else {
            !get(Col::Source).is_empty()
        };
        if starts_row {
            let number = if number_cell.is_empty() {
                None
            } else {
                Some(
                    number_cell
                        .trim_end_matches('.')
                        .parse::<u32>()
                        .map_err(|_| ImportError::Row {
                            line: line_no,
                            what: format!("row {number_cell:?}"),
                            message: "the connection number is not a whole number".into(),
                        })?,
                )
            };
            values.remove(&Col::Number);
            rows.push(Pending {
                line: line_no,
                number,
                cells: values,
            });
        } else {
            let Some(prev) = rows.last_mut() else {
                return Err(ImportError::Row {
                    line: line_no,
                    what: "a continuation line".into(),
                    message: "it continues no row (its connection number is empty and no row came before)".into(),
                });
            };
            for (col, v) in values {
                if col != Col::Number {
                    append(prev.cells.entry(col).or_default(), &v);
                }
            }
        }
    }
    let header = head.ok_or(ImportError::NoTable)?;
    if rows.is_empty() {
        return Err(ImportError::Empty);
    }

    let mut seen_numbers = HashSet::new();
    let mut connections = Vec::with_capacity(rows.len());
    for row in rows {
        connections.push(convert(&row, &header, &mut seen_numbers)?);
    }
    Ok(Allowlist {
        document: DocumentRef {
            title: title(text),
            source: source_name.map(str::to_string),
        },
        services: services_of(&connections),
        connections,
    })
}

fn convert(
    row: &Pending,
    header: &Header,
    seen: &mut HashSet<u32>,
) -> Result<Connection, ImportError> {
    let what = match row.number {
        Some(n) => format!("row {n}"),
        None => "an unnumbered row".into(),
    };
    let err = |message: String| ImportError::Row {
        line: row.line,
        what: what.clone(),
        message,
    };
    let get = |c: Col| row.cells.get(&c).map(String::as_str).unwrap_or("");
    if let Some(n) = row.number
        && !seen.insert(n)
    {
        return Err(err(format!("connection number {n} appears twice")));
    }
    let (source, documented_source) =
        endpoint(get(Col::Source)).ok_or_else(|| err("the source is empty".into()))?;
    let (destination, documented_destination) =
        endpoint(get(Col::Destination)).ok_or_else(|| err("the destination is empty".into()))?;
    let (protocol, transport) = names::protocol(get(Col::Protocol)).map_err(err)?;
    let ports =
        parse_ports(get(Col::Port)).map_err(|m| err(format!("port {:?}: {m}", get(Col::Port))))?;
    let classification = if header.has(Col::Classification) {
        let text = get(Col::Classification);
        Classification::parse_list(text).ok_or_else(|| {
            err(format!("classification {text:?} is not Intra-cluster, Egress, Ingress or a combination like Ingress/Egress"))
        })?
    } else {
        Vec::new()
    };
    Ok(Connection {
        number: row.number,
        source,
        destination,
        protocol,
        transport,
        ports,
        classification,
        description: get(Col::Description).to_string(),
        documented_source,
        documented_destination,
        line: Some(row.line),
    })
}

/// The normalised name, and the name as written when it differs ("Redis 6.x").
fn endpoint(text: &str) -> Option<(String, Option<String>)> {
    let name = names::clean(text);
    if name.is_empty() {
        return None;
    }
    Some(match names::strip_version(&name) {
        Some(base) => (base.to_string(), Some(name)),
        None => (name, None),
    })
}

/// Every service the connections name, in order of first appearance, with aliases.
pub fn services_of(connections: &[Connection]) -> Vec<Service> {
    let mut services: Vec<Service> = Vec::new();
    let mut note = |name: &str, written: Option<&String>| {
        let idx = match services.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                services.push(Service {
                    name: name.to_string(),
                    kind: names::kind_of(name),
                    aliases: Vec::new(),
                });
                services.len() - 1
            }
        };
        if let Some(w) = written
            && !services[idx].aliases.contains(w)
        {
            services[idx].aliases.push(w.clone());
        }
    };
    for c in connections {
        note(&c.source, c.documented_source.as_ref());
        note(&c.destination, c.documented_destination.as_ref());
    }
    services
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PortSpec, Transport};

    const HEADER: &str = "Connection\tSource\tDestination\tProtocol\tPort\tClassification\tData that travels on this connection";

    fn one(rows: &str) -> Result<Allowlist, ImportError> {
        import(&format!("Title\n\n{HEADER}\n{rows}\n"), None)
    }

    #[test]
    fn port_lists_alternatives_configurable_and_ranges() {
        assert_eq!(
            parse_ports("5050, 8888").unwrap(),
            Ports::Listed(vec![
                PortSpec::single(5050, false),
                PortSpec::single(8888, false)
            ])
        );
        assert_eq!(
            parse_ports("9092/9093*").unwrap(),
            Ports::Listed(vec![
                PortSpec::single(9092, true),
                PortSpec::single(9093, true)
            ])
        );
        assert_eq!(
            parse_ports("6379*").unwrap(),
            Ports::Listed(vec![PortSpec::single(6379, true)])
        );
        assert_eq!(
            parse_ports("20000-45000").unwrap(),
            Ports::Listed(vec![PortSpec {
                first: 20000,
                last: 45000,
                configurable: false
            }])
        );
        assert_eq!(
            parse_ports("N/A").unwrap(),
            Ports::Unknown {
                reason: "N/A".into()
            }
        );
        assert!(matches!(
            parse_ports("Not known (configured as trunk DN level in customer CME)").unwrap(),
            Ports::Unknown { .. }
        ));
        assert!(matches!(parse_ports("Any").unwrap(), Ports::Any { .. }));
        assert!(parse_ports("70000").unwrap_err().contains("out of range"));
        assert!(
            parse_ports("45000-20000")
                .unwrap_err()
                .contains("backwards")
        );
        assert!(parse_ports("soon").is_err());
        assert!(parse_ports("").is_err());
    }

    #[test]
    fn a_row_split_across_a_page_break_is_joined() {
        let a = one(&format!("8\tGenesys Engagement\tTenant Service\tHTTP\t5080\tIntra-cluster\tRouting requests/\n\n{HEADER}\n \tService\t\t\t\t\tevents.\n9\tA\tB\tTCP\t1\tEgress\tx")).unwrap();
        let c = &a.connections[0];
        assert_eq!(
            (c.source.as_str(), c.description.as_str()),
            ("Genesys Engagement Service", "Routing requests/events.")
        );
        assert_eq!(a.connections.len(), 2);
    }

    #[test]
    fn a_parenthesis_closed_early_at_a_page_break_is_repaired() {
        let a = one(&format!("59\tA\tB\tSIP/TCP\tNot known (configured in customer)\tIntra-cluster\tx\n\n{HEADER}\n\t\t\t\tCME)\t\t")).unwrap();
        assert_eq!(
            a.connections[0].ports,
            Ports::Unknown {
                reason: "Not known (configured in customer CME)".into()
            }
        );
        let mut cell = "f(x)".to_string();
        append(&mut cell, "and y");
        assert_eq!(cell, "f(x) and y");
    }

    #[test]
    fn versioned_names_become_aliases() {
        let a = one("14\tRedis 6.x\tTenant Service\tRedis\t6379*\tEgress\tx\n9\tTenant Service\tRedis\tRedis\t6379*\tEgress\ty").unwrap();
        assert_eq!(a.connections[0].source, "Redis");
        assert_eq!(
            a.connections[0].documented_source.as_deref(),
            Some("Redis 6.x")
        );
        let redis = a.service("Redis").unwrap();
        assert_eq!(redis.aliases, vec!["Redis 6.x".to_string()]);
        assert_eq!(a.services.len(), 2);
    }

    #[test]
    fn lower_case_protocols_compound_classifications_and_pipe_tables() {
        let doc = "| Source | Destination | Protocol | Port | Classification | Description |\n|---|---|---|---|---|---|\n| Media | SBC | rtp | 20000-45000 | Ingress/Egress | media |\n| Media | Config | http | 8080 | intra-cluster | cfg |\n";
        let a = import(doc, None).unwrap();
        assert_eq!(a.connections.len(), 2);
        let c = &a.connections[0];
        assert_eq!(
            (c.number, c.protocol.as_str(), c.transport),
            (None, "RTP", Transport::Udp)
        );
        assert_eq!(
            c.classification,
            vec![Classification::Ingress, Classification::Egress]
        );
        assert_eq!(a.connections[1].protocol, "HTTP");
    }

    #[test]
    fn unnumbered_rows_in_a_numbered_table_are_kept() {
        let a = one("1\tA\tB\tTCP\t1\tEgress\tx\n\tC\tD\tTCP\t2\tEgress\ty").unwrap();
        assert_eq!(a.connections[1].number, None);
        assert_eq!(a.connections[1].source, "C");
    }

    #[test]
    fn unreadable_rows_are_errors_with_row_and_line() {
        let e = one("1\tA\tB\tTCP\tsoon\tEgress\tx").unwrap_err();
        assert!(
            matches!(&e, ImportError::Row { line: 4, what, .. } if what == "row 1"),
            "{e}"
        );
        let e = one("1\tA\tB\tCarrier pigeon\t1\tEgress\tx").unwrap_err();
        assert!(e.to_string().contains("unknown protocol"), "{e}");
        let e = one("1\tA\tB\tTCP\t1\tSideways\tx").unwrap_err();
        assert!(e.to_string().contains("classification"), "{e}");
        let e = one("1\tA\tB\tTCP\t1\tEgress\tx\n1\tA\tC\tTCP\t1\tEgress\tx").unwrap_err();
        assert!(e.to_string().contains("appears twice"), "{e}");
        let e = one("x1\tA\tB\tTCP\t1\tEgress\tx").unwrap_err();
        assert!(e.to_string().contains("not a whole number"), "{e}");
        let e = one(" \tService\t\t\t\t\tevents.").unwrap_err();
        assert!(e.to_string().contains("continues no row"), "{e}");
        assert_eq!(
            import("no table here", None).unwrap_err(),
            ImportError::NoTable
        );
        assert_eq!(
            import(&format!("{HEADER}\n"), None).unwrap_err(),
            ImportError::Empty
        );
    }

    #[test]
    fn a_legend_after_the_table_ends_it() {
        let a = one("1\tA\tB\tTCP\t1\tEgress\tx\n* Configurable ports").unwrap();
        assert_eq!(a.connections.len(), 1);
    }
}
