//! The allowlist file: YAML people review in Git (JSON is accepted too: it is YAML).
//! Reading is strict and in two steps: serde reads the raw form (unknown keys are errors),
//! then `validate` checks what serde cannot (duplicate numbers, undeclared services,
//! protocol/transport agreement); every error says file:line:column.
//!
//! Writing goes through one JSON value, so the YAML and JSON forms are the same document.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Deserializer, de};
use serde_json::{Map, Value, json};
use serde_saphyr::Spanned;

pub use crate::file_error::FileError;
use crate::{
    model::{
        Allowlist, Classification, Connection, DocumentRef, PortSpec, Ports, Service, ServiceKind,
        Transports, parse_port_spec,
    },
    names,
};

pub const FORMAT_VERSION: u32 = 1;

// ---- raw form: exactly what the file may contain ----

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "auditor documented connection allowlist")]
pub(crate) struct RawFile {
    /// Format version; currently 1.
    version: u32,
    #[serde(default)]
    document: Option<RawDocument>,
    /// Every service the connections name, with what kind of thing it is.
    #[schemars(with = "Vec<RawService>")]
    services: Vec<Spanned<RawService>>,
    /// The documented connections, one per table row.
    #[schemars(with = "Vec<RawConnection>")]
    connections: Vec<Spanned<RawConnection>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawDocument {
    title: Option<String>,
    source: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: String,
    kind: ServiceKind,
    #[serde(default)]
    aliases: Vec<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawConnection {
    /// The row's number in the document; null for unnumbered rows.
    number: Option<u32>,
    source: String,
    destination: String,
    /// Application protocol as documented: HTTP, Redis, SIP/UDP, …
    protocol: String,
    /// tcp, udp, both (a protocol like TCP/UDP), or unknown (the document's protocol does
    /// not tell; either transport matches, unverified). Implied by the protocol when left
    /// out; when given it must agree with a protocol that names its transport (SIP/UDP).
    #[serde(default)]
    transport: Option<Transports>,
    ports: PortsField,
    /// intra-cluster, egress, ingress, or a combination like ingress/egress.
    #[serde(default)]
    classification: Option<String>,
    #[serde(default)]
    description: String,
    /// The source's name as the document wrote it, when an alias was normalised.
    #[serde(default)]
    documented_source: Option<String>,
    #[serde(default)]
    documented_destination: Option<String>,
    /// The row's line in the source document.
    #[serde(default)]
    line: Option<u32>,
}

/// A port item: 8080, "6379*" (configurable), "20000-45000".
#[derive(Debug, Clone, Copy)]
pub struct PortItem(pub PortSpec);

impl<'de> Deserialize<'de> for PortItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = PortItem;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a port (8080), a configurable port (\"6379*\") or a range (\"20000-45000\")",
                )
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortItem, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortItem, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortItem, E> {
                parse_port_spec(v).map(PortItem).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for PortItem {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Port".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A port, a configurable port (\"6379*\"), or a range (\"20000-45000\", optionally with *).",
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": 65535},
                {"type": "string", "pattern": "^[0-9]{1,5}(-[0-9]{1,5})?\\*?$"}
            ]
        })
    }
}

/// `ports:` is a list of port items, `any`, or `{unknown: reason}` / `{any: reason}`.
#[derive(Debug, Clone)]
pub struct PortsField(pub Ports);

impl<'de> Deserialize<'de> for PortsField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = PortsField;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of ports, `any`, or {unknown: reason}")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<PortsField, A::Error> {
                let mut out = Vec::new();
                while let Some(PortItem(p)) = seq.next_element()? {
                    out.push(p);
                }
                if out.is_empty() {
                    return Err(de::Error::custom(
                        "the port list is empty: give ports, `any`, or {unknown: reason}",
                    ));
                }
                Ok(PortsField(Ports::Listed(out)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortsField, E> {
                match v {
                    "any" => Ok(PortsField(Ports::Any {
                        reason: "any".into(),
                    })),
                    other => Err(E::custom(format!(
                        "ports: {other:?} is not a list of ports, `any`, or {{unknown: reason}}"
                    ))),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortsField, E> {
                Err(E::custom(format!("ports must be a list: write [{v}]")))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<PortsField, A::Error> {
                let Some((key, reason)) = map.next_entry::<String, String>()? else {
                    return Err(de::Error::custom(
                        "empty ports map: write {unknown: reason}",
                    ));
                };
                if map.next_entry::<String, String>()?.is_some() {
                    return Err(de::Error::custom(
                        "ports map takes exactly one key: unknown or any",
                    ));
                }
                match key.as_str() {
                    "unknown" => Ok(PortsField(Ports::Unknown { reason })),
                    "any" => Ok(PortsField(Ports::Any { reason })),
                    other => Err(de::Error::custom(format!(
                        "unknown key {other:?} in ports: expected unknown or any"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for PortsField {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Ports".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let item = generator.subschema_for::<PortItem>();
        schemars::json_schema!({
            "description": "The documented ports: a list, `any`, or {unknown: reason} when the document gives none.",
            "oneOf": [
                {"type": "array", "items": item, "minItems": 1},
                {"const": "any"},
                {"type": "object", "properties": {"unknown": {"type": "string"}}, "required": ["unknown"], "additionalProperties": false},
                {"type": "object", "properties": {"any": {"type": "string"}}, "required": ["any"], "additionalProperties": false}
            ]
        })
    }
}

// ---- reading ----

/// Reads an allowlist from YAML (or JSON) text. `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<Allowlist, FileError> {
    let raw: RawFile =
        serde_saphyr::from_str(text).map_err(|e| FileError::from_saphyr(origin, text, &e))?;
    validate(raw, origin)
}

fn validate(raw: RawFile, origin: &str) -> Result<Allowlist, FileError> {
    if raw.version != FORMAT_VERSION {
        return Err(FileError::at_start(
            origin,
            format!(
                "format version {} is not supported (this auditor reads version {FORMAT_VERSION})",
                raw.version
            ),
        ));
    }
    let mut services: Vec<Service> = Vec::new();
    let mut by_name: HashMap<String, String> = HashMap::new(); // name or alias -> service name
    for s in &raw.services {
        let name = names::clean(&s.value.name);
        if name.is_empty() {
            return Err(FileError::at(
                origin,
                s,
                "a service has an empty name".into(),
            ));
        }
        for n in std::iter::once(&name).chain(s.value.aliases.iter()) {
            if by_name.insert(names::clean(n), name.clone()).is_some() {
                return Err(FileError::at(
                    origin,
                    s,
                    format!("the name {n:?} is declared twice (as a service or an alias)"),
                ));
            }
        }
        services.push(Service {
            name,
            kind: s.value.kind,
            aliases: s.value.aliases.iter().map(|a| names::clean(a)).collect(),
        });
    }
    let mut numbers = HashSet::new();
    let mut connections = Vec::with_capacity(raw.connections.len());
    for sc in &raw.connections {
        let c = &sc.value;
        let label = c
            .number
            .map_or("an unnumbered connection".to_string(), |n| {
                format!("connection {n}")
            });
        let fail = |m: String| FileError::at(origin, sc, format!("{label}: {m}"));
        if let Some(n) = c.number
            && !numbers.insert(n)
        {
            return Err(fail(format!("number {n} is used twice")));
        }
        let resolve = |written: &str, what: &str| -> Result<(String, Option<String>), FileError> {
            let w = names::clean(written);
            match by_name.get(&w) {
                Some(name) if *name == w => Ok((w, None)),
                Some(name) => Ok((name.clone(), Some(w))),
                None => Err(fail(format!(
                    "{what} {w:?} is not declared under `services` (a typo?)"
                ))),
            }
        };
        let (source, alias_s) = resolve(&c.source, "source")?;
        let (destination, alias_d) = resolve(&c.destination, "destination")?;
        let read = names::protocol(&c.protocol).map_err(&fail)?;
        let (protocol, implied) = (read.name, read.transport);
        let transport = match c.transport {
            Some(t) if read.names_transport && t != implied => {
                return Err(fail(format!(
                    "transport {t} contradicts protocol {protocol}, which runs over {implied}"
                )));
            }
            // The document's Transport column decides for protocols that do not name one.
            Some(t) => t,
            None => implied,
        };
        let classification = match &c.classification {
            Some(text) => Classification::parse_list(text).ok_or_else(|| fail(format!("classification {text:?} is not intra-cluster, egress, ingress or a combination like ingress/egress")))?,
            None => Vec::new(),
        };
        connections.push(Connection {
            number: c.number,
            source,
            destination,
            protocol,
            transport,
            ports: c.ports.0.clone(),
            classification,
            description: names::clean(&c.description),
            documented_source: c.documented_source.clone().or(alias_s),
            documented_destination: c.documented_destination.clone().or(alias_d),
            line: c.line,
        });
    }
    let document = raw
        .document
        .map(|d| DocumentRef {
            title: d.title,
            source: d.source,
        })
        .unwrap_or_default();
    Ok(Allowlist {
        document,
        services,
        connections,
    })
}

// ---- writing ----

fn ports_value(p: &Ports) -> Value {
    match p {
        Ports::Listed(list) => Value::Array(
            list.iter()
                .map(|s| {
                    if s.first == s.last && !s.configurable {
                        json!(s.first)
                    } else {
                        json!(s.to_string())
                    }
                })
                .collect(),
        ),
        Ports::Any { reason } if reason == "any" => json!("any"),
        Ports::Any { reason } => json!({ "any": reason }),
        Ports::Unknown { reason } => json!({ "unknown": reason }),
    }
}

/// The allowlist as one JSON value, keys in reading order.
pub fn to_value(a: &Allowlist) -> Value {
    let mut top = Map::new();
    top.insert("version".into(), json!(FORMAT_VERSION));
    let mut doc = Map::new();
    if let Some(t) = &a.document.title {
        doc.insert("title".into(), json!(t));
    }
    if let Some(s) = &a.document.source {
        doc.insert("source".into(), json!(s));
    }
    top.insert("document".into(), Value::Object(doc));
    top.insert(
        "services".into(),
        a.services
            .iter()
            .map(|s| {
                let mut m = Map::new();
                m.insert("name".into(), json!(s.name));
                m.insert("kind".into(), json!(s.kind.as_str()));
                if !s.aliases.is_empty() {
                    m.insert("aliases".into(), json!(s.aliases));
                }
                Value::Object(m)
            })
            .collect(),
    );
    top.insert(
        "connections".into(),
        a.connections
            .iter()
            .map(|c| {
                let mut m = Map::new();
                m.insert("number".into(), json!(c.number));
                m.insert("source".into(), json!(c.source));
                m.insert("destination".into(), json!(c.destination));
                m.insert("protocol".into(), json!(c.protocol));
                m.insert("transport".into(), json!(c.transport.as_str()));
                m.insert("ports".into(), ports_value(&c.ports));
                if !c.classification.is_empty() {
                    m.insert(
                        "classification".into(),
                        json!(Classification::list_to_string(&c.classification)),
                    );
                }
                m.insert("description".into(), json!(c.description));
                if let Some(s) = &c.documented_source {
                    m.insert("documented_source".into(), json!(s));
                }
                if let Some(d) = &c.documented_destination {
                    m.insert("documented_destination".into(), json!(d));
                }
                if let Some(l) = c.line {
                    m.insert("line".into(), json!(l));
                }
                Value::Object(m)
            })
            .collect(),
    );
    Value::Object(top)
}

pub fn to_json(a: &Allowlist) -> String {
    let mut s = serde_json::to_string_pretty(&to_value(a)).expect("a JSON value always serialises");
    s.push('\n');
    s
}

/// YAML with a header comment; one canonical layout so re-imports diff cleanly.
pub fn to_yaml(a: &Allowlist, header: &[String]) -> String {
    let mut out = String::new();
    for h in header {
        out.push_str("# ");
        // A comment ends at a line break and may hold only printable characters: a
        // document named "a\nb" or "del\u{7f}" is written with escapes.
        for c in h.chars() {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') {
                out.extend(c.escape_unicode());
            } else {
                out.push(c);
            }
        }
        out.push('\n');
    }
    crate::yaml::emit_document(&to_value(a), &mut out);
    out
}

/// Reads a policy file's text; returns it with the name errors should use.
pub fn read_source(path: &std::path::Path) -> Result<(String, String), FileError> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((text, origin)),
        Err(e) => Err(FileError {
            origin,
            line: 0,
            column: 0,
            message: format!("cannot read: {e}"),
        }),
    }
}

/// Reads an allowlist file (YAML or JSON) from disk.
pub fn load(path: &std::path::Path) -> Result<Allowlist, FileError> {
    let (text, origin) = read_source(path)?;
    parse(&text, &origin)
}

/// The header `auditor allowlist import` writes above the YAML.
pub fn import_header(source: &str) -> Vec<String> {
    vec![
        "Documented connection allowlist for auditor, generated by `auditor allowlist import`"
            .into(),
        format!("from {source}. Do not edit the rows: re-import when the document"),
        "changes. This deployment's ports for configurable (*) and unknown ports belong in an"
            .into(),
        "overrides file (auditor allowlist check --overrides).".into(),
    ]
}
