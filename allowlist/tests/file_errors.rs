//! A file with a mistake is refused at the line of the mistake (where an unclosed bracket
//! or quote opened, the second of two equal keys), in words that say what to fix, not in
//! the YAML parser's vocabulary.

use allowlist::file;

const GOOD: &str = "version: 1
services:
- name: A
  kind: service
- name: B
  kind: service
connections:
- number: 1
  source: A
  destination: B
  protocol: HTTP
  ports: [8080]
  description: x
- number: 2
  source: B
  destination: A
  protocol: HTTP
  ports: [9090]
  description: y
";

/// `GOOD` with its line `line` (1-based) changed by `f`.
fn with_line(line: usize, f: impl Fn(&str) -> String) -> String {
    GOOD.lines()
        .enumerate()
        .map(|(i, l)| if i + 1 == line { f(l) } else { l.to_string() })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The error for `text`, checked to speak our words, not the parser's.
fn error(text: &str) -> String {
    let e = file::parse(text, "list.yaml")
        .expect_err("the file is broken")
        .to_string();
    for jargon in [
        "DuplicateKeyPolicy",
        "while parsing",
        "scalar",
        "mapping values",
        "indicator",
        "block mapping",
        "sequence start",
        "invalid u32",
    ] {
        assert!(!e.contains(jargon), "{jargon:?} in {e}");
    }
    e
}

#[test]
fn the_good_file_reads() {
    file::parse(GOOD, "list.yaml").unwrap();
}

#[test]
fn an_unclosed_bracket_is_reported_where_it_opens() {
    // The parser gives up on a later line: the fault is the `[` on line 12.
    let e = error(&with_line(12, |l| l.replace(']', "")));
    assert!(
        e.starts_with("list.yaml:12:10: this [ is never closed"),
        "{e}"
    );
    let e = error(&with_line(12, |_| "  ports: {unknown: why".into()));
    assert!(
        e.starts_with("list.yaml:12:10: this { is never closed"),
        "{e}"
    );
}

#[test]
fn an_unclosed_quote_is_reported_where_it_opens() {
    let e = error(&with_line(13, |_| "  description: \"runs on".into()));
    assert!(
        e.starts_with("list.yaml:13:16: this \" is never closed"),
        "{e}"
    );
}

#[test]
fn a_repeated_key_is_reported_at_the_repeat_naming_the_first() {
    let e = error(&with_line(13, |l| format!("{l}\n  ports: [80]")));
    assert_eq!(
        e,
        "list.yaml:14:3: key \"ports\" appears twice in this entry (first at line 12): keep one"
    );
}

#[test]
fn a_tab_in_the_indentation_says_to_use_spaces() {
    let e = error(&with_line(13, |l| l.replacen("  ", "\t", 1)));
    assert!(
        e.starts_with("list.yaml:13:") && e.contains("YAML indents with spaces only"),
        "{e}"
    );
}

#[test]
fn a_line_indented_too_deep_is_named() {
    let e = error(&with_line(13, |l| format!("   {l}")));
    assert!(
        e.starts_with("list.yaml:13:") && e.contains("indentation does not fit"),
        "{e}"
    );
}

#[test]
fn a_colon_inside_a_value_says_to_quote_it() {
    let e = error(&with_line(13, |_| "  description: note: this".into()));
    assert!(
        e.starts_with("list.yaml:13:") && e.contains("in quotes"),
        "{e}"
    );
}

#[test]
fn an_unknown_field_lists_the_fields() {
    let e = error(&with_line(13, |l| l.replace("description", "descripton")));
    assert!(
        e.starts_with("list.yaml:13:3: unknown field `descripton`: the fields here are")
            && e.contains("`description`"),
        "{e}"
    );
}

#[test]
fn a_wrong_type_says_what_was_expected_and_found() {
    let e = error(&with_line(8, |_| "- number: one".into()));
    assert_eq!(e, "list.yaml:8:11: expected a whole number, found \"one\"");
    let e = error(&with_line(2, |_| "services: {A: service}".into()));
    assert!(e.starts_with("list.yaml:2:11: expected a list here"), "{e}");
    let e = error(&with_line(9, |_| "  source: [A]".into()));
    assert!(e.starts_with("list.yaml:9:11: expected one value"), "{e}");
}

#[test]
fn a_missing_field_points_at_its_entry() {
    let e = error(&with_line(16, |_| String::new()));
    assert_eq!(e, "list.yaml:14:3: this entry has no `destination`: add it");
}

#[test]
fn an_empty_file_says_so() {
    assert_eq!(error(""), "list.yaml:1:1: the file is empty");
}
