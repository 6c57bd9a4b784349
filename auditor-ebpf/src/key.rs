//! Addresses as `FlowKey` holds them (16 bytes, network order, IPv4 in the first 4),
//! built from words. LLVM's BPF backend zeroes the rest of a partly filled byte array
//! with a call to a byte-at-a-time `memset` loop (about 40 instructions, on every
//! sighting); a transmute of whole words is plain stores.

use core::mem::transmute;

/// An IPv4 address given as its network-order bytes read into a `u32` (`user_ip4`,
/// `skc_daddr`, ...): its memory bytes are a.b.c.d.
#[inline(always)]
pub fn v4(ip: u32) -> [u8; 16] {
    words([ip as u64, 0])
}

/// An IPv6 address from its four network-order words (`user_ip6`, `src_ip6`).
#[inline(always)]
pub fn v6(w: [u32; 4]) -> [u8; 16] {
    // SAFETY: same size, every bit pattern valid.
    unsafe { transmute::<[u32; 4], [u8; 16]>(w) }
}

/// An address read as two 8-byte loads (`skc_v6_daddr`, the tracepoint's v6 fields).
#[inline(always)]
pub fn words(w: [u64; 2]) -> [u8; 16] {
    // SAFETY: same size, every bit pattern valid; bpfel keeps the loaded byte order.
    unsafe { transmute::<[u64; 2], [u8; 16]>(w) }
}
