//! Map keys built from 64-bit words. LLVM's BPF backend lowers the zeroing of a partly
//! filled byte array (an IPv4 address in 16 bytes, the 7 padding bytes of `FlowKey`) to
//! a call to a byte-at-a-time `memset` loop: about 40 instructions and three calls on
//! every sighting, measured at roughly a quarter of a repeat UDP send's cost. Words are
//! plain stores. The layouts this relies on are asserted below (bpfel: little-endian).

use auditor_common::{FlowKey, ListenerKey};
use core::mem::{offset_of, transmute};

const _: () = {
    assert!(offset_of!(FlowKey, local_addr) == 0);
    assert!(offset_of!(FlowKey, remote_addr) == 16);
    assert!(offset_of!(FlowKey, netns_cookie) == 32);
    assert!(offset_of!(FlowKey, cgroup_id) == 40);
    assert!(offset_of!(FlowKey, tgid) == 48);
    assert!(offset_of!(FlowKey, port) == 52);
    assert!(offset_of!(FlowKey, family) == 54);
    assert!(offset_of!(FlowKey, transport) == 55);
    assert!(offset_of!(FlowKey, direction) == 56);
    assert!(offset_of!(ListenerKey, netns_cookie) == 0);
    assert!(offset_of!(ListenerKey, port) == 8);
    assert!(offset_of!(ListenerKey, transport) == 10);
};

/// An address as `FlowKey` holds it: 16 bytes in network order, IPv4 in the first 4.
pub type Addr = [u64; 2];

/// An IPv4 address given as its network-order bytes read into a `u32` (`user_ip4`,
/// `skc_daddr`, ...): its memory bytes are a.b.c.d, the first 4 of the 16.
#[inline(always)]
pub fn v4(ip: u32) -> Addr {
    [ip as u64, 0]
}

/// An IPv6 address from its four network-order words (`user_ip6`, `src_ip6`).
#[inline(always)]
pub fn v6(words: [u32; 4]) -> Addr {
    [
        words[0] as u64 | (words[1] as u64) << 32,
        words[2] as u64 | (words[3] as u64) << 32,
    ]
}

/// The fields of a `FlowKey`, addresses as words.
pub struct Flow {
    pub local: Addr,
    pub remote: Addr,
    pub netns_cookie: u64,
    pub cgroup_id: u64,
    pub tgid: u32,
    pub port: u16,
    pub family: u8,
    pub transport: u8,
    pub direction: u8,
}

impl Flow {
    #[inline(always)]
    pub fn key(self) -> FlowKey {
        let ids = self.tgid as u64
            | (self.port as u64) << 32
            | (self.family as u64) << 48
            | (self.transport as u64) << 56;
        let words: [u64; 8] = [
            self.local[0],
            self.local[1],
            self.remote[0],
            self.remote[1],
            self.netns_cookie,
            self.cgroup_id,
            ids,
            self.direction as u64,
        ];
        // SAFETY: FlowKey is repr(C), 64 bytes, every bit pattern valid; layout asserted above.
        unsafe { transmute::<[u64; 8], FlowKey>(words) }
    }
}

#[inline(always)]
pub fn listener_key(netns_cookie: u64, port: u16, transport: u8) -> ListenerKey {
    let words: [u64; 2] = [netns_cookie, port as u64 | (transport as u64) << 16];
    // SAFETY: ListenerKey is repr(C), 16 bytes, every bit pattern valid; layout asserted above.
    unsafe { transmute::<[u64; 2], ListenerKey>(words) }
}
