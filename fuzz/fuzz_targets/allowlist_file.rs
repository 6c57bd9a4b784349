//! Any allowlist or overrides file must parse or fail with a located error; a valid
//! one must build a policy and answer lookups without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(list) = allowlist::file::parse(text, "fuzz.yaml") {
        let _ = allowlist::lint::lint(&list);
        let policy = allowlist::RuleIndex::new(&list, &allowlist::Overrides::default());
        for s in &list.services {
            for d in &list.services {
                let _ = policy.lookup_names(&s.name, &d.name, allowlist::Transport::Tcp, 443);
            }
        }
    }
    let seed = allowlist::file::parse(include_str!("../../allowlist/voice-microservices.yaml"), "seed.yaml").expect("seed");
    let _ = allowlist::overrides::parse(text, "fuzz-overrides.yaml", &seed);
});
