//! Signed reports. `--sign KEY` signs the bytes of the written report file with ed25519
//! and writes a detached signature next to it (`REPORT.sig`); `auditor report verify`
//! checks them, and for a JSON report also recomputes its own digest.
//!
//! Key files are the standard ones OpenSSL writes, so no auditor tool is needed to make
//! them: the private key is PKCS#8 PEM (`openssl genpkey -algorithm ed25519 -out key.pem`),
//! the public key SPKI PEM (`openssl pkey -in key.pem -pubout -out key.pub.pem`).
//!
//! The signature file is text:
//!
//! ```text
//! auditor-signature/1 ed25519
//! key-sha256: <sha256 of the public key's 32 bytes, hex>
//! signature: <the 64-byte ed25519 signature of the report file's bytes, hex>
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ed25519_dalek::{
    Signature, Signer, SigningKey, Verifier, VerifyingKey,
    pkcs8::{DecodePrivateKey, DecodePublicKey},
};

use crate::provenance::sha256_hex;

const HEADER: &str = "auditor-signature/1 ed25519";

/// Where a report's detached signature goes: `report.json` -> `report.json.sig`.
pub fn signature_path(report: &Path) -> PathBuf {
    let mut p = report.as_os_str().to_owned();
    p.push(".sig");
    PathBuf::from(p)
}

pub fn load_private(path: &Path) -> anyhow::Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the signing key", path.display()))?;
    SigningKey::from_pkcs8_pem(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: not an ed25519 private key in PKCS#8 PEM ({e}); make one with \
             `openssl genpkey -algorithm ed25519 -out key.pem`",
            path.display()
        )
    })
}

pub fn load_public(path: &Path) -> anyhow::Result<VerifyingKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the public key", path.display()))?;
    VerifyingKey::from_public_key_pem(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: not an ed25519 public key in SPKI PEM ({e}); derive it with \
             `openssl pkey -in key.pem -pubout -out key.pub.pem`",
            path.display()
        )
    })
}

/// The text of the signature file for `content`.
pub fn sign(key: &SigningKey, content: &[u8]) -> String {
    let sig = key.sign(content);
    format!(
        "{HEADER}\nkey-sha256: {}\nsignature: {}\n",
        sha256_hex(key.verifying_key().as_bytes()),
        // ed25519's Signature writes (and parses, in `verify`) itself as hex.
        format_args!("{sig:x}")
    )
}

/// Why a report does not verify (exit 1), as opposed to an error (exit 2).
#[derive(Debug)]
pub struct Mismatch(pub String);

/// Checks `content` against the signature file's text. `Ok(Err(..))` is a report that
/// does not verify; `Err` is a signature file that cannot be read at all.
pub fn verify(
    key: &VerifyingKey,
    content: &[u8],
    sig_text: &str,
    sig_name: &str,
) -> anyhow::Result<Result<(), Mismatch>> {
    let mut lines = sig_text.lines();
    if lines.next() != Some(HEADER) {
        bail!("{sig_name}: not an auditor signature file (first line is not {HEADER:?})");
    }
    let (mut key_digest, mut sig_hex) = (None, None);
    for l in lines {
        if let Some(v) = l.strip_prefix("key-sha256: ") {
            key_digest = Some(v.trim().to_string());
        } else if let Some(v) = l.strip_prefix("signature: ") {
            sig_hex = Some(v.trim().to_string());
        }
    }
    let sig_hex = sig_hex.with_context(|| format!("{sig_name}: no `signature:` line"))?;
    let signature: Signature = sig_hex
        .parse()
        .ok()
        .with_context(|| format!("{sig_name}: the signature is not 64 bytes of hex"))?;
    let ours = sha256_hex(key.as_bytes());
    if let Some(k) = key_digest
        && k != ours
    {
        return Ok(Err(Mismatch(format!(
            "signed by another key (key-sha256 {k}; the given key's is {ours})"
        ))));
    }
    Ok(key
        .verify(content, &signature)
        .map_err(|_| Mismatch("the signature does not match the report's bytes: the report was edited after it was signed".into())))
}
