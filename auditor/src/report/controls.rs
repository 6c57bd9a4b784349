//! The Controls section: the report's evidence mapped to the controls auditors test. The
//! mapping is data (`auditor/controls/pci-dss-v4-soc2.yaml`, built in, and any `auditor
//! report --controls FILE`): each control names the checks it rests on, and a check is one
//! question this module answers from the finished report, with the lines behind the
//! answer and what is missing. A control's status is the worst of its checks'.

use allowlist::FileError;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{
    ControlResult, Controls, Report,
    exceptions::exception_text,
    findings::explained_text,
    header::coverage_text,
    model::{MappingUsed, ObservedEdge},
    prometheus::NO_DIRECTION,
};
use crate::{edge::Direction, model::time::duration_text};

/// The built-in mapping's path in the repository, and its text.
pub const BUILTIN_PATH: &str = "auditor/controls/pci-dss-v4-soc2.yaml";
const BUILTIN: &str = include_str!("../../controls/pci-dss-v4-soc2.yaml");

/// One question the report can answer for a control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    RowsIdentified,
    NoViolations,
    NoInboundViolations,
    NoOutboundViolations,
    PeriodCovered,
    LiveCapture,
}

impl Check {
    pub const ALL: [Check; 6] = [
        Check::RowsIdentified,
        Check::NoViolations,
        Check::NoInboundViolations,
        Check::NoOutboundViolations,
        Check::PeriodCovered,
        Check::LiveCapture,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Check::RowsIdentified => "rows_identified",
            Check::NoViolations => "no_violations",
            Check::NoInboundViolations => "no_inbound_violations",
            Check::NoOutboundViolations => "no_outbound_violations",
            Check::PeriodCovered => "period_covered",
            Check::LiveCapture => "live_capture",
        }
    }
}

/// A control's status, ordered so the worse is the greater.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Status {
    Met,
    NotEvidenced,
    NotMet,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::NotEvidenced => "not_evidenced",
            Status::NotMet => "not_met",
        }
    }
}

/// A mapping file, raw: what it may contain.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "auditor controls mapping")]
pub struct RawMapping {
    /// Frameworks, each with the controls the report evidences.
    frameworks: Vec<RawFramework>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawFramework {
    /// Its name as reports print it ("PCI DSS v4.0").
    #[schemars(with = "String")]
    framework: Spanned<String>,
    controls: Vec<RawControl>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawControl {
    /// The control's id in its framework ("1.2.5", "CC6.6").
    #[schemars(with = "String")]
    id: Spanned<String>,
    /// What it requires, in words an auditor recognises.
    #[schemars(with = "String")]
    requirement: Spanned<String>,
    /// The checks it rests on (at least one): rows_identified, no_violations,
    /// no_inbound_violations, no_outbound_violations, period_covered, live_capture.
    #[schemars(with = "Vec<String>")]
    checks: Spanned<Vec<Spanned<String>>>,
}

/// A control of a mapping, validated.
#[derive(Debug, Clone)]
pub struct Control {
    pub framework: String,
    pub id: String,
    pub requirement: String,
    pub checks: Vec<Check>,
    /// The mapping file it came from.
    pub mapping: String,
}

/// The controls to evaluate, and the files they came from.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub controls: Vec<Control>,
    pub files: Vec<MappingUsed>,
}

impl Mapping {
    /// The built-in mapping.
    pub fn builtin() -> Mapping {
        let mut m = Mapping {
            controls: Vec::new(),
            files: Vec::new(),
        };
        m.add(BUILTIN, &format!("built-in {BUILTIN_PATH}"))
            .expect("the built-in controls mapping reads (a test checks it)");
        m
    }

    /// The built-in mapping (unless `builtin` is false) and these files: a control of the
    /// same framework and id (case aside) as one before replaces it; others are added.
    pub fn load(paths: &[std::path::PathBuf], builtin: bool) -> anyhow::Result<Mapping> {
        let mut m = if builtin {
            Mapping::builtin()
        } else {
            Mapping {
                controls: Vec::new(),
                files: Vec::new(),
            }
        };
        for p in paths {
            let (text, origin) = allowlist::file::read_source(p)?;
            m.add(&text, &origin)?;
        }
        Ok(m)
    }

    fn add(&mut self, text: &str, origin: &str) -> Result<(), FileError> {
        let raw: RawMapping =
            serde_saphyr::from_str(text).map_err(|e| FileError::from_saphyr(origin, text, &e))?;
        let given = |s: &Spanned<String>, what: &str| -> Result<String, FileError> {
            let t = s.value.split_whitespace().collect::<Vec<_>>().join(" ");
            if t.is_empty() {
                return Err(FileError::at(origin, s, format!("{what} is empty")));
            }
            Ok(t)
        };
        let same = |a: &Control, framework: &str, id: &str| {
            a.framework.eq_ignore_ascii_case(framework) && a.id.eq_ignore_ascii_case(id)
        };
        let mut added: Vec<Control> = Vec::new();
        for f in raw.frameworks {
            let framework = given(&f.framework, "framework")?;
            for c in f.controls {
                let id = given(&c.id, "id")?;
                if added.iter().any(|x| same(x, &framework, &id)) {
                    return Err(FileError::at(
                        origin,
                        &c.id,
                        format!("control {framework} {id} is given twice in this file"),
                    ));
                }
                if c.checks.value.is_empty() {
                    return Err(FileError::at(
                        origin,
                        &c.checks,
                        format!(
                            "control {framework} {id} names no check; give at least one of {}",
                            Check::ALL.map(Check::as_str).join(", ")
                        ),
                    ));
                }
                let checks = c
                    .checks
                    .value
                    .iter()
                    .map(|name| {
                        Check::ALL
                            .into_iter()
                            .find(|k| k.as_str() == name.value)
                            .ok_or_else(|| {
                                FileError::at(
                                    origin,
                                    name,
                                    format!(
                                        "{:?} is not a check; the checks are {}",
                                        name.value,
                                        Check::ALL.map(Check::as_str).join(", ")
                                    ),
                                )
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                added.push(Control {
                    requirement: given(&c.requirement, "requirement")?,
                    framework: framework.clone(),
                    id,
                    checks,
                    mapping: origin.to_string(),
                });
            }
        }
        for control in added {
            match self
                .controls
                .iter_mut()
                .find(|x| same(x, &control.framework, &control.id))
            {
                Some(x) => *x = control,
                None => self.controls.push(control),
            }
        }
        self.files.push(MappingUsed {
            file: origin.to_string(),
            sha256: crate::provenance::sha256_hex(text.as_bytes()),
        });
        Ok(())
    }
}

/// The JSON Schema of a mapping file (`auditor schema controls`).
pub fn schema_json() -> String {
    let mut schema = schemars::schema_for!(RawMapping);
    schema.insert(
        "$comment".into(),
        "Generated from auditor/src/report/controls.rs by `auditor schema controls` (`cargo xtask render`); do not edit."
            .into(),
    );
    let mut s = serde_json::to_string_pretty(&schema).expect("schema serialises");
    s.push('\n');
    s
}

/// Sets the report's `controls`: each control of `mapping` judged on the report.
pub fn attach_controls(r: &mut Report, mapping: &Mapping) {
    let results = mapping
        .controls
        .iter()
        .map(|c| {
            let outcomes: Vec<Outcome> = c.checks.iter().map(|k| check(r, *k)).collect();
            let status = outcomes
                .iter()
                .map(|o| o.status)
                .max()
                .unwrap_or(Status::NotEvidenced);
            let mut evidence: Vec<String> = Vec::new();
            let mut missing: Vec<String> = Vec::new();
            // Two checks may say the same thing (the coverage): once.
            for o in outcomes {
                for line in o.evidence {
                    if !evidence.contains(&line) {
                        evidence.push(line);
                    }
                }
                for line in o.missing {
                    if !missing.contains(&line) {
                        missing.push(line);
                    }
                }
            }
            ControlResult {
                mapping: c.mapping.clone(),
                framework: c.framework.clone(),
                control: c.id.clone(),
                requirement: c.requirement.clone(),
                status: status.as_str().into(),
                checks: c.checks.iter().map(|k| k.as_str().to_string()).collect(),
                evidence,
                missing,
            }
        })
        .collect();
    r.controls = Some(Controls {
        mappings: mapping.files.clone(),
        results,
    });
}

struct Outcome {
    status: Status,
    evidence: Vec<String>,
    missing: Vec<String>,
}

impl Outcome {
    fn new(status: Status, evidence: Vec<String>, missing: Vec<String>) -> Outcome {
        Outcome {
            status,
            evidence,
            missing,
        }
    }
}

fn check(r: &Report, k: Check) -> Outcome {
    match k {
        Check::RowsIdentified => rows_identified(r),
        Check::NoViolations => no_violations(r, None),
        Check::NoInboundViolations => no_violations(r, Some(Direction::Ingress)),
        Check::NoOutboundViolations => no_violations(r, Some(Direction::Egress)),
        Check::PeriodCovered => period_covered(r),
        Check::LiveCapture => live_capture(r),
    }
}

/// "rows 3, 7" or "row 3".
fn rows_text(rules: &[String]) -> String {
    match rules {
        [one] => format!("row {one}"),
        _ => format!("rows {}", rules.join(", ")),
    }
}

fn rows_identified(r: &Report) -> Outcome {
    if r.rows.is_empty() {
        return Outcome::new(
            Status::NotEvidenced,
            Vec::new(),
            vec!["the allowlist documents no connection".into()],
        );
    }
    let name = |x: &super::RowReport| {
        x.rule
            .map_or_else(|| format!("{} -> {}", x.src, x.dst), |n| n.to_string())
    };
    let document = match (&r.document.title, &r.document.origin) {
        (Some(t), Some(o)) => format!("{t} ({o})"),
        (Some(t), None) => t.clone(),
        (None, Some(o)) => o.clone(),
        (None, None) => "the allowlist".into(),
    };
    let mut evidence = vec![format!(
        "{} documented connections, each with its source, destination and protocol, from {document} (listed under Documented connections)",
        r.rows.len()
    )];
    let mut missing = Vec::new();
    let no_port: Vec<String> = r
        .rows
        .iter()
        .filter(|x| !x.port_verified)
        .map(name)
        .collect();
    let no_need: Vec<String> = r
        .rows
        .iter()
        .filter(|x| x.description.trim().is_empty())
        .map(name)
        .collect();
    let with_ports = r.rows.len() - no_port.len();
    let with_need = r.rows.len() - no_need.len();
    evidence.push(format!("{with_ports} of {} give their ports", r.rows.len()));
    evidence.push(format!(
        "{with_need} of {} state their business need (a description)",
        r.rows.len()
    ));
    if !no_port.is_empty() {
        missing.push(format!(
            "{}: no port is identified (the document gives none and no deployment override does)",
            rows_text(&no_port)
        ));
    }
    if !no_need.is_empty() {
        missing.push(format!(
            "{}: no business need stated (empty description)",
            rows_text(&no_need)
        ));
    }
    let mut noted = Vec::new();
    for f in &r.document_findings {
        match f.code.as_str() {
            // The port line above says it, overrides counted.
            "unknown-port" => {}
            // A connection listed wrongly, or not at all, or without its transport, is
            // not identified.
            "described-not-listed" | "reversed-datastore" | "unknown-transport" => {
                missing.push(format!("document finding {}: {}", f.code, f.message));
            }
            // Hygiene: every connection is still identified.
            _ => noted.push(f),
        }
    }
    let mut codes: Vec<&str> = noted.iter().map(|f| f.code.as_str()).collect();
    codes.sort_unstable();
    codes.dedup();
    for code in codes {
        let rows: Vec<String> = noted
            .iter()
            .filter(|f| f.code == code)
            .map(|f| {
                f.rows
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect();
        evidence.push(format!(
            "noted, not affecting identification: document finding {code} (rows {})",
            rows.join("; ")
        ));
    }
    let status = if missing.is_empty() {
        Status::Met
    } else {
        Status::NotMet
    };
    Outcome::new(status, evidence, missing)
}

/// One violation as a line of evidence.
fn violation_line(r: &Report, v: &ObservedEdge) -> String {
    let e = &v.edge;
    format!(
        "{} {} -> {} {}/{}: {} connection(s), last seen {}{}{}",
        e.verdict.as_str(),
        e.src.name(),
        e.dst.name_and_domain(),
        e.transport,
        e.dst.port.map_or("?".to_string(), |p| p.to_string()),
        e.count,
        crate::model::time::rfc3339_seconds(e.last_seen),
        explained_text(v),
        exception_text(r, v)
    )
}

/// At most this many edges are listed per control; the Violations section has them all.
const LISTED: usize = 10;

fn no_violations(r: &Report, direction: Option<Direction>) -> Outcome {
    // A report without directions (from Prometheus) counts every violation both ways.
    let unknown = r.limits.iter().any(|l| l == NO_DIRECTION);
    let scope = match direction {
        None => "",
        Some(Direction::Ingress) => " inbound (into a service of the system)",
        Some(Direction::Egress) => " outbound (out of a service of the system)",
    };
    let found: Vec<&ObservedEdge> = r
        .violations
        .iter()
        .filter(|v| unknown || direction.is_none_or(|d| crosses(v, d)))
        .collect();
    let mut evidence = vec![format!("traffic examined: {}", coverage_text(r))];
    let mut missing = Vec::new();
    if unknown && direction.is_some() {
        evidence.push(
            "the report's source (Prometheus) does not know directions: every violation counts as inbound and outbound".into(),
        );
    }
    if !found.is_empty() {
        let connections: u64 = found.iter().map(|v| v.edge.count).sum();
        missing.push(format!(
            "{} violation edge(s){scope}, {connections} connection(s), in the period",
            found.len()
        ));
        missing.extend(found.iter().take(LISTED).map(|v| violation_line(r, v)));
        if found.len() > LISTED {
            missing.push(format!(
                "and {} more (the Violations section lists them all)",
                found.len() - LISTED
            ));
        }
        return Outcome::new(Status::NotMet, evidence, missing);
    }
    if r.summary.watched_seconds <= 0.0 && r.coverage.fraction.is_some() {
        missing.push("nothing was watched in the period: no traffic was examined".into());
        return Outcome::new(Status::NotEvidenced, evidence, missing);
    }
    evidence.push(format!("no{scope} violation in the period"));
    let accepted = r
        .accepted
        .iter()
        .filter(|v| unknown || direction.is_none_or(|d| crosses(v, d)))
        .count();
    if accepted > 0 {
        evidence.push(format!(
            "{accepted} edge(s) accepted as exceptions, each with its owner and expiry (Accepted exceptions)"
        ));
    }
    Outcome::new(Status::Met, evidence, missing)
}

/// Whether a violation goes into the system (`Ingress`: its destination is a known
/// service, or a local process accepted it) or out of it (`Egress`: its source is a known
/// service, or a local process made it). One between two services goes both ways. The
/// ends, not the recorded direction alone: an edge keeps the direction of its first
/// sighting, and the client's node and the server's see one connection both ways.
fn crosses(v: &ObservedEdge, d: Direction) -> bool {
    let e = &v.edge;
    let known = match d {
        Direction::Ingress => e.dst.service.is_some(),
        Direction::Egress => e.src.service.is_some(),
    };
    known || e.direction == d
}

fn period_covered(r: &Report) -> Outcome {
    let nodes = r.nodes.len();
    let mut evidence = vec![format!(
        "period {} to {}, {} node(s); {}",
        r.period.since,
        r.period.until,
        nodes,
        coverage_text(r)
    )];
    let mut missing = Vec::new();
    let Some(fraction) = r.coverage.fraction else {
        missing.push(
            "how much of the period was audited is unknown (records replayed without capture intervals)".into(),
        );
        return Outcome::new(Status::NotEvidenced, evidence, missing);
    };
    if !r.coverage.expected_nodes.is_empty() {
        evidence.push(format!(
            "{} of {} expected node(s) reported",
            r.coverage.expected_nodes.len() - r.coverage.missing_nodes.len(),
            r.coverage.expected_nodes.len()
        ));
    }
    if nodes == 0 && r.coverage.missing_nodes.is_empty() {
        missing.push("no node reported in the period".into());
    }
    if !r.coverage.missing_nodes.is_empty() {
        missing.push(format!(
            "expected node(s) that never reported: {}",
            r.coverage.missing_nodes.join(", ")
        ));
    }
    let gaps: Vec<&super::Gap> = r
        .coverage
        .gaps
        .iter()
        .filter(|g| g.reason != "never_reported")
        .collect();
    if !gaps.is_empty() {
        missing.push(format!(
            "{} gap(s) in the coverage timeline, {} of the period not fully audited",
            gaps.len(),
            duration_text(unaudited_seconds(r, fraction))
        ));
        missing.extend(gaps.iter().take(LISTED).map(|g| {
            format!(
                "{}: {} to {} ({})",
                g.node,
                g.start,
                g.end,
                super::gap_reason_text(&g.reason)
            )
        }));
        if gaps.len() > LISTED {
            missing.push(format!(
                "and {} more (the Coverage section lists them all)",
                gaps.len() - LISTED
            ));
        }
    } else if fraction < 1.0 && missing.is_empty() {
        missing.push(format!(
            "{:.1}% of the period fully audited, not all of it",
            fraction * 100.0
        ));
    }
    let status = if missing.is_empty() {
        Status::Met
    } else {
        Status::NotEvidenced
    };
    Outcome::new(status, evidence, missing)
}

/// Node-seconds of the period not fully audited.
fn unaudited_seconds(r: &Report, fraction: f64) -> f64 {
    let (Some(s), Some(u)) = (
        super::model::parse_time(&r.period.since),
        super::model::parse_time(&r.period.until),
    ) else {
        return 0.0;
    };
    let nodes = (r.nodes.len() + r.coverage.missing_nodes.len()) as f64;
    ((u - s).max(0) as f64 / 1000.0 * nodes * (1.0 - fraction)).max(0.0)
}

fn live_capture(r: &Report) -> Outcome {
    match &r.capture {
        Some(c) if !c.not_live() => Outcome::new(
            Status::Met,
            vec![format!("observed by {}", c.statement)],
            Vec::new(),
        ),
        Some(c) => Outcome::new(
            Status::NotEvidenced,
            Vec::new(),
            vec![format!(
                "observations are not all live capture: {}",
                c.statement
            )],
        ),
        None => Outcome::new(
            Status::NotEvidenced,
            Vec::new(),
            vec!["the report does not say where its observations came from".into()],
        ),
    }
}

/// The Controls section's lead, for every format.
pub(super) fn lead(r: &Report) -> String {
    match &r.controls {
        None => format!(
            "Not evaluated: a report of {} carries no controls.",
            r.schema
        ),
        Some(c) => format!(
            "Each control's status rests on this report's evidence alone: met, not met (the evidence shows it failed), or not evidenced (the evidence cannot show it; what is missing is listed). Mapping: {}.",
            c.mappings
                .iter()
                .map(|m| format!("{} (sha256 {})", m.file, m.sha256))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// "met", "NOT MET", "not evidenced": how every human format prints a status.
pub(super) fn status_text(status: &str) -> &'static str {
    match status {
        "met" => "met",
        "not_met" => "NOT MET",
        _ => "not evidenced",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_mapping_reads_and_has_the_controls_auditors_test() {
        let m = Mapping::builtin();
        let ids: Vec<&str> = m.controls.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "1.2.5", "1.2.5.b", "1.3.1", "1.3.2", "11.4.5", "11.4.6", "CC6.6"
            ]
        );
    }

    #[test]
    fn an_unknown_check_is_an_error_at_its_line() {
        let mut m = Mapping::builtin();
        let e = m
            .add(
                "frameworks:\n  - framework: Ours\n    controls:\n      - id: X-1\n        requirement: r\n        checks: [no_violations, no_violatons]\n",
                "ours.yaml",
            )
            .unwrap_err();
        assert_eq!((e.line, e.column), (6, 33), "{e}");
        assert!(e.message.contains("\"no_violatons\" is not a check"), "{e}");
        let e = m
            .add(
                "frameworks:\n  - framework: Ours\n    controls:\n      - id: X-1\n        requirement: r\n        checks: []\n",
                "ours.yaml",
            )
            .unwrap_err();
        assert!(
            (e.line, e.message.contains("names no check")) == (6, true),
            "{e}"
        );
        // A file that gives one control twice is refused at the second.
        let twice = "frameworks:\n  - framework: Ours\n    controls:\n      - {id: X-1, requirement: r, checks: [no_violations]}\n      - {id: x-1, requirement: r, checks: [period_covered]}\n";
        let e = m.add(twice, "ours.yaml").unwrap_err();
        assert!(
            (e.line, e.message.contains("given twice")) == (5, true),
            "{e}"
        );
        // Another file's control of the same framework and id (case aside) replaces it.
        m.add("frameworks:\n  - framework: soc 2 (2017 tsc)\n    controls:\n      - {id: cc6.6, requirement: ours, checks: [live_capture]}\n", "ours.yaml").unwrap();
        let cc66: Vec<&Control> = m
            .controls
            .iter()
            .filter(|c| c.id.eq_ignore_ascii_case("cc6.6"))
            .collect();
        assert_eq!((cc66.len(), cc66[0].mapping.as_str()), (1, "ours.yaml"));
    }
}
