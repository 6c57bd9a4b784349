//! auditor's kernel programs: every socket connect on the node, aggregated per flow, and
//! every DNS answer a socket receives (`dns`).
//! Entry points live with their hook family; `flow` holds the maps and the aggregation.
#![no_std]
#![no_main]
// Atomic read-modify-write on map values (see flow.rs); Debian's rustc runs with
// RUSTC_BOOTSTRAP=1 for -Z build-std already.
#![allow(internal_features)]
#![feature(core_intrinsics)]

mod bind;
mod dns;
mod flow;
mod iter;
mod key;
mod log;
mod sock_addr;
mod tcp;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any reachable panic path; this is never executed.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
