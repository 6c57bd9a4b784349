//! The inventory's `dns:` patterns: which names are a documented service or external.
//!
//! A pattern is a DNS name whose labels may be wildcards, each a whole label:
//! - `*` is exactly one label: `*.redis.cache.windows.net` matches
//!   `voice.redis.cache.windows.net`, not `a.b.redis.cache.windows.net` nor
//!   `redis.cache.windows.net`.
//! - `**` is one or more labels (never zero): `**.corp.example.com` matches
//!   `db.corp.example.com` and `a.b.corp.example.com`, not `corp.example.com`. Write the
//!   bare name as a second pattern when it is meant too.
//! - Any other label is literal. Matching is ASCII case-insensitive, and a trailing dot (the
//!   root) is ignored, in the pattern and in the name; the pattern keeps its text lower-cased
//!   without that dot (`Display`, `as_str`).
//!
//! What a pattern may contain: labels of letters, digits, `-` and `_`, at most 63 bytes
//! each, at most 253 bytes in all; a `*` only as a whole label. A non-ASCII name is
//! written in its punycode form (`xn--…`), which is what DNS answers carry.
//!
//! **A pattern may not cover a public suffix.** Cloud providers hand out names under their
//! own domains to every customer (`mybucket.s3.amazonaws.com`, `acct.blob.core.windows.net`):
//! a pattern wide enough to cover such a shared domain would admit anyone's endpoint there,
//! an attacker's bucket on the same provider included. The Public Suffix List (the `psl`
//! crate, both its ICANN and its private section) says which domains are shared. A pattern
//! with a wildcard must keep to these rules; `T` below is the pattern's literal labels after
//! its last wildcard label:
//! 1. `T` contains a registrable domain: it is longer than its public suffix. Refuses
//!    `*.com`, `**.co.uk`, `*.*.com`, `**.s3.amazonaws.com` (`s3.amazonaws.com` is a
//!    suffix of the private section) and `example.*`. It also refuses
//!    `**.blob.core.windows.net`: Microsoft lists `blob.core.windows.net` in the private
//!    section, because each storage account under it is another customer's; name the
//!    account (`myaccount.blob.core.windows.net`).
//! 2. Each `**` has at least one literal label between it and the registrable domain:
//!    refuses `**.amazonaws.com` and `**.example.com`; accepts `**.corp.example.com` and
//!    `**.redis.cache.windows.net`. (A registrable domain is often the provider's whole
//!    domain, whose subdomains are its customers'.)
//! 3. The name made of one label in place of the last wildcard and `T` is not itself a
//!    public suffix: `*.T` is refused when the list has the wildcard rule `*.T` (every
//!    name it matches would be a suffix, one per customer): `*.compute.amazonaws.com`.
//!
//! The list knows only the shared domains their owners declared: `redis.cache.windows.net`
//! is not in it, so `*.redis.cache.windows.net` passes although each cache under it is
//! another customer's. Naming one's own endpoints exactly is the narrower choice.
//!
//! A pattern with no wildcard is an exact name and is always accepted when it is a valid
//! name, even a public suffix such as `amazonaws.com`: it names one host.

use std::fmt;

/// The longest name DNS carries, in text (RFC 1035: 255 bytes on the wire).
const MAX_NAME: usize = 253;
/// The longest label (RFC 1035).
const MAX_LABEL: usize = 63;
/// A label no rule of the Public Suffix List names, standing in for a wildcard when the
/// list is asked whether the names a pattern matches are suffixes (rule 3).
const PROBE_LABEL: &str = "0-auditor-probe";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Label {
    Literal(Box<str>),
    /// `*`: exactly one label.
    One,
    /// `**`: one or more labels.
    Many,
}

/// A parsed `dns:` pattern (see the module doc for the syntax and the rules).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsPattern {
    /// Lower-cased, without a trailing dot.
    text: Box<str>,
    labels: Vec<Label>,
}

/// Why a pattern was refused, and where: `offset` is the byte in the pattern text (as
/// written, from 0) where the fault is, for a `FILE:LINE:COLUMN` that points at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct PatternError {
    pub offset: usize,
    pub reason: String,
}

fn fault(offset: usize, reason: String) -> PatternError {
    PatternError { offset, reason }
}

impl DnsPattern {
    pub fn parse(text: &str) -> Result<DnsPattern, PatternError> {
        let body = text.strip_suffix('.').unwrap_or(text);
        if body.is_empty() {
            return Err(fault(
                0,
                "an empty DNS pattern: write a name such as \"*.redis.cache.windows.net\"".into(),
            ));
        }
        if body.len() > MAX_NAME {
            return Err(fault(
                MAX_NAME,
                format!(
                    "{} bytes is longer than a DNS name can be ({MAX_NAME})",
                    body.len()
                ),
            ));
        }
        let mut labels = Vec::new();
        let mut start = 0;
        for raw in body.split('.') {
            labels.push(label(raw, start)?);
            start += raw.len() + 1;
        }
        let pattern = DnsPattern {
            text: body.to_ascii_lowercase().into(),
            labels,
        };
        if pattern
            .labels
            .iter()
            .all(|l| !matches!(l, Label::Literal(_)))
        {
            return Err(fault(
                0,
                format!(
                    "{:?} is only wildcards: it would match every name; name the service's own \
                     domain, such as \"*.redis.cache.windows.net\"",
                    pattern.text
                ),
            ));
        }
        pattern.check_suffixes()?;
        Ok(pattern)
    }

    /// The pattern's text, lower-cased, without a trailing dot.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when the pattern has no wildcard: it is one name.
    pub fn is_exact(&self) -> bool {
        self.labels.iter().all(|l| matches!(l, Label::Literal(_)))
    }

    /// How many literal labels it has: of two patterns that match a name, the one with
    /// more is the more specific. An exact name always has more than any wildcard pattern
    /// that matches the same name (a wildcard stands for at least one of its labels).
    pub fn literal_labels(&self) -> usize {
        self.labels
            .iter()
            .filter(|l| matches!(l, Label::Literal(_)))
            .count()
    }

    /// The literal labels after the last wildcard (the whole name for an exact pattern):
    /// every name the pattern matches ends with them, so a table can be keyed by them.
    pub fn tail(&self) -> &str {
        match self.last_wildcard() {
            None => &self.text,
            Some(i) => {
                // Byte offset of label i + 1: after i + 1 labels and their dots.
                let skip: usize = self.labels[..=i].iter().map(|l| l.len() + 1).sum();
                self.text.get(skip..).unwrap_or("")
            }
        }
    }

    /// True when `name` (ASCII, any case, with or without the root's trailing dot) is one
    /// of the names the pattern stands for.
    pub fn matches(&self, name: &str) -> bool {
        let name = name.strip_suffix('.').unwrap_or(name);
        // An empty name names nothing; a name with bytes outside a hostname's (escaped
        // by `answer::display_name` as `\DDD`) is no name an entry can claim, even by `*`.
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return false;
        }
        // The pattern as a small automaton, state k = "the first k pattern labels are
        // matched", its states a bit set: a pattern has at most 127 labels (253 bytes),
        // so states 0..=127 fit in a u128.
        let n = self.labels.len();
        let mut states: u128 = 1;
        for part in name.split('.') {
            let mut next: u128 = 0;
            for (k, l) in self.labels.iter().enumerate() {
                if states & (1 << k) == 0 {
                    continue;
                }
                match l {
                    Label::Literal(s) if s.eq_ignore_ascii_case(part) => next |= 1 << (k + 1),
                    Label::Literal(_) => {}
                    Label::One => next |= 1 << (k + 1),
                    // One more label of the `**`, or its last.
                    Label::Many => next |= (1 << k) | (1 << (k + 1)),
                }
            }
            if next == 0 {
                return false;
            }
            states = next;
        }
        states & (1 << n) != 0
    }

    /// True when some name matches both patterns. (The two automata run together: a
    /// label is accepted by a pair of states unless both want literals that differ.)
    pub fn overlaps(&self, other: &DnsPattern) -> bool {
        let (a, b) = (&self.labels, &other.labels);
        let width = b.len() + 1;
        let mut seen = vec![false; (a.len() + 1) * width];
        let mut todo = vec![(0usize, 0usize)];
        seen[0] = true;
        while let Some((i, j)) = todo.pop() {
            if i == a.len() && j == b.len() {
                return true;
            }
            let (Some(x), Some(y)) = (a.get(i), b.get(j)) else {
                continue;
            };
            if let (Label::Literal(x), Label::Literal(y)) = (x, y)
                && x != y
            {
                continue;
            }
            let stay_a = matches!(x, Label::Many);
            let stay_b = matches!(y, Label::Many);
            for ni in [Some(i + 1), stay_a.then_some(i)].into_iter().flatten() {
                for nj in [Some(j + 1), stay_b.then_some(j)].into_iter().flatten() {
                    let at = ni * width + nj;
                    if !seen[at] {
                        seen[at] = true;
                        todo.push((ni, nj));
                    }
                }
            }
        }
        false
    }

    fn last_wildcard(&self) -> Option<usize> {
        self.labels
            .iter()
            .rposition(|l| !matches!(l, Label::Literal(_)))
    }

    /// Byte offset of label `i` in the text.
    fn offset_of(&self, i: usize) -> usize {
        self.labels[..i].iter().map(|l| l.len() + 1).sum()
    }

    /// The three rules of the module doc.
    fn check_suffixes(&self) -> Result<(), PatternError> {
        let Some(last) = self.last_wildcard() else {
            return Ok(());
        };
        let at = self.offset_of(last);
        let tail = self.tail();
        // Rule 1: the literal tail holds a registrable domain.
        if tail.is_empty() {
            return Err(fault(
                at,
                format!(
                    "{:?} ends with a wildcard: end it with the service's own domain, such as \
                     \"*.redis.cache.windows.net\"",
                    self.text
                ),
            ));
        }
        let Some(domain) = psl::domain_str(tail) else {
            let covered = tail;
            return Err(fault(
                at,
                format!(
                    "{:?} would cover {covered}, which is {}; the pattern would admit anyone's \
                     endpoint there (an attacker's bucket on the same provider, say): name a \
                     domain of your own under it, such as \"*.myaccount.{covered}\"",
                    self.text,
                    suffix_kind(covered)
                ),
            ));
        };
        // Rule 2: a literal label between each `**` and the registrable domain.
        let domain_labels = domain.split('.').count();
        let literal_end = self.labels.len() - domain_labels;
        for (i, l) in self.labels.iter().enumerate() {
            if *l != Label::Many {
                continue;
            }
            let between = &self.labels[i + 1..literal_end.max(i + 1)];
            if !between.iter().any(|l| matches!(l, Label::Literal(_))) {
                return Err(fault(
                    self.offset_of(i),
                    format!(
                        "{:?} would cover all of {domain}: a provider's domain is shared among \
                         its customers, so the pattern would admit anyone's endpoint under it (an \
                         attacker's bucket on the same provider, say); put a label of yours \
                         between \"**\" and {domain}, such as \"**.myaccount.{domain}\"",
                        self.text
                    ),
                ));
            }
        }
        // Rule 3: one label in place of the last wildcard must not make a public suffix.
        let probe = format!("{PROBE_LABEL}.{tail}");
        if psl::suffix_str(&probe) == Some(probe.as_str()) {
            return Err(fault(
                at,
                format!(
                    "every name {:?} matches is itself a public suffix (the Public Suffix List \
                     has the rule \"*.{tail}\", {}): each is handed out to another customer, so \
                     the pattern would admit anyone's endpoint there; name the customer's own \
                     name under it instead",
                    self.text,
                    section(psl::suffix(probe.as_bytes()).and_then(|s| s.typ()))
                ),
            ));
        }
        Ok(())
    }
}

impl Label {
    fn len(&self) -> usize {
        match self {
            Label::Literal(s) => s.len(),
            Label::One => 1,
            Label::Many => 2,
        }
    }
}

/// One label of the text, which starts at byte `start` of the pattern.
fn label(raw: &str, start: usize) -> Result<Label, PatternError> {
    if raw.is_empty() {
        return Err(fault(
            start,
            "an empty label (two dots in a row, or a leading dot)".into(),
        ));
    }
    if let Some((i, c)) = raw.char_indices().find(|(_, c)| !c.is_ascii()) {
        let hint = hickory_proto::rr::Name::from_utf8(raw)
            .ok()
            .map(|n| n.to_ascii())
            .map(|a| format!(" (\"{raw}\" is \"{}\")", a.trim_end_matches('.')))
            .unwrap_or_default();
        return Err(fault(
            start + i,
            format!(
                "{c:?} is not ASCII: write the name in its punycode form, the xn-- labels DNS \
                 carries{hint}"
            ),
        ));
    }
    if let Some((i, c)) = raw
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*')))
    {
        return Err(fault(
            start + i,
            format!(
                "{c:?} cannot be in a DNS pattern: labels are letters, digits, '-' and '_', \
                 and a wildcard is a whole label, \"*\" or \"**\""
            ),
        ));
    }
    match raw {
        "*" => return Ok(Label::One),
        "**" => return Ok(Label::Many),
        _ => {}
    }
    if let Some(i) = raw.find('*') {
        return Err(fault(
            start + i,
            format!(
                "\"{raw}\": a wildcard is a whole label, \"*\" (one label) or \"**\" (one or \
                 more); a '*' inside a label is not supported"
            ),
        ));
    }
    if raw.len() > MAX_LABEL {
        return Err(fault(
            start,
            format!(
                "a label of {} bytes is longer than DNS allows ({MAX_LABEL})",
                raw.len()
            ),
        ));
    }
    Ok(Label::Literal(raw.to_ascii_lowercase().into()))
}

/// What kind of public suffix `name` is, in words for an error.
fn suffix_kind(name: &str) -> String {
    let typ = psl::suffix(name.as_bytes()).and_then(|s| s.typ());
    format!("a public suffix ({})", section(typ))
}

fn section(typ: Option<psl::Type>) -> &'static str {
    match typ {
        Some(psl::Type::Icann) => {
            "ICANN section of the Public Suffix List: anyone can register a name under it"
        }
        Some(psl::Type::Private) => {
            "private section of the Public Suffix List: a provider hands out names under it to \
             its customers"
        }
        None => "a top-level name no rule of the Public Suffix List knows, taken as a suffix",
    }
}

impl fmt::Display for DnsPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> DnsPattern {
        DnsPattern::parse(text).unwrap_or_else(|e| panic!("{text}: {e} (at {})", e.offset))
    }

    fn refused(text: &str) -> PatternError {
        match DnsPattern::parse(text) {
            Ok(_) => panic!("{text} was accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn one_star_is_exactly_one_label() {
        let pat = p("*.redis.cache.windows.net");
        assert!(pat.matches("voice.redis.cache.windows.net"));
        assert!(!pat.matches("a.voice.redis.cache.windows.net"));
        assert!(!pat.matches("redis.cache.windows.net"));
        assert!(!pat.matches("voice.redis.cache.windows.com"));
    }

    #[test]
    fn two_stars_are_one_or_more_labels() {
        let pat = p("**.corp.example.com");
        assert!(pat.matches("db.corp.example.com"));
        assert!(pat.matches("a.b.c.corp.example.com"));
        assert!(!pat.matches("corp.example.com"));
        assert!(!pat.matches("db.lab.example.com"));
    }

    #[test]
    fn wildcards_in_the_middle() {
        let pat = p("*.s3.dualstack.*.amazonaws.com");
        assert!(pat.matches("bucket.s3.dualstack.eu-west-1.amazonaws.com"));
        assert!(!pat.matches("bucket.s3.dualstack.amazonaws.com"));
        assert!(!pat.matches("bucket.s3.dualstack.a.b.amazonaws.com"));
        let many = p("a.**.b.**.c.example.com");
        assert!(many.matches("a.x.b.y.c.example.com"));
        assert!(many.matches("a.x.y.b.b.z.c.example.com"));
        assert!(!many.matches("a.b.y.c.example.com"));
    }

    #[test]
    fn matching_ignores_case_and_the_root_dot() {
        let pat = p("*.Redis.Cache.Windows.NET.");
        assert_eq!(pat.as_str(), "*.redis.cache.windows.net");
        assert_eq!(pat.to_string(), "*.redis.cache.windows.net");
        assert!(pat.matches("VOICE.redis.cache.windows.net."));
        assert!(
            p("MyBucket.s3.eu-west-1.amazonaws.com").matches("mybucket.s3.eu-west-1.amazonaws.com")
        );
        assert!(!pat.matches(""));
    }

    #[test]
    fn exact_names_are_accepted_even_when_a_suffix() {
        assert!(p("amazonaws.com").is_exact());
        assert!(p("s3.amazonaws.com").matches("s3.amazonaws.com"));
        assert!(p("mybucket.s3.eu-west-1.amazonaws.com").is_exact());
        assert!(p("_sip._udp.example.com").is_exact());
    }

    #[test]
    fn malformed_patterns_say_where() {
        assert_eq!(refused("").offset, 0);
        assert_eq!(refused("a..example.com").offset, 2);
        assert_eq!(refused(".example.com").offset, 0);
        let e = refused("ab*.example.com");
        assert_eq!(e.offset, 2);
        assert!(e.reason.contains("whole label"), "{}", e.reason);
        assert_eq!(refused("***.example.com").offset, 0);
        let e = refused("a b.example.com");
        assert_eq!(e.offset, 1);
        let e = refused("bücher.example.com");
        assert_eq!(e.offset, 1);
        assert!(e.reason.contains("xn--bcher-kva"), "{}", e.reason);
        let long = format!("x.{}.example.com", "a".repeat(64));
        let e = refused(&long);
        assert_eq!(e.offset, 2);
        assert!(e.reason.contains("63"), "{}", e.reason);
        let huge = format!("{}example.com", "abcdefghi.".repeat(25));
        assert_eq!(refused(&huge).offset, 253);
        assert!(refused("*.**").reason.contains("only wildcards"));
        assert!(refused("*").reason.contains("only wildcards"));
        // 63-byte labels and 253 bytes are allowed.
        let max = format!(
            "{}.{}.{}.{}.com",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(57)
        );
        assert_eq!(max.len(), 253);
        p(&max);
    }

    /// Rule 1: the literal labels after the last wildcard hold a registrable domain.
    #[test]
    fn a_public_suffix_is_not_covered() {
        for (text, offset, covered) in [
            ("*.com", 0, "com"),
            ("**.co.uk", 0, "co.uk"),
            ("*.*.com", 2, "com"),
            ("**.s3.amazonaws.com", 0, "s3.amazonaws.com"),
            ("a.*.co.uk", 2, "co.uk"),
            ("**.blob.core.windows.net", 0, "blob.core.windows.net"),
        ] {
            let e = refused(text);
            assert_eq!(e.offset, offset, "{text}");
            assert!(
                e.reason.contains(&format!("cover {covered},")),
                "{text}: {}",
                e.reason
            );
            assert!(
                e.reason.contains("anyone's endpoint"),
                "{text}: {}",
                e.reason
            );
        }
        assert!(
            refused("**.s3.amazonaws.com")
                .reason
                .contains("private section")
        );
        assert!(refused("*.com").reason.contains("ICANN section"));
        assert!(refused("example.*").reason.contains("ends with a wildcard"));
        p("*.example.com");
        p("*.redis.cache.windows.net");
        p("*.s3.dualstack.*.amazonaws.com");
        p("*.svc.cluster.local");
    }

    /// Rule 2: a literal label between `**` and the registrable domain.
    #[test]
    fn two_stars_need_a_label_of_their_own() {
        for text in ["**.amazonaws.com", "**.example.com", "**.*.example.com"] {
            let e = refused(text);
            assert_eq!(e.offset, 0, "{text}");
            assert!(
                e.reason.contains("would cover all of"),
                "{text}: {}",
                e.reason
            );
        }
        assert!(
            refused("**.amazonaws.com")
                .reason
                .contains("all of amazonaws.com")
        );
        assert_eq!(refused("a.**.example.com").offset, 2);
        p("**.redis.cache.windows.net");
        p("**.corp.example.com");
        p("**.x.*.example.com");
    }

    /// Rule 3: `*.T` where the list has the rule `*.T`.
    #[test]
    fn a_wildcard_rule_of_the_list_is_not_covered() {
        // The list has `*.kawasaki.jp` (with an exception for city.kawasaki.jp), so
        // kawasaki.jp is registrable but every x.kawasaki.jp is a suffix.
        assert_eq!(psl::domain_str("kawasaki.jp"), Some("kawasaki.jp"));
        let e = refused("*.kawasaki.jp");
        assert!(e.reason.contains("\"*.kawasaki.jp\""), "{}", e.reason);
        assert!(e.reason.contains("ICANN"), "{}", e.reason);
        assert_eq!(refused("www.*.kawasaki.jp").offset, 4);
        p("*.city.kawasaki.jp");
        let e = refused("*.compute.amazonaws.com");
        assert!(e.reason.contains("private section"), "{}", e.reason);
    }

    #[test]
    fn tail_and_specificity() {
        assert_eq!(p("*.s3.dualstack.*.amazonaws.com").tail(), "amazonaws.com");
        assert_eq!(
            p("*.redis.cache.windows.net").tail(),
            "redis.cache.windows.net"
        );
        assert_eq!(p("a.example.com").tail(), "a.example.com");
        assert_eq!(p("*.s3.dualstack.*.amazonaws.com").literal_labels(), 4);
    }

    #[test]
    fn overlap() {
        let o = |a: &str, b: &str| p(a).overlaps(&p(b));
        assert!(o("*.b.example.com", "a.*.example.com"));
        assert!(o("**.x.example.com", "a.*.example.com"));
        assert!(!o("**.x.example.com", "*.*.y.example.com"));
        assert!(!o("*.b.example.com", "*.c.example.com"));
        assert!(!o("*.b.example.com", "*.*.b.example.com"));
        assert!(o("**.b.example.com", "*.*.b.example.com"));
        assert!(o("x.**.z.example.com", "**.y.z.example.com"));
        assert!(!o("x.**.z.example.com", "**.y.z.example.org"));
        assert!(o("a.example.com", "*.example.com"));
    }
}
