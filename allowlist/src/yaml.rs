//! A small block-style YAML emitter for JSON values: deterministic output, plain scalars
//! where they read back as the same string, JSON-quoted ones otherwise (YAML 1.2 reads
//! JSON strings). Only for our own documents; reading is serde-saphyr's job.

use serde_json::Value;

pub fn emit_document(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                emit_entry(k, v, 0, out);
            }
        }
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn indent(n: usize, out: &mut String) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

fn emit_entry(key: &str, v: &Value, level: usize, out: &mut String) {
    indent(level, out);
    out.push_str(&string(key));
    out.push(':');
    match v {
        Value::Array(items) if items.iter().all(is_scalar) && !items.is_empty() => {
            // Short scalar lists (ports, aliases) read best on one line.
            out.push_str(" [");
            out.push_str(&items.iter().map(flow_scalar).collect::<Vec<_>>().join(", "));
            out.push_str("]\n");
        }
        Value::Array(items) if items.is_empty() => out.push_str(" []\n"),
        Value::Object(m) if m.is_empty() => out.push_str(" {}\n"),
        Value::Object(m) if m.len() == 1 && m.values().all(is_scalar) => {
            let (k, v) = m.iter().next().expect("one entry");
            out.push_str(&format!(
                " {{{}: {}}}\n",
                quoted_for_flow(k),
                flow_scalar(v)
            ));
        }
        Value::Array(items) => {
            out.push('\n');
            for item in items {
                emit_item(item, level, out);
            }
        }
        Value::Object(m) => {
            out.push('\n');
            for (k, v) in m {
                emit_entry(k, v, level + 2, out);
            }
        }
        scalar_value => {
            out.push(' ');
            out.push_str(&scalar(scalar_value));
            out.push('\n');
        }
    }
}

fn emit_item(item: &Value, level: usize, out: &mut String) {
    indent(level, out);
    out.push_str("- ");
    match item {
        Value::Object(m) if !m.is_empty() => {
            let mut first = true;
            for (k, v) in m {
                if first {
                    // The first key shares the dash's line.
                    let mut line = String::new();
                    emit_entry(k, v, level + 2, &mut line);
                    out.push_str(&line[level + 2..]);
                    first = false;
                } else {
                    emit_entry(k, v, level + 2, out);
                }
            }
        }
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => string(s),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn flow_scalar(v: &Value) -> String {
    match v {
        Value::String(s) => quoted_for_flow(s),
        other => scalar(other),
    }
}

/// A YAML double-quoted scalar. Not JSON's quoting (used before, and found wrong by
/// fuzzing): JSON allows DEL and C1 controls raw,
/// YAML forbids every non-printable character (YAML 1.2 §5.1), so those are escaped too.
fn yaml_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if yaml_printable(c) => out.push(c),
            c if (c as u32) <= 0xFFFF => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// YAML's printable set, less the characters some readers take as line breaks (NEL,
/// LS, PS) and the byte-order mark: those are escaped to read back unchanged anywhere.
fn yaml_printable(c: char) -> bool {
    matches!(c as u32, 0x20..=0x7E | 0xA0..=0x2027 | 0x202A..=0xD7FF | 0xE000..=0xFEFE | 0xFF00..=0xFFFD | 0x10000..=0x10FFFF)
}

/// Plain when safe in block context, JSON-quoted otherwise.
fn string(s: &str) -> String {
    if plain_is_safe(s) {
        s.to_string()
    } else {
        yaml_quote(s)
    }
}

/// Inside `[...]` and `{...}` flow indicators end a plain scalar: quote those.
fn quoted_for_flow(s: &str) -> String {
    if plain_is_safe(s) && !s.chars().any(|c| matches!(c, '[' | ']' | '{' | '}' | ',')) {
        s.to_string()
    } else {
        yaml_quote(s)
    }
}

fn plain_is_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let reserved = [
        "true", "false", "yes", "no", "on", "off", "null", "~", "y", "n",
    ];
    if reserved.contains(&s.to_ascii_lowercase().as_str()) || s.parse::<f64>().is_ok() {
        return false;
    }
    if !(first.is_alphanumeric() || first == '(' || first == '/' || first == '.') {
        return false;
    }
    if s != s.trim() || s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    // Anything outside YAML's printable set (controls, DEL, C1, LS/PS, BOM) needs escapes.
    s.chars().all(yaml_printable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risky_strings_are_quoted() {
        for s in [
            "yes", "8080", "a: b", "[x]", "#c", "", " lead", "x #y", "ends:", "\"q\"", "tab\tx",
        ] {
            assert_ne!(string(s), s, "{s:?} must be quoted");
        }
        assert_eq!(string("a, b"), "a, b");
        // Found by fuzzing: JSON's quoting leaves DEL raw, which YAML does not accept.
        for s in [
            "del\u{7f}x",
            "nel\u{85}x",
            "c1\u{9b}x",
            "ls\u{2028}x",
            "bom\u{feff}x",
            "nul\0x",
            "quote\"back\\slash",
        ] {
            let q = string(s);
            let back: String = serde_saphyr::from_str(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
            assert_eq!(back, s, "{q}");
        }
        assert_ne!(quoted_for_flow("a, b"), "a, b");
        for s in [
            "Tenant Service",
            "Redis 6.x",
            "Microservice's Redis (using port 6379).",
            "Routing requests/events.",
        ] {
            assert_eq!(string(s), s);
        }
    }
}
