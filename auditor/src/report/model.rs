//! The report's JSON model: the versioned layout `docs/report.schema.json` describes
//! (`Report` and its parts), and the parsing of the times it carries.

use std::{
    collections::BTreeMap,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::{
    edge::{Drops, Edge, Transport},
    model::{Millis, Verdict},
};

pub const SCHEMA: &str = "auditor-report/8";

/// The layout before a report carried accepted exceptions (`accepted`, `exceptions`,
/// a violation's `exception`, the summary's `accepted_*`) and the controls it evidences
/// (`controls`): still read, merged and verified (it reads with those absent, and
/// serialises the same).
pub const SCHEMA_7: &str = "auditor-report/7";

/// The layout before a report could name the report before it (`previous`) and carried
/// the document's findings: still read, merged and verified (it reads with those absent,
/// and serialises the same).
pub const SCHEMA_6: &str = "auditor-report/6";

/// The layout before coverage counted the connections the kernel lost
/// (`drops.connections_lost`) where it counted LRU evictions (`drops.lru_evictions`, read
/// as `connections_lost`): still read, merged and verified.
pub const SCHEMA_5: &str = "auditor-report/5";

/// The layout before a report listed the DNS names egress was reached by (`names`):
/// still read, merged and verified (it reads with `names` absent).
pub const SCHEMA_4: &str = "auditor-report/4";

/// The layout before rows said `port_verified`, the summary counted them, a report said
/// where its observations came from (`capture`) and whether its coverage is known: still
/// read, merged and verified (a row without `port_verified` reads as verified, as those
/// reports showed it).
pub const SCHEMA_3: &str = "auditor-report/3";

/// The layout before rows said `rule`/`src`/`dst` and the document `origin`: still read
/// (the old names are serde aliases) so older reports merge and verify.
pub const SCHEMA_2: &str = "auditor-report/2";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "auditor compliance report")]
pub struct Report {
    /// "auditor-report/8" for this layout. "auditor-report/7" is read too (the same without
    /// `accepted`, `exceptions`, `controls`, a violation's `exception` and the summary's
    /// `accepted_edges`/`accepted_connections`), "auditor-report/6" (the same without
    /// `previous`, `document_findings` and violations' `explained_by`), "auditor-report/5" (a /6 report with
    /// `drops.lru_evictions` for `drops.connections_lost`), "auditor-report/4" (a /5 report
    /// without `names`), and "auditor-report/3" (a /4 report without `port_verified`, `documented_observed_port_unverified`,
    /// `expected_nodes`, `missing_nodes`, `capture` and `coverage.known`), and
    /// "auditor-report/2" (a /3 report with a
    /// row's `rule`, `src`, `dst` named `number`, `source`, `destination` and the
    /// document's `origin` named `source`).
    pub schema: String,
    /// The auditor version that wrote this report.
    pub auditor_version: String,
    pub generated_at: String,
    /// Where the observations came from: live capture, a replayed recording, or both.
    /// Absent in reports before `auditor-report/4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<Capture>,
    pub period: Period,
    pub document: Document,
    pub nodes: Vec<String>,
    /// What the observations were judged against, one entry per policy (re)load in the
    /// period: file digests, the allowlist's content digest and the judging auditor's
    /// version.
    pub inputs: Vec<crate::provenance::Inputs>,
    /// Documented rows whose content changed between the allowlists judged against in the
    /// period ("row 1: A -> B tcp/443 vs C -> D tcp/80"): their counts mix two meanings.
    pub changed_rows: Vec<String>,
    pub summary: Summary,
    pub coverage: Coverage,
    /// Every documented connection, in table order.
    pub rows: Vec<RowReport>,
    /// Every edge that is not an allowed connection, most connections first; an accepted
    /// exception in force is not one (`accepted`), an expired one is (its `exception`
    /// names it).
    pub violations: Vec<ObservedEdge>,
    /// Violations an accepted exception (`auditor report --exceptions`) covered: each
    /// edge's `exception` names it. Not violations: `--fail-on violations` ignores them.
    /// Absent when none, and before `auditor-report/8`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted: Vec<ObservedEdge>,
    /// The accepted exceptions file the report was made with, every entry and how often
    /// it was used. Absent when none was given, and before `auditor-report/8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exceptions: Option<ExceptionsUsed>,
    /// The controls auditors test (PCI DSS, SOC 2, or a user's own mapping) with their
    /// status and the evidence behind it. Absent before `auditor-report/8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controls: Option<Controls>,
    /// What this report's source cannot know (a report computed from Prometheus has no
    /// example processes, for one; a store's report of a period that cuts its time
    /// buckets counts them whole). Absent when nothing is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<String>,
    /// Platform traffic the platform baseline allows, by entry (in the baseline's
    /// words: entry names, never row numbers). Neither violations nor observations of
    /// documented rows.
    #[serde(default)]
    pub platform: Vec<PlatformEntry>,
    /// The DNS names egress was reached by: per documented service, the names it was
    /// reached by; undocumented egress by name; egress by bare address. Absent in reports
    /// before `auditor-report/5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<Names>,
    /// What the allowlist's lint found in the document the rows come from (reversed rows,
    /// connections a row's text describes that no row lists, repeated rows, ports not
    /// given): the violations they explain cite them. Absent when it found nothing, and
    /// in reports before `auditor-report/7`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub document_findings: Vec<DocumentFinding>,
    /// The report before this one in its chain (`auditor report --previous`): its digest
    /// and period, so that scheduled reports form a hash chain (`auditor report verify
    /// --chain`). Absent in a chain's first report and before `auditor-report/7`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Previous>,
    /// sha256 (hex) of this report's canonical JSON with `digest` set to null: recompute
    /// it to show the report was not edited (`auditor report verify`).
    pub digest: Option<String>,
}

/// The report a report follows in its chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Previous {
    /// Its `digest`: what `auditor report verify --chain` finds it by.
    pub digest: String,
    /// Its period: this report's should start where it ends.
    pub period: Period,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Period {
    /// The requested --since, else the start of the first coverage (RFC 3339).
    pub since: String,
    /// The requested --until, else the end of the last coverage (RFC 3339).
    pub until: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub title: Option<String>,
    /// Where the documentation came from (the allowlist's `document.source`).
    #[serde(alias = "source")]
    pub origin: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// "clean" when nothing undocumented was seen in fully audited time, else "violations"
    /// (or "incomplete" when clean but some time was not fully audited).
    pub status: String,
    /// One sentence a reader understands in ten seconds.
    pub headline: String,
    pub documented_connections: usize,
    pub documented_observed: usize,
    /// Of `documented_observed`, the rows judged on any port because the document gives
    /// no port and the overrides none (`port_verified: false`): observed, port not
    /// verified.
    #[serde(default)]
    pub documented_observed_port_unverified: usize,
    pub documented_not_observed: Vec<String>,
    pub violation_edges: usize,
    pub violating_connections: u64,
    pub allowed_connections: u64,
    /// Edges an accepted exception in force covered (`accepted`), and their
    /// connections: counted apart from violations. Absent when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub accepted_edges: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub accepted_connections: u64,
    /// Connections the platform baseline allowed (verdict `platform`).
    #[serde(default)]
    pub platform_connections: u64,
    /// Connections made by a service mesh's sidecars (transport and delivery legs), of
    /// any verdict: carried traffic, never counted as observations of documented rows.
    #[serde(default)]
    pub mesh_leg_connections: u64,
    pub by_verdict: BTreeMap<String, u64>,
    pub watched_seconds: f64,
    pub incomplete_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Coverage {
    pub watched_seconds: f64,
    /// Seconds in intervals in which the kernel lost connections: not fully audited.
    pub incomplete_seconds: f64,
    /// Watched, fully audited time as a fraction of the period (per node, averaged);
    /// null when coverage is unknown (`known` false).
    pub fraction: Option<f64>,
    /// False when some observations came from a recording that did not say what it
    /// watched (replayed without capture intervals): how much of the period was audited
    /// is then unknown. Absent in reports before `auditor-report/4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known: Option<bool>,
    /// The parts of the period that are not fully audited, per node: when the auditor
    /// was not running (or had not delivered everything up to then), and intervals in
    /// which the kernel lost connections.
    pub gaps: Vec<Gap>,
    pub intervals: Vec<Interval>,
    /// The nodes the report was told to expect (`auditor report --expect-nodes`); empty
    /// when it was not told, and then `missing_nodes` is empty too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_nodes: Vec<String>,
    /// Expected nodes that never reported in the period (no coverage, no observation):
    /// each is a gap over the whole period, counted as 0 s watched in `fraction`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_nodes: Vec<String>,
}

/// Where a report's observations came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    /// `live` (every observation captured by `auditor run`), `replay` (from recorded
    /// flows, `auditor replay --store`: not live capture), `mixed` (both), or `unknown`
    /// (a store written before auditor recorded it).
    pub mode: String,
    /// The nodes captured live.
    pub nodes: Vec<String>,
    /// The recordings replayed.
    pub replays: Vec<Replayed>,
    /// The one sentence every format prints first.
    pub statement: String,
}

/// One recording replayed into the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Replayed {
    /// The flows file as named to `auditor replay` (`-`: stdin).
    pub file: String,
    /// The sha256 of the bytes replayed.
    pub sha256: String,
    /// The store's node the observations went under.
    pub node: String,
    /// The nodes the recording's `watch` lines name (the capture's own).
    pub capture_nodes: Vec<String>,
    /// Whether the recording said what it watched (`watch` lines): without them its
    /// coverage is unknown.
    pub intervals_known: bool,
}

impl Capture {
    /// From the modes and rows recorded; the statement follows from them.
    pub fn new(mode: &str, mut nodes: Vec<String>, replays: Vec<Replayed>) -> Capture {
        nodes.sort();
        nodes.dedup();
        let mut c = Capture {
            mode: mode.into(),
            nodes,
            replays,
            statement: String::new(),
        };
        c.statement = c.state();
        c
    }

    /// Combines two reports' (merge): live and replay make mixed.
    pub fn combine(a: Option<Capture>, b: Option<Capture>) -> Capture {
        let unknown = || Capture::new("unknown", Vec::new(), Vec::new());
        let (a, b) = (a.unwrap_or_else(unknown), b.unwrap_or_else(unknown));
        let mode = match (a.mode.as_str(), b.mode.as_str()) {
            (x, y) if x == y => x.to_string(),
            ("unknown", _) | (_, "unknown") => "unknown".into(),
            _ => "mixed".into(),
        };
        let mut replays = a.replays;
        for r in b.replays {
            if !replays.contains(&r) {
                replays.push(r);
            }
        }
        Capture::new(&mode, [a.nodes, b.nodes].concat(), replays)
    }

    /// True when the observations are not all live capture.
    pub fn not_live(&self) -> bool {
        self.mode != "live"
    }

    fn state(&self) -> String {
        let live = format!(
            "live capture on {} node{} ({})",
            self.nodes.len(),
            if self.nodes.len() == 1 { "" } else { "s" },
            self.nodes.join(", ")
        );
        let replayed: Vec<String> = self
            .replays
            .iter()
            .map(|r| {
                format!(
                    "replayed from {} sha256 {}{}",
                    if r.file == "-" { "stdin" } else { &r.file },
                    r.sha256,
                    if r.intervals_known {
                        String::new()
                    } else {
                        " (without capture intervals: coverage unknown)".into()
                    }
                )
            })
            .collect();
        match self.mode.as_str() {
            "live" => live,
            "replay" => format!("{}: not live capture", replayed.join("; ")),
            "mixed" => format!("{live}; and {}: not live capture", replayed.join("; ")),
            _ => "where the observations came from is not recorded (a store written before \
                  auditor recorded it): not shown to be live capture"
                .into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gap {
    pub node: String,
    pub start: String,
    pub end: String,
    /// "not_running" (no coverage: the auditor was not running, or it stopped before it
    /// had delivered what the kernel counted), "kernel_drops" (watched, connections lost) or
    /// "never_reported" (an expected node with no coverage and no observation in the
    /// whole period: `Coverage::missing_nodes`).
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    pub node: String,
    pub start: String,
    pub end: String,
    pub fully_audited: bool,
    /// What the kernel lost in the interval, and the pressure it was under; a connection
    /// lost makes it not fully audited.
    pub drops: Drops,
}

/// Why a documented row counts as observed.
/// Ordered so that the stronger evidence is the greater.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Evidence {
    /// Only connections held open from before (found by the walk of open sockets).
    Active,
    /// A connection of the row was opened in the period.
    Opened,
}

impl RowReport {
    /// What every format shows in a row's "Observed" column: "observed, port not
    /// verified" for a row judged on any port, never a plain yes.
    pub fn observed_text(&self) -> &'static str {
        match (self.observed, self.port_verified, self.evidence) {
            (false, _, _) => "never",
            (true, false, Some(Evidence::Active)) => {
                "observed, port not verified (active: held open, none opened)"
            }
            (true, false, _) => "observed, port not verified",
            (true, true, Some(Evidence::Active)) => "yes (active: held open, none opened)",
            (true, true, _) => "yes",
        }
    }
}

impl Evidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::Opened => "opened",
            Evidence::Active => "active",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RowReport {
    /// The documented row's number (none for an unnumbered row).
    #[serde(alias = "number")]
    pub rule: Option<u32>,
    /// sha256 of the row's content (source, destination, transport, ports).
    pub digest: String,
    /// The calling service.
    #[serde(alias = "source")]
    pub src: String,
    /// The called service.
    #[serde(alias = "destination")]
    pub dst: String,
    pub protocol: String,
    pub transport: String,
    pub ports: String,
    pub classification: String,
    pub description: String,
    pub observed: bool,
    /// False when the row was judged on any port because the document gives no port and
    /// the deployment's overrides none: an observation shows the two services talked,
    /// not that they used the documented port ("observed, port not verified"). True
    /// otherwise, including a row the document allows "Any" port (any port is what it
    /// documents). Reports before auditor-report/4 did not say, and read as true.
    #[serde(default = "yes")]
    pub port_verified: bool,
    /// What the observation rests on: "opened" (a connection of the row was opened in the
    /// period) or "active" (none was opened, but one was found open by the walk of the
    /// node's sockets: a long-lived connection, e.g. a pool made before the auditor
    /// started). None when not observed.
    #[serde(default)]
    pub evidence: Option<Evidence>,
    /// Connections opened in the period (held-open ones found by the walk count 0).
    pub count: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub nodes: Vec<String>,
    /// "src (comm)" examples, at most a few.
    pub examples: Vec<String>,
}

impl RowReport {
    /// A documented row as the allowlist writes it, not yet observed: every report input
    /// (store, Prometheus) starts from this and adds what it saw.
    pub fn unobserved(c: &allowlist::Connection, port_verified: bool) -> RowReport {
        RowReport {
            rule: c.number,
            digest: crate::provenance::row_sha256(c),
            src: c.source.clone(),
            dst: c.destination.clone(),
            protocol: c.protocol.clone(),
            transport: c.transport.as_str().into(),
            ports: c.ports.to_string(),
            classification: allowlist::Classification::list_to_string(&c.classification),
            description: c.description.clone(),
            observed: false,
            port_verified,
            evidence: None,
            count: 0,
            first_seen: None,
            last_seen: None,
            nodes: Vec::new(),
            examples: Vec::new(),
        }
    }
}

/// An edge and the nodes that saw it, in the event vocabulary (`crate::edge::Edge`): a
/// violation (`Report::violations`) or a flow the platform baseline allowed
/// (`PlatformEntry::flows`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ObservedEdge {
    #[serde(flatten)]
    pub edge: Edge,
    pub nodes: Vec<String>,
    /// The document findings that explain this violation (a row likely reversed, a
    /// connection a row's text describes that no row lists): absent when none does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub explained_by: Vec<FindingRef>,
    /// The accepted exception covering this edge, by id: in force when the edge is in
    /// `accepted`, expired before the edge was last seen when it is in `violations`.
    /// Absent when none covers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
}

/// The accepted exceptions file a report was made with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExceptionsUsed {
    /// The file as named to `--exceptions`.
    pub file: String,
    /// sha256 of its bytes: which reviewed version was applied.
    pub sha256: String,
    /// Every exception in it, in file order, used or not.
    pub entries: Vec<ExceptionUse>,
}

/// One accepted exception and what it covered in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExceptionUse {
    pub id: String,
    pub src: String,
    pub dst: String,
    /// tcp or udp; absent: either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    /// Absent: any port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub reason: String,
    pub owner: String,
    /// As the file gives it (a date is in force through that day, UTC).
    pub expires: String,
    /// The first instant it is no longer in force (RFC 3339).
    pub expired_from: String,
    /// "in_force" at the end of the period, or "expired".
    pub status: String,
    /// Edges it accepted (in `accepted`), and their connections.
    pub accepted_edges: usize,
    pub accepted_connections: u64,
    /// Edges it covers that were seen after it expired: violations again.
    pub expired_edges: usize,
}

/// The controls section: which mappings were applied, and each control's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Controls {
    /// The mapping files applied: the built-in one (`auditor/controls/*.yaml`) and any
    /// `--controls FILE`, each with its sha256.
    pub mappings: Vec<MappingUsed>,
    pub results: Vec<ControlResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingUsed {
    pub file: String,
    pub sha256: String,
}

/// One control, judged on this report's evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlResult {
    /// The mapping file it came from (`Controls::mappings`): the built-in one or a
    /// `--controls FILE`.
    pub mapping: String,
    /// "PCI DSS v4.0", "SOC 2", ...
    pub framework: String,
    /// The control's id in its framework ("1.2.5", "CC6.6").
    pub control: String,
    /// What the control requires, in the mapping's words.
    pub requirement: String,
    /// "met", "not_met" (the evidence shows it failed) or "not_evidenced" (the evidence
    /// cannot show it either way: `missing` says what is lacking).
    pub status: String,
    /// The checks the mapping rests it on (`rows_identified`, `no_violations`, ...).
    pub checks: Vec<String>,
    /// The report's facts behind the status.
    pub evidence: Vec<String>,
    /// What is missing or failed, for the status to be met.
    pub missing: Vec<String>,
}

/// What the allowlist's own lint found in the document (`auditor allowlist check`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentFinding {
    /// Stable code: `reversed-datastore`, `described-not-listed`, `repeated-connection`, …
    pub code: String,
    /// The documented connections (rows) it concerns.
    pub rows: Vec<u32>,
    pub message: String,
}

/// A document finding a violation cites, by code and rows.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct FindingRef {
    pub code: String,
    pub rows: Vec<u32>,
}

/// One platform baseline entry's traffic in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlatformEntry {
    /// The baseline entry's name.
    pub entry: String,
    pub connections: u64,
    /// Its edges (verdict `platform`), most connections first.
    pub flows: Vec<ObservedEdge>,
}

/// The DNS names egress was reached by in the period, as the edges' destinations carry
/// them (`dst.domain`, `dst.resolution`), with when and from which resolver each name was
/// learned. The lists say what was observed: on a node whose egress carries no DNS mark
/// (DNS answers not captured, a store from before names were kept, Prometheus series),
/// names are unknown, and an empty list there means nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Names {
    /// The nodes whose egress in the period carries a DNS mark (`dst.resolution`): there,
    /// DNS answers were captured and the names below are what was observed. Empty: names
    /// are unknown, on every node.
    pub nodes: Vec<String>,
    /// The one sentence every format prints: whether names are known, and where not.
    pub statement: String,
    /// Each documented destination service reached by name, with its names.
    pub services: Vec<ServiceNames>,
    /// Violation edges whose destination was reached by name, most connections first.
    pub undocumented: Vec<NamedEgress>,
    /// Egress to an address the source never resolved (a hard-coded address, DNS over
    /// HTTPS, an untrusted resolver's answer), outside the cluster's own identities and
    /// loopback, of any verdict, most connections first.
    pub bare: Vec<BareEgress>,
}

/// A documented destination service and the names it was reached by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceNames {
    /// The documented service (`dst.service`).
    pub service: String,
    /// Its names, most connections first.
    pub domains: Vec<DomainUse>,
}

/// One name a documented service was reached by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DomainUse {
    /// The DNS name (ECS `destination.domain`).
    pub domain: String,
    /// Connections to the service by this name, of any verdict.
    #[serde(flatten)]
    pub seen: Seen,
    /// When and from which trusted resolver the name was learned.
    pub learned: Vec<Learned>,
}

/// Connections, when and on which nodes: what each entry of `Names` counts (flattened
/// into it: serde cannot deny unknown fields beside a flattened part, so those entries
/// do not, as `ObservedEdge` does not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Seen {
    /// Connections.
    pub count: u64,
    /// RFC 3339.
    #[serde(with = "crate::model::time::as_rfc3339")]
    #[schemars(with = "String")]
    pub first_seen: Millis,
    /// RFC 3339.
    #[serde(with = "crate::model::time::as_rfc3339")]
    #[schemars(with = "String")]
    pub last_seen: Millis,
    pub nodes: Vec<String>,
}

impl Seen {
    /// Adds `other` (the same entry elsewhere): counts add, the span widens, nodes unite.
    pub(super) fn add(&mut self, other: Seen) {
        self.count += other.count;
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        self.nodes.extend(other.nodes);
        self.nodes.sort();
        self.nodes.dedup();
    }
}

/// A name a trusted resolver gave on a node in the period: how often, first and last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Learned {
    pub node: String,
    /// The resolver's address.
    pub resolver: std::net::IpAddr,
    /// Answers that gave the name.
    pub answers: u64,
    /// RFC 3339.
    #[serde(with = "crate::model::time::as_rfc3339")]
    #[schemars(with = "String")]
    pub first_learned: Millis,
    /// RFC 3339.
    #[serde(with = "crate::model::time::as_rfc3339")]
    #[schemars(with = "String")]
    pub last_learned: Millis,
}

/// Undocumented egress to a name: a violation edge whose destination was reached by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NamedEgress {
    pub verdict: Verdict,
    /// The source, as the edge names it.
    pub src: String,
    pub domain: String,
    /// The destination as the edge names it: its service, else its address.
    pub dst: String,
    pub transport: Transport,
    pub port: u16,
    #[serde(flatten)]
    pub seen: Seen,
    /// When and from which trusted resolver the name was learned.
    pub learned: Vec<Learned>,
}

/// Egress by bare address: the source connected to an address it never resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BareEgress {
    pub verdict: Verdict,
    /// The source, as the edge names it.
    pub src: String,
    /// The destination's address.
    pub addr: std::net::IpAddr,
    /// The documented service at that address, if an entry claims it.
    pub service: Option<String>,
    pub transport: Transport,
    pub port: u16,
    #[serde(flatten)]
    pub seen: Seen,
}

/// The report's JSON Schema (docs/report.schema.json is this, checked by a test).
pub fn schema_json() -> String {
    let mut schema = schemars::schema_for!(Report);
    schema.insert(
        "$comment".into(),
        "Generated from auditor/src/report/model.rs by `auditor schema report` (`cargo xtask render`); do not edit."
            .into(),
    );
    let mut s = serde_json::to_string_pretty(&schema).expect("schema serialises");
    s.push('\n');
    s
}

pub(super) fn parse_time(s: &str) -> Option<i64> {
    // Any offset; a time without a zone is ambiguous and refused, as in replay.
    crate::model::time::parse_rfc3339(s).ok()
}

/// `--since`/`--until`: an RFC 3339 time, or a duration meaning that long ago ("24h").
pub fn parse_when(text: &str) -> anyhow::Result<i64> {
    if let Some(ms) = parse_time(text) {
        return Ok(ms);
    }
    let ago = humantime::parse_duration(text)
        .with_context(|| format!("{text:?} is neither an RFC 3339 time nor a duration like 24h"))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    Ok(now - ago.as_millis() as i64)
}

fn yes() -> bool {
    true
}

fn is_zero<T: Default + PartialEq>(n: &T) -> bool {
    *n == T::default()
}

/// A summary to be filled by `merge::finish`.
pub(super) fn empty_summary() -> Summary {
    Summary {
        status: String::new(),
        headline: String::new(),
        documented_connections: 0,
        documented_observed: 0,
        documented_observed_port_unverified: 0,
        documented_not_observed: Vec::new(),
        violation_edges: 0,
        violating_connections: 0,
        accepted_edges: 0,
        accepted_connections: 0,
        allowed_connections: 0,
        platform_connections: 0,
        mesh_leg_connections: 0,
        by_verdict: BTreeMap::new(),
        watched_seconds: 0.0,
        incomplete_seconds: 0.0,
    }
}
