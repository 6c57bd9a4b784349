//! Cleaning the text before any reader sees it: the encoding (BOM, UTF-16, cp1252), line
//! ends, and the invisible characters web pages and word processors leave in tables.

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};

/// A document's bytes as text, with the encoding it was read as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub text: String,
    /// "UTF-8", "UTF-16LE", "windows-1252", …
    pub encoding: &'static str,
}

/// Decodes a document: a BOM decides (UTF-8, UTF-16LE/BE); otherwise valid UTF-8 is UTF-8,
/// text with a NUL in every other byte is BOM-less UTF-16, and anything else is read as
/// Windows-1252 (cp1252), the encoding of text saved by Windows tools. Binary content
/// (NUL bytes that are not UTF-16) is an error.
pub fn decode(bytes: &[u8]) -> Result<Decoded, String> {
    if let Some((encoding, bom)) = Encoding::for_bom(bytes) {
        let (text, had_errors) = encoding.decode_without_bom_handling(&bytes[bom..]);
        if had_errors {
            return Err(format!(
                "the file starts with a {} byte-order mark but is not valid {}",
                encoding.name(),
                encoding.name()
            ));
        }
        return Ok(Decoded {
            text: text.into_owned(),
            encoding: encoding.name(),
        });
    }
    if let Ok(text) = std::str::from_utf8(bytes)
        && !text.contains('\0')
    {
        return Ok(Decoded {
            text: text.to_string(),
            encoding: UTF_8.name(),
        });
    }
    if let Some(encoding) = bomless_utf16(bytes) {
        let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
        if !had_errors {
            return Ok(Decoded {
                text: text.into_owned(),
                encoding: encoding.name(),
            });
        }
    }
    if bytes.contains(&0) {
        return Err(
            "the file is binary, not text: give the document's text, an HTML page, or a PDF".into(),
        );
    }
    let (text, _) = WINDOWS_1252.decode_without_bom_handling(bytes);
    Ok(Decoded {
        text: text.into_owned(),
        encoding: WINDOWS_1252.name(),
    })
}

/// UTF-16 without a BOM: ASCII text has a NUL in every other byte.
fn bomless_utf16(bytes: &[u8]) -> Option<&'static Encoding> {
    if bytes.len() < 4 || !bytes.len().is_multiple_of(2) {
        return None;
    }
    let pairs = bytes.len() / 2;
    let zero_at = |parity: usize| {
        bytes
            .iter()
            .skip(parity)
            .step_by(2)
            .filter(|b| **b == 0)
            .count()
    };
    let (even, odd) = (zero_at(0), zero_at(1));
    if odd * 10 >= pairs * 9 && even == 0 {
        Some(UTF_16LE)
    } else if even * 10 >= pairs * 9 && odd == 0 {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// Line ends become `\n`; non-breaking and other fixed-width spaces become spaces; zero-width
/// characters and stray byte-order marks go. Line numbers are kept.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            '\u{00A0}' | '\u{2007}' | '\u{202F}' | '\u{2002}' | '\u{2003}' | '\u{2009}' => {
                out.push(' ')
            }
            // A form feed starts each page of `pdftotext` output, before the page's first line.
            '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
            | '\u{000C}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boms_utf16_and_cp1252_decode() {
        let d = decode(b"\xEF\xBB\xBFSource\tPort").unwrap();
        assert_eq!((d.text.as_str(), d.encoding), ("Source\tPort", "UTF-8"));
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("Caf\u{e9}\tx".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode(&utf16).unwrap().text, "Caf\u{e9}\tx");
        let be: Vec<u8> = "ab\tc".encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(decode(&be).unwrap().text, "ab\tc");
        let d = decode(b"Caf\xe9 \x96 8080").unwrap();
        assert_eq!(
            (d.text.as_str(), d.encoding),
            ("Caf\u{e9} \u{2013} 8080", "windows-1252")
        );
        assert!(decode(b"\x00\x01\x02\xff\x00").is_err());
    }

    #[test]
    fn invisible_characters_and_line_ends_are_cleaned() {
        assert_eq!(
            clean("\u{FEFF}a\u{00A0}b\u{200B}c\r\nd\re\n\u{000C}f"),
            "a bc\nd\ne\nf"
        );
    }
}
