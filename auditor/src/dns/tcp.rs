//! DNS over TCP, reassembled from the segments the kernel copied. Each message on the
//! stream is framed by a 2-byte big-endian length (RFC 1035 §4.2.2); an answer over 512
//! bytes arrives this way after the UDP one came back truncated.
//!
//! The kernel hands over each segment's payload from port 53 (up to its copy bound) with
//! its TCP sequence number, in the order the packets arrived, which may not be stream
//! order. A stream is keyed by its socket's network namespace and both ends.
//!
//! The first segment seen on a stream is taken to start a message: DNS over TCP starts
//! with the server's first answer, and a stream joined midway (the daemon started during
//! it) yields messages that fail to read, which the caller counts.
//!
//! Memory is bounded: at most `max_streams` streams, the least recently used evicted, and
//! at most `max_buffered` bytes held per stream (a partial message and segments that
//! arrived ahead of a gap). A stream that cannot be trusted any more (a segment the kernel
//! copied only in part, a gap too large to wait across, more than the bound buffered) is
//! kept as *untrusted*, its segments ignored, until it falls idle: starting again in the
//! middle of its byte stream would read message lengths out of arbitrary bytes.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::model::Millis;

/// A stream with no segment for this long is forgotten. DNS clients close TCP
/// connections after an answer or two; resolvers close idle ones after a few seconds
/// (dnsmasq and Unbound use well under 30 s).
pub const IDLE_MS: Millis = 30_000;

/// The most segments held ahead of a gap on one stream (besides the byte bound): enough
/// for the reordering of one large answer, and a bound on the per-segment bookkeeping.
const MAX_AHEAD: usize = 16;

/// One TCP stream from a DNS server to a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub netns_cookie: u64,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// What reassembly did, for the `auditor_dns_*` counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// Complete messages handed out.
    pub messages: u64,
    /// Streams evicted to stay within `max_streams`.
    pub evicted: u64,
    /// Streams given up because a gap could not be waited across within the bounds.
    pub dropped_gaps: u64,
    /// Streams given up because the kernel copied a segment only in part.
    pub truncated: u64,
    /// Streams given up because a message would not fit in `max_buffered`.
    pub overflowed: u64,
    /// Segments ignored on a stream that was given up.
    pub ignored_segments: u64,
    /// Streams forgotten after `IDLE_MS` without a segment.
    pub expired: u64,
}

/// Every DNS-over-TCP stream in progress.
#[derive(Debug)]
pub struct TcpStreams {
    streams: HashMap<StreamKey, Stream>,
    max_streams: usize,
    max_buffered: usize,
    last_expire_ms: Millis,
    stats: TcpStats,
}

#[derive(Debug)]
struct Stream {
    last_ms: Millis,
    state: State,
}

#[derive(Debug)]
enum State {
    Live {
        /// The sequence number of the next byte in stream order.
        next_seq: u32,
        /// Bytes in stream order not yet part of a complete message.
        buf: Vec<u8>,
        /// Segments that arrived after a gap, by sequence number.
        ahead: Vec<(u32, Vec<u8>)>,
    },
    /// Given up on (and counted); ignored until idle.
    Untrusted,
}

/// How far `seq` lies after `next` in sequence space (negative: before), with wrap-around.
fn distance(seq: u32, next: u32) -> i64 {
    i64::from(seq.wrapping_sub(next) as i32)
}

impl TcpStreams {
    /// `max_streams` streams of at most `max_buffered` bytes each (both at least 1).
    pub fn new(max_streams: usize, max_buffered: usize) -> Self {
        Self {
            streams: HashMap::new(),
            max_streams: max_streams.max(1),
            max_buffered: max_buffered.max(1),
            last_expire_ms: Millis::MIN,
            stats: TcpStats::default(),
        }
    }

    pub fn stats(&self) -> TcpStats {
        self.stats
    }

    /// Streams held, untrusted ones included.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Takes one segment's payload (the bytes the kernel copied; `copied_all` false when
    /// it copied only a prefix) and returns the messages it completed, in stream order,
    /// without their length prefix.
    pub fn push(
        &mut self,
        key: StreamKey,
        seq: u32,
        payload: &[u8],
        copied_all: bool,
        now_ms: Millis,
    ) -> Vec<Vec<u8>> {
        // A sweep at most once a second keeps push cheap with many streams.
        if now_ms.saturating_sub(self.last_expire_ms) >= 1_000 {
            self.expire(now_ms);
        }
        if !self.streams.contains_key(&key) {
            // A bare ACK or FIN says nothing; it opens no stream.
            if payload.is_empty() {
                return Vec::new();
            }
            if self.streams.len() >= self.max_streams {
                self.evict_least_recent();
            }
            self.streams.insert(
                key,
                Stream {
                    last_ms: now_ms,
                    state: State::Live {
                        next_seq: seq,
                        buf: Vec::new(),
                        ahead: Vec::new(),
                    },
                },
            );
        }
        let Some(stream) = self.streams.get_mut(&key) else {
            return Vec::new();
        };
        stream.last_ms = stream.last_ms.max(now_ms);
        let State::Live {
            next_seq,
            buf,
            ahead,
        } = &mut stream.state
        else {
            self.stats.ignored_segments += 1;
            return Vec::new();
        };

        let mut give_up = None;
        if distance(seq, *next_seq) > 0 {
            let held = buf.len() + ahead.iter().map(|(_, p)| p.len()).sum::<usize>();
            if ahead.len() >= MAX_AHEAD || held + payload.len() > self.max_buffered {
                give_up = Some(&mut self.stats.dropped_gaps);
            } else {
                ahead.push((seq, payload.to_vec()));
            }
        } else {
            append(next_seq, buf, seq, payload);
            // Segments that were ahead and now touch the stream follow it.
            while let Some(i) = ahead.iter().position(|(s, _)| distance(*s, *next_seq) <= 0) {
                let (s, p) = ahead.swap_remove(i);
                append(next_seq, buf, s, &p);
            }
        }

        let messages = if give_up.is_none() {
            frames(buf)
        } else {
            Vec::new()
        };
        self.stats.messages += messages.len() as u64;
        if give_up.is_none() {
            let held = buf.len() + ahead.iter().map(|(_, p)| p.len()).sum::<usize>();
            if held > self.max_buffered {
                give_up = Some(&mut self.stats.overflowed);
            } else if !copied_all {
                // What was copied is used (it may complete a message); what follows it
                // cannot be placed.
                give_up = Some(&mut self.stats.truncated);
            }
        }
        if let Some(counter) = give_up {
            *counter += 1;
            stream.state = State::Untrusted;
        }
        messages
    }

    /// Forgets streams idle for more than [`IDLE_MS`].
    pub fn expire(&mut self, now_ms: Millis) {
        self.last_expire_ms = now_ms;
        let before = self.streams.len();
        self.streams
            .retain(|_, s| now_ms.saturating_sub(s.last_ms) <= IDLE_MS);
        self.stats.expired += (before - self.streams.len()) as u64;
    }

    fn evict_least_recent(&mut self) {
        let oldest = self
            .streams
            .iter()
            .min_by_key(|(_, s)| s.last_ms)
            .map(|(k, _)| *k);
        if let Some(k) = oldest {
            self.streams.remove(&k);
            self.stats.evicted += 1;
        }
    }
}

/// Appends the part of a segment at `seq` that lies at or after `next_seq` (a
/// retransmission or overlap is trimmed to what is new).
fn append(next_seq: &mut u32, buf: &mut Vec<u8>, seq: u32, payload: &[u8]) {
    let behind = usize::try_from(-distance(seq, *next_seq)).unwrap_or(0);
    if let Some(new) = payload.get(behind..)
        && !new.is_empty()
    {
        buf.extend_from_slice(new);
        *next_seq = next_seq.wrapping_add(new.len() as u32);
    }
}

/// Takes every complete length-prefixed message off the front of `buf`.
fn frames(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(&[hi, lo]) = buf.get(at..at + 2) {
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let Some(message) = buf.get(at + 2..at + 2 + len) else {
            break;
        };
        out.push(message.to_vec());
        at += 2 + len;
    }
    buf.drain(..at);
    if buf.is_empty() {
        // An idle stream holds no allocation.
        *buf = Vec::new();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16) -> StreamKey {
        StreamKey {
            netns_cookie: 7,
            local: SocketAddr::from(([10, 0, 0, 2], port)),
            remote: SocketAddr::from(([10, 0, 0, 53], 53)),
        }
    }

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn a_message_split_across_segments_comes_out_whole() {
        let mut t = TcpStreams::new(8, 4096);
        let m = framed(&[7u8; 700]);
        assert!(t.push(key(1), 1000, &m[..1], true, 0).is_empty());
        assert!(t.push(key(1), 1001, &m[1..300], true, 1).is_empty());
        let out = t.push(key(1), 1300, &m[300..], true, 2);
        assert_eq!(out, vec![vec![7u8; 700]]);
        assert_eq!(t.stats().messages, 1);
    }

    #[test]
    fn two_messages_in_one_segment_both_come_out() {
        let mut t = TcpStreams::new(8, 4096);
        let mut seg = framed(b"first");
        seg.extend(framed(b"second"));
        seg.extend(&framed(b"third")[..3]);
        let out = t.push(key(1), 5, &seg, true, 0);
        assert_eq!(out, vec![b"first".to_vec(), b"second".to_vec()]);
        let rest = &framed(b"third")[3..];
        let out = t.push(key(1), 5 + seg.len() as u32, rest, true, 1);
        assert_eq!(out, vec![b"third".to_vec()]);
    }

    #[test]
    fn a_retransmission_and_an_overlap_are_trimmed() {
        let mut t = TcpStreams::new(8, 4096);
        let m = framed(b"0123456789");
        assert!(t.push(key(1), 100, &m[..6], true, 0).is_empty());
        // The same segment again, then one overlapping it by two bytes.
        assert!(t.push(key(1), 100, &m[..6], true, 1).is_empty());
        let out = t.push(key(1), 104, &m[4..], true, 2);
        assert_eq!(out, vec![b"0123456789".to_vec()]);
        // A late copy of what was already read yields nothing.
        assert!(t.push(key(1), 100, &m, true, 3).is_empty());
    }

    #[test]
    fn a_segment_after_a_gap_waits_for_the_gap() {
        let mut t = TcpStreams::new(8, 4096);
        let m = framed(&[1u8; 100]);
        assert!(t.push(key(1), 0, &m[..10], true, 0).is_empty());
        assert!(t.push(key(1), 50, &m[50..], true, 1).is_empty());
        let out = t.push(key(1), 10, &m[10..50], true, 2);
        assert_eq!(out, vec![vec![1u8; 100]]);
        assert_eq!(t.stats().dropped_gaps, 0);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut t = TcpStreams::new(8, 4096);
        let m = framed(b"wrapping");
        let start = u32::MAX - 3;
        assert!(t.push(key(1), start, &m[..5], true, 0).is_empty());
        let out = t.push(key(1), start.wrapping_add(5), &m[5..], true, 1);
        assert_eq!(out, vec![b"wrapping".to_vec()]);
    }

    #[test]
    fn a_gap_beyond_the_bound_gives_the_stream_up() {
        let mut t = TcpStreams::new(8, 64);
        let m = framed(&[1u8; 100]);
        assert!(t.push(key(1), 0, &m[..10], true, 0).is_empty());
        assert!(t.push(key(1), 30, &m[30..], true, 1).is_empty());
        assert_eq!(t.stats().dropped_gaps, 1);
        // The gap's bytes arriving later do not revive it.
        assert!(t.push(key(1), 10, &m[10..30], true, 2).is_empty());
        assert_eq!(t.stats().ignored_segments, 1);
    }

    #[test]
    fn a_message_larger_than_the_bound_gives_the_stream_up() {
        let mut t = TcpStreams::new(8, 64);
        let m = framed(&[1u8; 100]);
        assert!(t.push(key(1), 0, &m[..80], true, 0).is_empty());
        assert_eq!(t.stats().overflowed, 1);
    }

    #[test]
    fn a_truncated_copy_uses_what_was_copied_then_gives_the_stream_up() {
        let mut t = TcpStreams::new(8, 4096);
        let mut seg = framed(b"complete");
        seg.extend(&framed(b"cut short")[..4]);
        let out = t.push(key(1), 0, &seg, false, 0);
        assert_eq!(out, vec![b"complete".to_vec()]);
        assert_eq!(t.stats().truncated, 1);
        let rest = &framed(b"cut short")[4..];
        assert!(t.push(key(1), seg.len() as u32, rest, true, 1).is_empty());
        // Another stream is not affected.
        assert_eq!(
            t.push(key(2), 9, &framed(b"ok"), true, 1),
            vec![b"ok".to_vec()]
        );
    }

    #[test]
    fn the_least_recently_used_stream_is_evicted_at_the_bound() {
        let mut t = TcpStreams::new(2, 4096);
        let half = &framed(b"abcdef")[..4];
        t.push(key(1), 0, half, true, 0);
        t.push(key(2), 0, half, true, 1);
        t.push(key(1), 4, b"", true, 2); // key 1 used again: key 2 is now the oldest
        t.push(key(3), 0, half, true, 3);
        assert_eq!(t.stats().evicted, 1);
        assert_eq!(t.len(), 2);
        // key 1 survived with its partial message; key 2 starts over (and is misframed).
        assert_eq!(
            t.push(key(1), 4, b"cdef", true, 4),
            vec![b"abcdef".to_vec()]
        );
        assert!(t.push(key(2), 4, b"cdef", true, 5).is_empty());
    }

    #[test]
    fn idle_streams_are_forgotten() {
        let mut t = TcpStreams::new(8, 4096);
        t.push(key(1), 0, &[0, 10, 1], false, 0);
        assert_eq!(t.stats().truncated, 1);
        t.expire(IDLE_MS);
        assert_eq!(t.len(), 1);
        t.expire(IDLE_MS + 1);
        assert!(t.is_empty());
        assert_eq!(t.stats().expired, 1);
        // The same ends later are a new stream, and trusted again.
        assert_eq!(
            t.push(key(1), 500, &framed(b"new"), true, IDLE_MS + 2),
            vec![b"new".to_vec()]
        );
    }

    /// The acceptance test's case: an answer over 512 bytes comes over TCP, in segments
    /// smaller than it, and still names its addresses.
    #[test]
    fn an_answer_over_512_bytes_reads_from_its_segments() {
        use std::str::FromStr;

        use hickory_proto::op::{Message, OpCode, Query};
        use hickory_proto::rr::rdata::A;
        use hickory_proto::rr::{Name, RData, Record, RecordType};

        let name = Name::from_str("big.example.").unwrap();
        let mut m = Message::response(9, OpCode::Query);
        m.add_query(Query::query(name.clone(), RecordType::A));
        for i in 0..60u8 {
            m.add_answer(Record::from_rdata(
                name.clone(),
                60,
                RData::A(A::new(10, 9, 0, i)),
            ));
        }
        let wire = framed(&m.to_vec().unwrap());
        assert!(wire.len() > 512);
        let mut t = TcpStreams::new(8, 4096);
        let mut out = Vec::new();
        for (i, segment) in wire.chunks(200).enumerate() {
            out.extend(t.push(key(1), 7 + 200 * i as u32, segment, true, 0));
        }
        assert_eq!(out.len(), 1);
        let answer = super::super::answer::read(&out[0]).unwrap();
        assert_eq!(answer.resolutions.len(), 60);
        assert_eq!(
            answer.resolutions[59].names,
            vec!["big.example".to_string()]
        );
    }

    #[test]
    fn a_zero_length_frame_is_handed_out_for_the_reader_to_count() {
        let mut t = TcpStreams::new(8, 4096);
        assert_eq!(t.push(key(1), 0, &[0, 0], true, 0), vec![Vec::<u8>::new()]);
    }
}
