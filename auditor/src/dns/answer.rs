//! One DNS response message (a UDP datagram, or one message of a TCP stream) read into
//! the addresses it names, each with the chain of names that led to it.
//!
//! hickory-proto's `BinDecoder` reads the wire format (names with compression, which it
//! bounds: a pointer must point backwards, so it cannot loop). We read the header, the
//! question and the answer section record by record ourselves instead of
//! `Message::from_vec`: only A, AAAA and CNAME data is decoded, other records are skipped
//! by their length, and the authority and additional sections are never read. So a record
//! type hickory cannot decode, or a damaged additional section, does not cost the
//! addresses, and a hostile message costs at most one pass over its bytes.

use std::collections::HashSet;
use std::net::IpAddr;

use hickory_proto::op::{Header, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, DecodeError};

/// The most names in one chain: the question and up to 15 CNAME targets. Resolvers stop
/// well before this (BIND follows 16 CNAMEs, dnsmasq fewer); it is the loop guard too.
pub const MAX_CHAIN: usize = 16;

/// What one response says about addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The message id (for matching the answer to its query).
    pub id: u16,
    /// The name asked for (the first question), as [`display_name`] writes it.
    pub question: Option<String>,
    /// One per distinct A/AAAA address reached from the question name, in answer order.
    pub resolutions: Vec<Resolution>,
    /// A and AAAA records in a NOERROR answer section that no chain from the question
    /// reaches.
    /// They are not used (a resolver has no business vouching for names nobody asked
    /// about; it is how cache poisoning looks); the caller may count them.
    pub unrelated: usize,
}

/// One address and the names that led to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub addr: IpAddr,
    /// The question name first, then each CNAME target in chain order; the last is the
    /// A/AAAA record's owner. No name twice.
    pub names: Vec<String>,
    /// Seconds: the smallest TTL along the chain (its CNAMEs and the address record), as
    /// the resolver would cache it.
    pub ttl: u32,
}

/// Why a message could not be read. Every message the caller hands over either reads or
/// is one of these, so it can count each by [`AnswerError::kind`].
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error(
        "the DNS message ends before the records its header announces: only part of it was copied (a copy bound smaller than the answer, or a TCP stream joined midway), or its sender is broken"
    )]
    Truncated,
    #[error("the DNS message is malformed ({0}): its sender is broken or hostile")]
    Malformed(String),
    #[error("the DNS message is a query, not a response")]
    NotAResponse,
    #[error("the DNS message has opcode {0}, not a standard query's answer")]
    NotAQuery(u8),
}

impl AnswerError {
    /// A stable snake_case label (a metric label value).
    pub fn kind(&self) -> &'static str {
        match self {
            AnswerError::Truncated => "truncated",
            AnswerError::Malformed(_) => "malformed",
            AnswerError::NotAResponse => "not_a_response",
            AnswerError::NotAQuery(_) => "not_a_query",
        }
    }
}

impl From<DecodeError> for AnswerError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::InsufficientBytes => AnswerError::Truncated,
            e => AnswerError::Malformed(e.to_string()),
        }
    }
}

/// One answer-section record we care about.
enum Data {
    Addr(IpAddr),
    Cname(String),
}

struct Rec {
    owner: String,
    ttl: u32,
    data: Data,
}

/// Reads one DNS response. A response that names no address (NXDOMAIN, NODATA, an error
/// code, only other record types) is `Ok` with no resolutions: search-domain expansion
/// makes many of those, and they are not failures. A response cut to fit UDP (the TC
/// bit) is read for what it holds; the client asks again over TCP, and that answer is
/// read too.
pub fn read(message: &[u8]) -> Result<Answer, AnswerError> {
    let mut d = BinDecoder::new(message);
    let header = Header::read(&mut d)?;
    let meta = header.metadata;
    if meta.message_type != MessageType::Response {
        return Err(AnswerError::NotAResponse);
    }
    if meta.op_code != OpCode::Query {
        return Err(AnswerError::NotAQuery(meta.op_code.into()));
    }

    // The question: its name, then type and class, which we do not need (the answer's
    // records say what they are).
    let mut question = None;
    for _ in 0..header.counts.queries {
        let name = Name::read(&mut d)?;
        d.read_slice(4)?;
        question.get_or_insert_with(|| display_name(&name));
    }

    let mut records = Vec::new();
    for _ in 0..header.counts.answers {
        if let Some(rec) = read_record(&mut d)? {
            records.push(rec);
        }
    }

    let mut answer = Answer {
        id: meta.id,
        question,
        resolutions: Vec::new(),
        unrelated: 0,
    };
    // Only a NOERROR answer names addresses; an NXDOMAIN that still carries address
    // records is not one to believe.
    if meta.response_code != ResponseCode::NoError {
        return Ok(answer);
    }
    let Some(question) = answer.question.clone() else {
        answer.unrelated = records
            .iter()
            .filter(|r| matches!(r.data, Data::Addr(_)))
            .count();
        return Ok(answer);
    };

    // Follow the chain from the question: at each name take its addresses, then its
    // first CNAME (a name has at most one; more is a broken zone and the first wins).
    let mut used = vec![false; records.len()];
    let mut chain = vec![question];
    let mut ttl = u32::MAX;
    let mut seen_addrs = HashSet::new();
    while let Some(current) = chain.last() {
        let mut next = None;
        for (i, rec) in records.iter().enumerate() {
            if rec.owner != *current {
                continue;
            }
            match &rec.data {
                Data::Addr(addr) => {
                    used[i] = true;
                    let rec_ttl = ttl.min(rec.ttl);
                    if seen_addrs.insert(*addr) {
                        answer.resolutions.push(Resolution {
                            addr: *addr,
                            names: chain.clone(),
                            ttl: rec_ttl,
                        });
                    } else if let Some(r) = answer.resolutions.iter_mut().find(|r| r.addr == *addr)
                    {
                        r.ttl = r.ttl.min(rec_ttl);
                    }
                }
                Data::Cname(target) if next.is_none() => next = Some((target, rec.ttl)),
                Data::Cname(_) => {}
            }
        }
        match next {
            // A CNAME back to a name already in the chain is a loop: the chain so far
            // stands, it just goes no further.
            Some((target, cname_ttl)) if chain.len() < MAX_CHAIN && !chain.contains(target) => {
                ttl = ttl.min(cname_ttl);
                chain.push(target.clone());
            }
            _ => break,
        }
    }
    answer.unrelated = records
        .iter()
        .zip(&used)
        .filter(|(r, used)| matches!(r.data, Data::Addr(_)) && !**used)
        .count();
    Ok(answer)
}

/// One resource record; `None` for those that name no address or alias (skipped by their
/// length), or that are not class IN.
fn read_record(d: &mut BinDecoder<'_>) -> Result<Option<Rec>, AnswerError> {
    let owner = Name::read(d)?;
    let rtype = RecordType::from(d.read_u16()?.unverified(/*any type is read or skipped*/));
    let class = DNSClass::from(d.read_u16()?.unverified(/*compared below*/));
    let ttl = ttl_seconds(d.read_u32()?.unverified(/*clamped by ttl_seconds*/));
    let len = usize::from(d.read_u16()?.unverified(/*read_slice bounds it*/));
    let start = d.index();
    let data = match rtype {
        RecordType::A if len == 4 => Data::Addr(IpAddr::V4(A::read(d)?.0)),
        RecordType::AAAA if len == 16 => Data::Addr(IpAddr::V6(AAAA::read(d)?.0)),
        RecordType::CNAME => {
            let target = Name::read(d)?;
            if d.index() - start != len {
                return Err(AnswerError::Malformed(format!(
                    "a CNAME record's data is {} bytes, its length says {len}",
                    d.index() - start
                )));
            }
            Data::Cname(display_name(&target))
        }
        // An A or AAAA of the wrong length is malformed; it names nothing either way.
        _ => {
            d.read_slice(len)?;
            return Ok(None);
        }
    };
    if class != DNSClass::IN {
        return Ok(None);
    }
    Ok(Some(Rec {
        owner: display_name(&owner),
        ttl,
        data,
    }))
}

/// RFC 2181 §8: a TTL with the top bit set is read as zero.
fn ttl_seconds(raw: u32) -> u32 {
    if raw > i32::MAX as u32 { 0 } else { raw }
}

/// A name as every output writes it: lower-case ASCII labels joined by dots, no trailing
/// dot, the root as ".". A byte outside `[a-z0-9-_]` (after lower-casing) is escaped as
/// `\DDD`, its decimal value, as zone files write it, rather than dropped: the name stays
/// printable ASCII and cannot pass for another name (a dot inside a label becomes `\046`,
/// so `evil.com` in one label is not two), yet an odd name is still seen for what it is
/// in a violation. No `dns:` pattern matches an escaped name: `DnsPattern::matches`
/// refuses any name with a byte outside a hostname's, wildcards included.
pub fn display_name(name: &Name) -> String {
    let mut out = String::with_capacity(name.len());
    for label in name.iter() {
        if !out.is_empty() {
            out.push('.');
        }
        for &b in label {
            let b = b.to_ascii_lowercase();
            if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("\\{b:03}"));
            }
        }
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::str::FromStr;

    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::rdata::CNAME;
    use hickory_proto::rr::{RData, Record};
    use proptest::prelude::*;

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    fn a(owner: &str, ttl: u32, addr: [u8; 4]) -> Record {
        Record::from_rdata(name(owner), ttl, RData::A(A(Ipv4Addr::from(addr))))
    }

    fn cname(owner: &str, ttl: u32, target: &str) -> Record {
        Record::from_rdata(name(owner), ttl, RData::CNAME(CNAME(name(target))))
    }

    fn response(question: &str, answers: Vec<Record>) -> Message {
        let mut m = Message::response(0x1234, OpCode::Query);
        m.add_query(Query::query(name(question), RecordType::A));
        m.add_answers(answers);
        m
    }

    fn bytes(m: &Message) -> Vec<u8> {
        m.to_vec().unwrap()
    }

    /// The CNAME chain of the acceptance test: the question, its alias, the address.
    fn chain_answer() -> Vec<u8> {
        bytes(&response(
            "Redis.Voice.svc.cluster.local.",
            vec![
                cname("redis.voice.svc.cluster.local.", 30, "x.redis.example."),
                a("x.redis.example.", 5, [10, 0, 0, 7]),
                a("x.redis.example.", 60, [10, 0, 0, 8]),
            ],
        ))
    }

    #[test]
    fn a_cname_chain_names_each_address_from_the_question() {
        let answer = read(&chain_answer()).unwrap();
        assert_eq!(answer.id, 0x1234);
        assert_eq!(
            answer.question.as_deref(),
            Some("redis.voice.svc.cluster.local")
        );
        let names = vec![
            "redis.voice.svc.cluster.local".to_string(),
            "x.redis.example".to_string(),
        ];
        assert_eq!(
            answer.resolutions,
            vec![
                Resolution {
                    addr: "10.0.0.7".parse().unwrap(),
                    names: names.clone(),
                    ttl: 5
                },
                // The CNAME's 30 s is the shorter of the chain here.
                Resolution {
                    addr: "10.0.0.8".parse().unwrap(),
                    names,
                    ttl: 30
                },
            ]
        );
        assert_eq!(answer.unrelated, 0);
    }

    #[test]
    fn aaaa_records_resolve_too() {
        let mut m = Message::response(1, OpCode::Query);
        m.add_query(Query::query(name("v6.example."), RecordType::AAAA));
        m.add_answer(Record::from_rdata(
            name("v6.example."),
            10,
            RData::AAAA(AAAA(Ipv6Addr::LOCALHOST)),
        ));
        let answer = read(&bytes(&m)).unwrap();
        assert_eq!(answer.resolutions[0].addr, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(answer.resolutions[0].names, vec!["v6.example".to_string()]);
    }

    #[test]
    fn an_address_for_a_name_nobody_asked_about_is_unrelated() {
        let answer = read(&bytes(&response(
            "bucket.example.",
            vec![
                a("bucket.example.", 10, [1, 1, 1, 1]),
                a("attacker.example.", 10, [6, 6, 6, 6]),
            ],
        )))
        .unwrap();
        assert_eq!(answer.resolutions.len(), 1);
        assert_eq!(answer.resolutions[0].addr, IpAddr::from([1, 1, 1, 1]));
        assert_eq!(answer.unrelated, 1);
    }

    #[test]
    fn nxdomain_and_nodata_name_nothing_and_are_not_errors() {
        let mut nx = response("nope.example.", vec![]);
        nx.metadata.response_code = ResponseCode::NXDomain;
        let nx = read(&bytes(&nx)).unwrap();
        assert!(nx.resolutions.is_empty());
        assert_eq!(nx.question.as_deref(), Some("nope.example"));

        let nodata = read(&bytes(&response(
            "only-cname.example.",
            vec![cname("only-cname.example.", 10, "elsewhere.example.")],
        )))
        .unwrap();
        assert!(nodata.resolutions.is_empty());
    }

    #[test]
    fn a_response_cut_to_fit_udp_is_read_for_what_it_holds() {
        let mut cut = response("big.example.", vec![]);
        cut.metadata.truncation = true;
        assert!(read(&bytes(&cut)).unwrap().resolutions.is_empty());
        let mut partial = response("big.example.", vec![a("big.example.", 10, [10, 0, 0, 1])]);
        partial.metadata.truncation = true;
        assert_eq!(read(&bytes(&partial)).unwrap().resolutions.len(), 1);
    }

    #[test]
    fn a_query_is_not_an_answer() {
        let mut m = Message::query();
        m.add_query(Query::query(name("x.example."), RecordType::A));
        let e = read(&bytes(&m)).unwrap_err();
        assert_eq!(e.kind(), "not_a_response");
    }

    #[test]
    fn a_cname_loop_stops_and_keeps_what_it_found() {
        let answer = read(&bytes(&response(
            "a.example.",
            vec![
                a("a.example.", 10, [10, 0, 0, 1]),
                cname("a.example.", 10, "b.example."),
                cname("b.example.", 10, "a.example."),
            ],
        )))
        .unwrap();
        assert_eq!(answer.resolutions.len(), 1);
        assert_eq!(answer.resolutions[0].names, vec!["a.example".to_string()]);
    }

    #[test]
    fn a_chain_stops_at_the_guard() {
        let mut records = Vec::new();
        for i in 0..40 {
            records.push(cname(
                &format!("n{i}.example."),
                10,
                &format!("n{}.example.", i + 1),
            ));
        }
        for i in 0..=40 {
            records.push(a(&format!("n{i}.example."), 10, [10, 0, 0, i as u8]));
        }
        let answer = read(&bytes(&response("n0.example.", records))).unwrap();
        assert_eq!(answer.resolutions.len(), MAX_CHAIN);
        assert!(
            answer
                .resolutions
                .iter()
                .all(|r| r.names.len() <= MAX_CHAIN)
        );
        assert_eq!(answer.unrelated, 41 - MAX_CHAIN);
    }

    #[test]
    fn the_same_address_twice_is_one_resolution() {
        let answer = read(&bytes(&response(
            "a.example.",
            vec![
                a("a.example.", 50, [10, 0, 0, 1]),
                a("a.example.", 20, [10, 0, 0, 1]),
            ],
        )))
        .unwrap();
        assert_eq!(answer.resolutions.len(), 1);
        assert_eq!(answer.resolutions[0].ttl, 20);
    }

    #[test]
    fn a_ttl_with_the_top_bit_set_is_zero() {
        let answer = read(&bytes(&response(
            "a.example.",
            vec![a("a.example.", 0x8000_0001, [10, 0, 0, 1])],
        )))
        .unwrap();
        assert_eq!(answer.resolutions[0].ttl, 0);
    }

    #[test]
    fn other_record_types_are_skipped_not_fatal() {
        let mut records = vec![Record::from_rdata(
            name("a.example."),
            10,
            RData::TXT(hickory_proto::rr::rdata::TXT::new(vec!["hello".into()])),
        )];
        records.push(a("a.example.", 10, [10, 0, 0, 1]));
        let answer = read(&bytes(&response("a.example.", records))).unwrap();
        assert_eq!(answer.resolutions.len(), 1);
    }

    // ---- hostile input, by hand ----

    /// A header: id 1, QR set, opcode QUERY, NOERROR, with the given counts.
    fn header(qd: u16, an: u16) -> Vec<u8> {
        let mut h = vec![0, 1, 0x81, 0x80];
        for c in [qd, an, 0, 0] {
            h.extend_from_slice(&c.to_be_bytes());
        }
        h
    }

    /// The question `x.example` IN A.
    fn question() -> Vec<u8> {
        let mut q = vec![1, b'x', 7];
        q.extend_from_slice(b"example");
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        q
    }

    #[test]
    fn every_truncation_of_a_valid_answer_is_an_error_or_a_subset() {
        let full = chain_answer();
        for cut in 0..full.len() {
            match read(&full[..cut]) {
                Err(e) => assert!(matches!(e.kind(), "truncated" | "malformed"), "{cut}: {e}"),
                Ok(a) => panic!("a cut at {cut} of {} read as {a:?}", full.len()),
            }
        }
        assert!(read(&full).is_ok());
    }

    #[test]
    fn huge_counts_with_no_data_are_truncated() {
        let mut m = header(1, 65535);
        m.extend(question());
        let e = read(&m).unwrap_err();
        assert_eq!(e.kind(), "truncated");
        let e = read(&header(65535, 65535)).unwrap_err();
        assert_eq!(e.kind(), "truncated");
    }

    #[test]
    fn a_compression_loop_is_malformed() {
        // The question's name is a pointer to itself (offset 12).
        let mut m = header(1, 0);
        m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        assert_eq!(read(&m).unwrap_err().kind(), "malformed");
        // An answer's owner points forward, at itself.
        let mut m = header(1, 1);
        m.extend(question());
        let here = m.len() as u8;
        m.extend_from_slice(&[0xC0, here, 0, 1, 0, 1, 0, 0, 0, 10, 0, 4, 10, 0, 0, 1]);
        assert_eq!(read(&m).unwrap_err().kind(), "malformed");
    }

    #[test]
    fn a_pointer_past_the_end_is_an_error() {
        let mut m = header(1, 1);
        m.extend(question());
        m.extend_from_slice(&[0xC3, 0xFF, 0, 1, 0, 1, 0, 0, 0, 10, 0, 4, 10, 0, 0, 1]);
        assert!(matches!(
            read(&m).unwrap_err().kind(),
            "malformed" | "truncated"
        ));
    }

    #[test]
    fn a_label_over_63_bytes_is_malformed() {
        let mut m = header(1, 0);
        m.push(64);
        m.extend_from_slice(&[b'a'; 64]);
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(read(&m).unwrap_err().kind(), "malformed");
    }

    #[test]
    fn non_ascii_and_dotted_labels_are_escaped() {
        // Question and answer owner: one label "Ünï.evil" (Latin-1 bytes and a dot), then "com".
        let mut m = header(1, 1);
        let label = [0xDC, b'n', 0xEF, b'.', b'E', b'v', b'i', b'l', b'\\'];
        let q_at = m.len() as u8;
        m.push(label.len() as u8);
        m.extend_from_slice(&label);
        m.extend_from_slice(&[3, b'c', b'o', b'm', 0, 0, 1, 0, 1]);
        m.extend_from_slice(&[0xC0, q_at, 0, 1, 0, 1, 0, 0, 0, 10, 0, 4, 10, 0, 0, 9]);
        let answer = read(&m).unwrap();
        let want = "\\220n\\239\\046evil\\092.com";
        assert_eq!(answer.question.as_deref(), Some(want));
        assert_eq!(answer.resolutions[0].names, vec![want.to_string()]);
        assert!(want.bytes().all(|b| b.is_ascii_graphic()));
    }

    #[test]
    fn a_cname_whose_data_overruns_its_length_is_malformed() {
        let mut m = header(1, 1);
        m.extend(question());
        // CNAME with rdlength 1 but a 3-byte name in it.
        m.extend_from_slice(&[0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 10, 0, 1, 1, b'y', 0]);
        assert!(read(&m).is_err());
    }

    #[test]
    fn an_update_or_notify_is_not_a_query_answer() {
        let mut m = header(0, 0);
        m[2] = 0x80 | (5 << 3);
        assert_eq!(read(&m).unwrap_err().kind(), "not_a_query");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any bytes at all: an answer or an error with a kind, never a panic; and every
        /// name that comes out is printable ASCII in our alphabet.
        #[test]
        fn any_bytes_read_or_fail_with_a_kind(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            check_any(&data);
        }

        /// A valid answer with bytes flipped: the parser walks deep into records first.
        #[test]
        fn a_damaged_answer_reads_or_fails_with_a_kind(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let mut m = chain_answer();
            for (at, b) in flips {
                let i = at.index(m.len());
                m[i] = b;
            }
            check_any(&m);
        }
    }

    fn check_any(data: &[u8]) {
        match read(data) {
            Ok(answer) => {
                let names = answer
                    .question
                    .iter()
                    .chain(answer.resolutions.iter().flat_map(|r| &r.names));
                for n in names {
                    assert!(
                        n.bytes().all(|b| b.is_ascii_lowercase()
                            || b.is_ascii_digit()
                            || b"-_.\\".contains(&b)),
                        "{n:?}"
                    );
                }
                for r in &answer.resolutions {
                    assert!(!r.names.is_empty() && r.names.len() <= MAX_CHAIN);
                }
            }
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    "truncated" | "malformed" | "not_a_response" | "not_a_query"
                ),
                "{e}"
            ),
        }
    }
}
