//! Reads the struct offsets the kernel programs need from kernel BTF: Rust eBPF has no
//! CO-RE, so user space resolves `sock -> net -> net_cookie` and passes the offsets in.

use std::path::Path;

pub use auditor_common::SockOffsets;
use btf_rs::{Btf, Type};

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("reading kernel BTF {path}: {source}")]
    Read { path: String, source: btf_rs::Error },
    #[error("kernel BTF has no struct `{0}`")]
    NoStruct(String),
    #[error("kernel BTF: struct `{strukt}` has no member `{member}`")]
    NoMember { strukt: String, member: String },
    #[error("kernel BTF: {0}")]
    Other(String),
}

/// Byte offsets for reading a socket's network-namespace cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetnsOffsets {
    /// `struct sock` -> `__sk_common.skc_net.net` (a `struct net *`).
    pub sock_net: u32,
    /// `struct net` -> `net_cookie`.
    pub net_cookie: u32,
}

pub fn netns_offsets(path: &Path) -> Result<NetnsOffsets, BtfError> {
    netns_offsets_in(&read(path)?)
}

/// Parses kernel BTF once for every lookup below.
pub fn read(path: &Path) -> Result<Btf, BtfError> {
    Btf::from_file(path).map_err(|source| BtfError::Read {
        path: path.display().to_string(),
        source,
    })
}

pub fn netns_offsets_in(btf: &Btf) -> Result<NetnsOffsets, BtfError> {
    Ok(NetnsOffsets {
        sock_net: member_offset(btf, "sock", &["__sk_common", "skc_net", "net"])?,
        net_cookie: member_offset(btf, "net", &["net_cookie"])?,
    })
}

/// Where the `tp_btf` TCP program reads a `struct sock` (see `auditor_common::SockOffsets`).
pub fn sock_offsets_in(btf: &Btf) -> Result<SockOffsets, BtfError> {
    let common = |member: &str| -> Result<u16, BtfError> {
        narrow(member_offset(btf, "sock", &["__sk_common", member])?)
    };
    Ok(SockOffsets {
        valid: 1,
        family: common("skc_family")?,
        protocol: narrow(member_offset(btf, "sock", &["sk_protocol"])?)?,
        daddr: common("skc_daddr")?,
        rcv_saddr: common("skc_rcv_saddr")?,
        dport: common("skc_dport")?,
        num: common("skc_num")?,
        v6_daddr: common("skc_v6_daddr")?,
        v6_rcv_saddr: common("skc_v6_rcv_saddr")?,
        _pad: [0; 3],
    })
}

/// Where the socket iterator (`iter/task_file`) reads sockets and tasks (see
/// `auditor_common::IterConfig`).
pub fn iter_config_in(btf: &Btf) -> Result<auditor_common::IterConfig, BtfError> {
    let netns = netns_offsets_in(btf)?;
    Ok(auditor_common::IterConfig {
        valid: 1,
        socket_sk: member_offset(btf, "socket", &["sk"])?,
        sock_type: member_offset(btf, "sock", &["sk_type"])?,
        sock_state: member_offset(btf, "sock", &["__sk_common", "skc_state"])?,
        sock_net: netns.sock_net,
        net_cookie: netns.net_cookie,
        task_tgid: member_offset(btf, "task_struct", &["tgid"])?,
        task_pid: member_offset(btf, "task_struct", &["pid"])?,
        task_comm: member_offset(btf, "task_struct", &["comm"])?,
        task_cred: member_offset(btf, "task_struct", &["cred"])?,
        cred_uid: member_offset(btf, "cred", &["uid", "val"])?,
        task_cgroups: member_offset(btf, "task_struct", &["cgroups"])?,
        css_set_dfl_cgrp: member_offset(btf, "css_set", &["dfl_cgrp"])?,
        cgroup_kn: member_offset(btf, "cgroup", &["kn"])?,
        kernfs_node_id: member_offset(btf, "kernfs_node", &["id"])?,
        _pad: 0,
        sock: sock_offsets_in(btf)?,
    })
}

fn narrow(offset: u32) -> Result<u16, BtfError> {
    u16::try_from(offset).map_err(|_| BtfError::Other(format!("offset {offset} past 64 KiB")))
}

/// Byte offset of a member path inside a struct, descending into anonymous members.
fn member_offset(btf: &Btf, strukt: &str, path: &[&str]) -> Result<u32, BtfError> {
    let mut ty = struct_by_name(btf, strukt)?;
    let mut offset_bits = 0u32;
    let mut owner = strukt.to_string();
    for member in path {
        let (bits, next) = find_member(btf, &ty, member)?.ok_or_else(|| BtfError::NoMember {
            strukt: owner.clone(),
            member: member.to_string(),
        })?;
        offset_bits += bits;
        owner = member.to_string();
        ty = next;
    }
    if !offset_bits.is_multiple_of(8) {
        return Err(BtfError::Other(format!(
            "{strukt}.{} is a bitfield",
            path.join(".")
        )));
    }
    Ok(offset_bits / 8)
}

fn struct_by_name(btf: &Btf, name: &str) -> Result<Type, BtfError> {
    let types = btf
        .resolve_types_by_name(name)
        .map_err(|_| BtfError::NoStruct(name.into()))?;
    types
        .into_iter()
        .find(|t| matches!(t, Type::Struct(s) if !s.members.is_empty()))
        .ok_or_else(|| BtfError::NoStruct(name.into()))
}

/// Finds `name` among the members of a struct/union (or of its anonymous members);
/// returns its bit offset and its type with typedefs and qualifiers peeled off.
fn find_member(btf: &Btf, ty: &Type, name: &str) -> Result<Option<(u32, Type)>, BtfError> {
    let members = match ty {
        Type::Struct(s) | Type::Union(s) => &s.members,
        _ => return Ok(None),
    };
    for m in members {
        let member_name = btf.resolve_name(m).unwrap_or_default();
        let member_ty = peel(
            btf,
            btf.resolve_chained_type(m)
                .map_err(|e| BtfError::Other(e.to_string()))?,
        )?;
        if member_name == name {
            return Ok(Some((m.bit_offset(), member_ty)));
        }
        if member_name.is_empty()
            && let Some((inner, t)) = find_member(btf, &member_ty, name)?
        {
            return Ok(Some((m.bit_offset() + inner, t)));
        }
    }
    Ok(None)
}

fn peel(btf: &Btf, mut ty: Type) -> Result<Type, BtfError> {
    loop {
        ty = match &ty {
            Type::Typedef(t) => btf.resolve_chained_type(t),
            Type::Const(t) => btf.resolve_chained_type(t),
            Type::Volatile(t) => btf.resolve_chained_type(t),
            Type::Restrict(t) => btf.resolve_chained_type(t),
            Type::TypeTag(t) => btf.resolve_chained_type(t),
            _ => return Ok(ty),
        }
        .map_err(|e| BtfError::Other(e.to_string()))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs against this machine's kernel: the offsets must exist and be plausible.
    #[test]
    fn resolves_netns_offsets_from_this_kernel() {
        if !Path::new(VMLINUX_BTF).exists() {
            eprintln!("skipped: {VMLINUX_BTF} is missing");
            return;
        }
        let offsets = netns_offsets(Path::new(VMLINUX_BTF)).expect("offsets");
        // skc_net sits after the address/port/hash words of sock_common.
        assert!(
            offsets.sock_net >= 16 && offsets.sock_net < 256,
            "{offsets:?}"
        );
        assert!(
            offsets.net_cookie > 0 && offsets.net_cookie < 8192,
            "{offsets:?}"
        );
    }

    /// The socket fields the tp_btf program loads: found, distinct, in `sock_common`'s
    /// first bytes (addresses and ports lead the struct; the v6 addresses follow).
    #[test]
    fn resolves_sock_offsets_from_this_kernel() {
        if !Path::new(VMLINUX_BTF).exists() {
            eprintln!("skipped: {VMLINUX_BTF} is missing");
            return;
        }
        let o = sock_offsets_in(&read(Path::new(VMLINUX_BTF)).expect("btf")).expect("offsets");
        assert_eq!(o.valid, 1);
        let mut all = [
            o.family,
            o.daddr,
            o.rcv_saddr,
            o.dport,
            o.num,
            o.v6_daddr,
            o.v6_rcv_saddr,
        ];
        assert!(all.iter().all(|&x| x < 128), "{o:?}");
        all.sort();
        assert!(all.windows(2).all(|w| w[0] < w[1]), "{o:?}");
        assert!(
            o.protocol >= 128,
            "sk_protocol lies past sock_common: {o:?}"
        );
    }

    /// The task and socket fields the socket iterator loads: all found, each inside its
    /// struct's plausible size (task_struct runs to kilobytes; the others are small).
    #[test]
    fn resolves_iterator_offsets_from_this_kernel() {
        if !Path::new(VMLINUX_BTF).exists() {
            eprintln!("skipped: {VMLINUX_BTF} is missing");
            return;
        }
        let c = iter_config_in(&read(Path::new(VMLINUX_BTF)).expect("btf")).expect("offsets");
        assert_eq!((c.valid, c.sock.valid), (1, 1));
        assert!(
            c.task_tgid > 0 && c.task_pid > 0 && c.task_comm > 0,
            "{c:?}"
        );
        assert_eq!(c.task_tgid, c.task_pid + 4, "tgid follows pid: {c:?}");
        assert!(c.sock_state < 128 && c.sock_type >= 128, "{c:?}");
        assert!(
            c.socket_sk < 64 && c.cred_uid < 64 && c.kernfs_node_id < 256,
            "{c:?}"
        );
    }

    #[test]
    fn missing_file_is_an_error() {
        assert!(matches!(
            netns_offsets(Path::new("/nonexistent/btf")),
            Err(BtfError::Read { .. })
        ));
    }
}
