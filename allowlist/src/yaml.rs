//! Block-style YAML for our own documents (the allowlist, NetworkPolicies), written by
//! serde-saphyr from one JSON value: deterministic, plain scalars where they read back as
//! the same string, quoted ones otherwise. Short scalar lists (ports, aliases) and
//! one-entry maps (`{unknown: reason}`) go on one line, and long text stays on one line,
//! so a row reads, and diffs, as one line per field. Reading is serde-saphyr's job too.
//!
//! This replaced a hand-written emitter: the property test `a_written_allowlist_reads_back_the_same`
//! (allowlist/tests/round_trip.rs) passes with both, on hostile text, and the output is
//! byte for byte the same on the bundled allowlist.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use serde_saphyr::{FlowMap, FlowSeq, SerializerOptions};

/// Appends `v` as a YAML document.
pub fn emit_document(v: &Value, out: &mut String) {
    let mut options = SerializerOptions::default();
    // Folded (`>`) text rewraps a whole paragraph when one word changes: keep one line.
    options.prefer_block_scalars = false;
    let yaml = serde_saphyr::to_string_with_options(&Layout(v), options)
        .expect("a JSON value always serialises");
    out.push_str(&yaml);
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// A JSON value with our layout: scalar lists and one-entry scalar maps in flow style.
struct Layout<'a>(&'a Value);

impl Serialize for Layout<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Array(items) if items.iter().all(is_scalar) => FlowSeq(items).serialize(s),
            Value::Array(items) => s.collect_seq(items.iter().map(Layout)),
            Value::Object(m) if m.len() == 1 && m.values().all(is_scalar) => {
                FlowMap(m).serialize(s)
            }
            Value::Object(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, &Layout(v))?;
                }
                map.end()
            }
            scalar => scalar.serialize(s),
        }
    }
}
