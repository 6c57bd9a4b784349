//! A report's own digest: the sha256 of its canonical JSON, set last (`seal`) and
//! checked by `merge` and `auditor report verify`.

use anyhow::bail;
use serde_json::{Map, Value};

use super::{
    Report,
    model::{SCHEMA, SCHEMA_2, SCHEMA_3, SCHEMA_6, SCHEMA_7},
};

/// sha256 of the report's canonical JSON (compact, `digest` null), in the layout its
/// `schema` names: an `auditor-report/6` or `/7` one serialises as it was (the fields
/// later layouts added are left out when absent); a report before /6 was sealed with its coverage's
/// `drops.lru_evictions`, an `auditor-report/3` one also without the fields /4 added,
/// and an `auditor-report/2` one also with its old field names.
pub fn compute_digest(r: &Report) -> String {
    let mut copy = r.clone();
    copy.digest = None;
    let json = if [SCHEMA, SCHEMA_7, SCHEMA_6].contains(&copy.schema.as_str()) {
        serde_json::to_string(&copy).expect("a report serialises")
    } else {
        let mut v = serde_json::to_value(&copy).expect("a report serialises");
        with_pre_6_drops(&mut v);
        if copy.schema == SCHEMA_2 || copy.schema == SCHEMA_3 {
            without_schema_4_fields(&mut v);
        }
        if copy.schema == SCHEMA_2 {
            as_schema_2(&mut v);
        }
        v.to_string()
    };
    crate::provenance::sha256_hex(json.as_bytes())
}

/// Gives an older report's coverage drops the name they were sealed with, in place.
fn with_pre_6_drops(report: &mut Value) {
    let intervals = report
        .pointer_mut("/coverage/intervals")
        .and_then(Value::as_array_mut);
    for interval in intervals.into_iter().flatten() {
        if let Some(drops) = interval.get_mut("drops").and_then(Value::as_object_mut) {
            renamed(drops, &[("connections_lost", "lru_evictions")]);
        }
    }
}

/// Renames an object's keys (new name, old name), keeping their order.
fn renamed(obj: &mut Map<String, Value>, names: &[(&str, &str)]) {
    *obj = std::mem::take(obj)
        .into_iter()
        .map(|(k, v)| {
            let k = names
                .iter()
                .find(|(new, _)| *new == k)
                .map_or(k, |(_, old)| (*old).to_string());
            (k, v)
        })
        .collect();
}

/// Takes out of a report's JSON the fields `auditor-report/4` added (read into an older
/// report with their defaults), so an older report's digest is over what it held.
fn without_schema_4_fields(report: &mut Value) {
    if let Some(rows) = report.get_mut("rows").and_then(Value::as_array_mut) {
        for row in rows.iter_mut().filter_map(Value::as_object_mut) {
            row.shift_remove("port_verified");
        }
    }
    if let Some(s) = report.get_mut("summary").and_then(Value::as_object_mut) {
        s.shift_remove("documented_observed_port_unverified");
    }
}

/// Gives a report's JSON the field names of `auditor-report/2`, in place and in order
/// (serde_json keeps object keys in insertion order here: the `preserve_order` feature
/// the allowlist crate turns on, so the text is what /2 serialised).
fn as_schema_2(report: &mut Value) {
    if let Some(rows) = report.get_mut("rows").and_then(Value::as_array_mut) {
        for row in rows.iter_mut().filter_map(Value::as_object_mut) {
            renamed(
                row,
                &[
                    ("rule", "number"),
                    ("src", "source"),
                    ("dst", "destination"),
                ],
            );
        }
    }
    if let Some(doc) = report.get_mut("document").and_then(Value::as_object_mut) {
        renamed(doc, &[("origin", "source")]);
    }
}

/// Sets the report's own digest (last, after everything else is final).
pub fn seal(r: &mut Report) {
    r.digest = Some(compute_digest(r));
}

/// A report that carries a digest must match it.
pub fn check_digest(name: &str, r: &Report) -> anyhow::Result<()> {
    if let Some(d) = &r.digest {
        let actual = compute_digest(r);
        if *d != actual {
            bail!(
                "{name}: its digest {d} does not match its content (sha256 {actual}): the report was edited after it was written"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `auditor-report/2` report reads into the model with its old names, and its
    /// digest is computed in its own layout: the figure is what the /2 auditor computes
    /// for this file (its stored digest is stale: the file was edited by hand since).
    #[test]
    fn a_schema_2_report_keeps_its_digest() {
        let text = include_str!("../../tests/data/demo-report.json");
        let r: Report = serde_json::from_str(text).expect("a /2 report parses");
        assert_eq!(r.schema, SCHEMA_2);
        assert_eq!(
            compute_digest(&r),
            "2f2bfd38379c5606565df479e9e41f25e84d68474cf0412ca3ccb93af652b955"
        );
        assert!(r.rows[0].rule.is_some() && !r.rows[0].src.is_empty());
        assert!(r.document.origin.is_some());
    }

    /// An `auditor-report/3` report (written by the /3 auditor from the bundled
    /// recording) reads with the fields /4 added at their defaults, and still verifies:
    /// its digest is over what it held.
    #[test]
    fn a_schema_3_report_keeps_its_digest() {
        let text = include_str!("../../tests/data/report-3.json");
        let r: Report = serde_json::from_str(text).expect("a /3 report parses");
        assert_eq!(r.schema, SCHEMA_3);
        assert!(r.digest.is_some());
        assert!(check_digest("report-3.json", &r).is_ok());
        assert!(r.rows.iter().all(|x| x.port_verified));
        assert_eq!(r.summary.documented_observed_port_unverified, 0);
        // Read as a /4 report, the same content is another text: the digest differs.
        let mut as_4 = r.clone();
        as_4.schema = super::super::SCHEMA.into();
        as_4.digest = None;
        let mut again = as_4.clone();
        again.schema = SCHEMA_3.into();
        assert_ne!(compute_digest(&as_4), compute_digest(&again));
    }
}
