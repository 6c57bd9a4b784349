//! Any text given to `auditor allowlist import` must give an allowlist or an error, and
//! whatever imports must survive the YAML round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Any bytes: decoding (BOM, UTF-16, cp1252) must not panic either.
    let _ = allowlist::import_bytes(data, None, allowlist::ImportOptions { lenient: true });
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(list) = allowlist::import(text, None) {
        let yaml = allowlist::file::to_yaml(&list, &[]);
        let back = allowlist::file::parse(&yaml, "fuzz.yaml").expect("an imported allowlist reads back");
        assert_eq!(back, list);
        let _ = allowlist::lint::lint(&list);
    }
});
