//! auditor: captures every socket connect on a node with eBPF and (in later stages) judges
//! it against the documented architecture. The binary in `main.rs` only wires these.

pub mod capture;
pub mod cli;
pub mod commands;
pub mod identity;
pub mod verdict;
