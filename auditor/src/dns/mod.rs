//! Names for addresses: the DNS answers each pod's sockets received, turned into the names
//! that pod knew each address by, with time.
//!
//! - `answer` reads one DNS message (UDP datagram or one TCP-framed message) into the
//!   addresses it names, following CNAME chains.
//! - `tcp` reassembles DNS over TCP from the segments the kernel copied.
//! - `names` is the table: per (network namespace, address), the names with their expiry
//!   (TTL plus a grace window), bounded, kept with the store across restarts.
//! - `pattern` is the inventory's `dns:` patterns (`*` one label, `**` one or more), with
//!   the refusal of patterns that cover a public suffix.
//!
//! The kernel side (`auditor-ebpf/src/dns.rs`) copies answers into the same ring buffer
//! as the flow records, so an answer always reaches user space before the connect that
//! follows it.

pub mod answer;
pub mod names;
pub mod pattern;
pub mod tcp;
