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
