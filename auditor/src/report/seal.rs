//! A report's own digest: the sha256 of its canonical JSON, set last (`seal`) and
//! checked by `merge` and `auditor report verify`.

use anyhow::bail;

use super::Report;

/// sha256 of the report's canonical JSON (compact, `digest` null).
pub fn compute_digest(r: &Report) -> String {
    let mut copy = r.clone();
    copy.digest = None;
    crate::provenance::sha256_hex(
        serde_json::to_string(&copy)
            .expect("a report serialises")
            .as_bytes(),
    )
}

/// Sets the report's own digest (last, after everything else is final).
pub fn seal(r: &mut Report) {
    r.digest = Some(compute_digest(r));
}

/// A report that carries a digest must match it.
pub(super) fn check_digest(name: &str, r: &Report) -> anyhow::Result<()> {
    if let Some(d) = &r.digest {
        let actual = compute_digest(r);
        if *d != actual {
            bail!(
                "{name}: its digest {d} does not match its content (sha256 {actual}): the report was edited after it was written"
            );
        }
    }
    Ok(())
}
