//! The inventory's `dns:` patterns as one lookup table: which entry a DNS name is.
//!
//! Exact names sit in one map; wildcard patterns are keyed by their literal tail (the
//! labels after their last wildcard, which every name they match ends with), so a lookup
//! probes the exact map once and the tail map once per label of the name, and tests only
//! the patterns under the tails the name ends with.
//!
//! The most specific pattern wins: the one with more literal labels. An exact name beats
//! every wildcard pattern (a wildcard stands for at least one label). Two entries whose
//! patterns have as many literal labels and match a common name are refused at load, as
//! two entries claiming one exact name are: the inventory would not say which entry that
//! name is. Overlaps inside one entry are harmless and allowed.

use std::{collections::HashMap, sync::Arc};

use allowlist::FileError;

use crate::dns::pattern::DnsPattern;

/// Where a pattern is written: a conflict blames the later one and names the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct At {
    pub(super) line: u64,
    pub(super) column: u64,
}

#[derive(Debug, Clone)]
struct Claim {
    pattern: DnsPattern,
    /// The pattern's text, shared by every `Via::Dns` that names it.
    text: Arc<str>,
    id: u32,
    at: At,
}

#[derive(Debug, Clone, Default)]
pub(super) struct DnsNames {
    claims: Vec<Claim>,
    exact: HashMap<Box<str>, usize>,
    by_tail: HashMap<Box<str>, Vec<usize>>,
}

impl DnsNames {
    /// Adds entry `id`'s pattern; an exact name another entry claimed is refused (`names`:
    /// the entries' names, by id, for the message).
    pub(super) fn insert(
        &mut self,
        pattern: DnsPattern,
        id: u32,
        at: At,
        origin: &str,
        names: &[Arc<str>],
    ) -> Result<(), FileError> {
        let key: Box<str> = pattern.as_str().into();
        if pattern.is_exact() {
            if let Some(&prev) = self.exact.get(&key) {
                let first = &self.claims[prev];
                if first.id == id {
                    return Ok(());
                }
                return Err(conflict(
                    origin,
                    names,
                    (first.id, first.at, &first.text),
                    (id, at, pattern.as_str()),
                    "is already declared for",
                ));
            }
            self.exact.insert(key, self.claims.len());
        } else {
            let same = self.by_tail.get(pattern.tail()).and_then(|v| {
                v.iter()
                    .find(|&&i| self.claims[i].pattern == pattern && self.claims[i].id == id)
            });
            if same.is_some() {
                return Ok(());
            }
            self.by_tail
                .entry(pattern.tail().into())
                .or_default()
                .push(self.claims.len());
        }
        self.claims.push(Claim {
            text: pattern.as_str().into(),
            pattern,
            id,
            at,
        });
        Ok(())
    }

    /// Refuses two entries' wildcard patterns that are as specific as each other and
    /// match a common name (a duplicate wildcard pattern is such a pair). Called once,
    /// after every pattern is in.
    pub(super) fn check_ties(&self, origin: &str, names: &[Arc<str>]) -> Result<(), FileError> {
        for (i, a) in self.claims.iter().enumerate() {
            if a.pattern.is_exact() {
                continue;
            }
            // Patterns that can overlap `a` have a tail that `a`'s tail ends with, or one
            // that ends with `a`'s: looking from each side finds every pair once or twice.
            for tail in suffixes(a.pattern.tail()) {
                for &j in self.by_tail.get(tail).into_iter().flatten() {
                    let b = &self.claims[j];
                    if j == i
                        || b.id == a.id
                        || b.pattern.literal_labels() != a.pattern.literal_labels()
                        || !a.pattern.overlaps(&b.pattern)
                    {
                        continue;
                    }
                    let (first, second) = if a.at <= b.at { (a, b) } else { (b, a) };
                    return Err(conflict(
                        origin,
                        names,
                        (first.id, first.at, &first.text),
                        (second.id, second.at, &second.text),
                        "matches the same names, with as many literal labels, as",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The entry that claims `name` (lower-case ASCII, no trailing dot), and its pattern.
    pub(super) fn lookup(&self, name: &str) -> Option<(u32, &Arc<str>)> {
        if let Some(&i) = self.exact.get(name) {
            let c = &self.claims[i];
            return Some((c.id, &c.text));
        }
        if self.by_tail.is_empty() {
            return None;
        }
        // A wildcard stands for at least the first label: the tails to try start after it.
        let mut best: Option<&Claim> = None;
        for tail in suffixes(name).skip(1) {
            for &i in self.by_tail.get(tail).into_iter().flatten() {
                let c = &self.claims[i];
                let better =
                    best.is_none_or(|b| c.pattern.literal_labels() > b.pattern.literal_labels());
                if better && c.pattern.matches(name) {
                    best = Some(c);
                }
            }
        }
        best.map(|c| (c.id, &c.text))
    }
}

/// `name` and each name it ends with at a label boundary, longest first:
/// `a.b.c`, `b.c`, `c`.
fn suffixes(name: &str) -> impl Iterator<Item = &str> {
    std::iter::once(name).chain(name.match_indices('.').map(move |(i, _)| &name[i + 1..]))
}

/// The error for two entries' claims on the same names: at the later one, naming the
/// first and its line.
fn conflict(
    origin: &str,
    names: &[Arc<str>],
    first: (u32, At, &str),
    second: (u32, At, &str),
    relation: &str,
) -> FileError {
    let name = |id: u32| names.get(id as usize).map_or("?", |n| n.as_ref());
    let same = first.2 == second.2;
    let message = if same {
        format!(
            "{}: dns name {:?} is already declared for {} (line {}); a name is one entry's",
            name(second.0),
            second.2,
            name(first.0),
            first.1.line
        )
    } else {
        format!(
            "{}: dns pattern {:?} {relation} {:?} of {} (line {}); neither is more specific, so \
             the inventory would not say which entry such a name is: make one of them narrower",
            name(second.0),
            second.2,
            first.2,
            name(first.0),
            first.1.line
        )
    };
    FileError {
        origin: origin.to_string(),
        line: second.1.line,
        column: second.1.column,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(u32, &str)]) -> Result<DnsNames, FileError> {
        let names: Vec<Arc<str>> = vec!["Redis".into(), "Object storage".into()];
        let mut t = DnsNames::default();
        for (n, (id, p)) in entries.iter().enumerate() {
            let at = At {
                line: n as u64 + 1,
                column: 1,
            };
            t.insert(
                DnsPattern::parse(p).expect("pattern"),
                *id,
                at,
                "inv.yaml",
                &names,
            )?;
        }
        t.check_ties("inv.yaml", &names)?;
        Ok(t)
    }

    #[test]
    fn the_most_specific_pattern_wins() {
        let t = table(&[
            (0, "**.corp.example.com"),
            (1, "*.blob.corp.example.com"),
            (0, "mine.blob.corp.example.com"),
        ])
        .expect("table");
        let who = |n: &str| t.lookup(n).map(|(id, p)| (id, p.to_string()));
        assert_eq!(
            who("x.corp.example.com"),
            Some((0, "**.corp.example.com".into()))
        );
        assert_eq!(
            who("x.blob.corp.example.com"),
            Some((1, "*.blob.corp.example.com".into()))
        );
        assert_eq!(
            who("a.x.blob.corp.example.com"),
            Some((0, "**.corp.example.com".into()))
        );
        assert_eq!(
            who("mine.blob.corp.example.com"),
            Some((0, "mine.blob.corp.example.com".into()))
        );
        assert_eq!(who("corp.example.com"), None);
        assert_eq!(who("x.example.com"), None);
    }

    #[test]
    fn one_exact_name_for_two_entries_is_refused() {
        let e = table(&[(0, "cache.example.com"), (1, "Cache.Example.com.")]).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            e.message
                .contains("\"cache.example.com\" is already declared for Redis (line 1)"),
            "{}",
            e.message
        );
        // One entry writing it twice is harmless.
        table(&[(0, "cache.example.com"), (0, "cache.example.com")]).expect("same entry");
    }

    #[test]
    fn equally_specific_overlapping_patterns_of_two_entries_are_refused() {
        let e = table(&[(0, "*.b.example.com"), (1, "a.*.example.com")]).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            e.message
                .starts_with("Object storage: dns pattern \"a.*.example.com\""),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("\"*.b.example.com\" of Redis (line 1)"),
            "{}",
            e.message
        );
        let e = table(&[(1, "*.b.example.com"), (0, "*.b.example.com")]).unwrap_err();
        assert_eq!(e.line, 2);
        // Disjoint, or of one entry, or more specific: allowed.
        table(&[(0, "*.b.example.com"), (1, "*.c.example.com")]).expect("disjoint");
        table(&[(0, "*.b.example.com"), (0, "a.*.example.com")]).expect("one entry");
        table(&[(0, "*.b.example.com"), (1, "a.*.b.example.com")]).expect("narrower");
    }
}
