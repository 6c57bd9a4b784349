//! Inventory mistakes are reported at the entry that makes them, whatever the order of
//! the names.

use auditor::identity::Inventory;

#[test]
fn a_duplicate_address_is_blamed_on_the_later_entry_naming_the_first() {
    // Entries are read in name order: Zeta (first in the file) is read after Alpha.
    let text = "version: 1\nservices:\n  Zeta:\n    addresses: [10.0.0.0/24]\n  Alpha:\n    addresses: [10.0.0.9/24]\n";
    let e = Inventory::parse(text, "inv.yaml").unwrap_err();
    assert_eq!(
        e.to_string(),
        "inv.yaml:6:5: Alpha: 10.0.0.0/24 is already declared for Zeta (line 4)"
    );
    // In name order too.
    let text = "version: 1\nservices:\n  Alpha:\n    addresses: [10.0.0.0/24]\n  Zeta:\n    addresses: [10.0.0.9/24]\n";
    let e = Inventory::parse(text, "inv.yaml").unwrap_err();
    assert_eq!(
        e.to_string(),
        "inv.yaml:6:5: Zeta: 10.0.0.0/24 is already declared for Alpha (line 4)"
    );
}

/// A `dns:` pattern's fault is reported at the character that makes it, in a plain or a
/// quoted scalar, in flow or block sequences.
#[test]
fn a_bad_dns_pattern_is_reported_at_its_fault() {
    // Unquoted, `*.com` is a YAML alias: the error says to quote it.
    let text = "version: 1\nexternals:\n  Mail:\n    dns: [*.com]\n";
    let e = Inventory::parse(text, "inv.yaml").unwrap_err().to_string();
    assert!(
        e.starts_with("inv.yaml:4:11: a value that begins with `*` is a YAML alias"),
        "{e}"
    );
    // Quoted: the `*` of `"*.com"` is column 12, after the quote at 11.
    let text = "version: 1\nexternals:\n  Mail:\n    dns: ['*.com']\n";
    let e = Inventory::parse(text, "inv.yaml").unwrap_err().to_string();
    assert!(e.starts_with("inv.yaml:4:12: Mail: dns \"*.com\": "), "{e}");
    assert!(e.contains("public suffix"), "{e}");
    // Quoted: `**` of `**.s3.amazonaws.com` at column 12, after the quote at 11.
    let text = "version: 1\nexternals:\n  Object storage:\n    dns: [\"**.s3.amazonaws.com\"]\n";
    let e = Inventory::parse(text, "inv.yaml").unwrap_err().to_string();
    assert!(
        e.starts_with("inv.yaml:4:12: Object storage: dns \"**.s3.amazonaws.com\": "),
        "{e}"
    );
    assert!(
        e.contains("s3.amazonaws.com") && e.contains("private section"),
        "{e}"
    );
    // Malformed, in a block sequence: the `*` inside `ab*` is byte 2 of the scalar whose
    // quote is at column 9 of line 6: column 12.
    let text = "version: 1\nservices:\n  Redis:\n    dns:\n      - ok.example.com\n      - 'ab*.example.com'\n";
    let e = Inventory::parse(text, "inv.yaml").unwrap_err().to_string();
    assert!(
        e.starts_with("inv.yaml:6:12: Redis: dns \"ab*.example.com\": "),
        "{e}"
    );
    assert!(e.contains("whole label"), "{e}");
    // An empty label.
    let text = "version: 1\nservices:\n  Redis:\n    dns: [a..example.com]\n";
    let e = Inventory::parse(text, "inv.yaml").unwrap_err().to_string();
    assert!(
        e.starts_with("inv.yaml:4:13: Redis: dns \"a..example.com\": an empty label"),
        "{e}"
    );
}

#[test]
fn one_dns_name_for_two_entries_is_blamed_on_the_later_naming_the_first() {
    let text = "version: 1\nservices:\n  Zeta:\n    dns: [cache.example.com]\nexternals:\n  Alpha:\n    dns: [CACHE.example.com.]\n";
    let e = Inventory::parse(text, "inv.yaml").unwrap_err().to_string();
    assert_eq!(
        e,
        "inv.yaml:7:11: Alpha: dns name \"cache.example.com\" is already declared for Zeta \
         (line 4); a name is one entry's"
    );
}

#[test]
fn an_external_needs_addresses_or_names() {
    let text = "version: 1\nexternals:\n  Nowhere: {}\n";
    let e = Inventory::parse(text, "inv.yaml").unwrap_err().to_string();
    assert!(
        e.starts_with(
            "inv.yaml:3:12: Nowhere: an external needs its addresses, its dns names, or both"
        ),
        "{e}"
    );
}

/// A service with both addresses and names is found by either; the most specific
/// pattern wins; `via` says which pattern.
#[test]
fn entries_are_found_by_name_and_by_address() {
    use auditor::identity::{IdentitySource, Resolver};
    let text = "version: 1
services:
  Redis:
    addresses: [10.0.5.0/24]
    dns: [\"*.redis.cache.windows.net\", redis.voice.svc.cluster.local]
externals:
  Object storage:
    dns: [mybucket.s3.eu-west-1.amazonaws.com, \"**.storage.corp.example.com\"]
  Archive:
    dns: [\"*.archive.storage.corp.example.com\"]
";
    let inv = Inventory::parse(text, "inv.yaml").unwrap_or_else(|e| panic!("{e}"));
    let named = |n: &str| {
        inv.named(n, 443)
            .map(|r| (r.service.to_string(), r.via.to_string()))
    };
    let pair = |s: &str, v: &str| Some((s.to_string(), v.to_string()));
    assert_eq!(
        named("voice.redis.cache.windows.net"),
        pair("Redis", "dns:*.redis.cache.windows.net")
    );
    assert_eq!(
        named("Voice.Redis.Cache.Windows.Net."),
        pair("Redis", "dns:*.redis.cache.windows.net")
    );
    assert_eq!(named("a.voice.redis.cache.windows.net"), None);
    assert_eq!(
        named("redis.voice.svc.cluster.local"),
        pair("Redis", "dns:redis.voice.svc.cluster.local")
    );
    assert_eq!(
        named("mybucket.s3.eu-west-1.amazonaws.com"),
        pair("Object storage", "dns:mybucket.s3.eu-west-1.amazonaws.com")
    );
    assert_eq!(named("theirbucket.s3.eu-west-1.amazonaws.com"), None);
    assert_eq!(
        named("a.b.storage.corp.example.com"),
        pair("Object storage", "dns:**.storage.corp.example.com")
    );
    assert_eq!(
        named("x.archive.storage.corp.example.com"),
        pair("Archive", "dns:*.archive.storage.corp.example.com")
    );
    // The address still works.
    let by_addr = inv.remote("10.0.5.7".parse().unwrap(), 6380).unwrap();
    assert_eq!(&*by_addr.service, "Redis");
    assert_eq!(by_addr.via.to_string(), "address/24");

    // The resolver asks for each name in order: the first one known wins, with its index.
    let resolver = Resolver::new(vec![Box::new(inv)]);
    let (r, i) = resolver
        .named(
            &[
                "cache.voice.internal",
                "x.redis.cache.windows.net",
                "mybucket.s3.eu-west-1.amazonaws.com",
            ],
            6380,
        )
        .unwrap();
    assert_eq!((&*r.service, i), ("Redis", 1));
    assert!(resolver.named(&["unknown.example.org"], 443).is_none());
}
