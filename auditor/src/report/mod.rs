//! Compliance reports: for each documented connection, the evidence that it happened or
//! that it never did; every undocumented connection with proof; how long and how
//! completely the node was watched. Built from a store, merged across nodes, rendered as
//! JSON (the versioned schema in docs/report.schema.json), Markdown or HTML.
//!
//! The files, by job:
//! - the model: `model` (the JSON layout, `Report` and its parts, and parsing of times);
//! - the inputs: `store` (a report from a node's store), `prometheus` (from the series
//!   every daemon exports), `names` (the DNS names egress was reached by, from the
//!   store's edges and learned names), `merge` (per-node reports combined; the summary and coverage
//!   recomputed from the parts), `seal` (the report's own digest), `sign` (detached
//!   ed25519 signatures of the written file);
//! - what the report is judged by beyond the documents: `findings` (the document's own
//!   lint findings), `exceptions` (accepted exceptions, `--exceptions`), `controls` (the
//!   controls auditors test, from a YAML mapping);
//! - the formats: `header` (the facts every format's header prints), `markdown`, `html`
//!   (with the `diagram` of the services), `junit`, `pdf` (the HTML printed). JSON is
//!   the model serialised.

pub mod controls;
pub mod diagram;
mod exceptions;
mod findings;
mod header;
pub mod html;
pub mod junit;
pub mod markdown;
mod merge;
mod model;
mod names;
pub mod pdf;
pub mod prometheus;
mod seal;
pub mod sign;
mod store;

pub use controls::{Mapping, attach_controls};
pub use exceptions::apply_exceptions;
pub use findings::attach_findings;
pub use header::{
    capture_banner, coverage_text, gap_reason_text, header_facts, learned_text, names_text,
};
pub use merge::{expect_nodes, merge};
pub use model::{
    BareEgress, Capture, ControlResult, Controls, Coverage, Document, DocumentFinding, DomainUse,
    Evidence, ExceptionUse, ExceptionsUsed, Gap, Interval, Learned, NamedEgress, Names,
    ObservedEdge, Period, PlatformEntry, Previous, Replayed, Report, RowReport, SCHEMA, Seen,
    ServiceNames, Summary, parse_when, schema_json,
};
pub use seal::{check_digest, compute_digest, seal};
pub use store::from_store;
