//! Finds the kernel filesystems the probes need from `/proc/self/mountinfo` (never a
//! hard-coded path: hybrid hosts mount cgroup v2 at /sys/fs/cgroup/unified, Kubernetes
//! nodes at /sys/fs/cgroup), and mounts tracefs when it is missing.

use std::path::{Path, PathBuf};

/// One parsed mountinfo line: only the fields we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub root: String,
    pub mount_point: PathBuf,
    pub fs_type: String,
}

/// Parses mountinfo text (proc(5)). Malformed lines are skipped: the kernel writes this file.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let fs_type = right.split(' ').next()?;
            Some(Mount {
                root: unescape(fields.get(3)?),
                mount_point: PathBuf::from(unescape(fields.get(4)?)),
                fs_type: fs_type.to_string(),
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(v) = field
                .get(i + 1..i + 4)
                .and_then(|o| u8::from_str_radix(o, 8).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup v2 root: a `cgroup2` mount of the hierarchy's root ("/"). Attaching there
/// makes the sock_addr programs see every process on the node.
pub fn cgroup2_root(mounts: &[Mount]) -> Option<PathBuf> {
    mounts
        .iter()
        .find(|m| m.fs_type == "cgroup2" && m.root == "/")
        .map(|m| m.mount_point.clone())
}

pub fn read_mountinfo() -> std::io::Result<Vec<Mount>> {
    Ok(parse_mountinfo(&std::fs::read_to_string(
        "/proc/self/mountinfo",
    )?))
}

/// Makes sure tracepoints can be attached: aya reads event ids from tracefs (or debugfs).
pub fn ensure_tracefs(mounts: &[Mount]) -> std::io::Result<()> {
    if mounts
        .iter()
        .any(|m| m.fs_type == "tracefs" || m.fs_type == "debugfs")
    {
        return Ok(());
    }
    let target = Path::new("/sys/kernel/tracing");
    nix::mount::mount(
        Some("nodev"),
        target,
        Some("tracefs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
";

    #[test]
    fn finds_hybrid_cgroup2_root() {
        let mounts = parse_mountinfo(HYBRID);
        assert_eq!(
            cgroup2_root(&mounts),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn ignores_a_cgroup2_mount_of_a_subtree() {
        // A container sees its own cgroup mounted with a non-root `root` field first.
        let text = "50 40 0:30 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n\
                    51 40 0:30 / /host/sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_root(&parse_mountinfo(text)),
            Some(PathBuf::from("/host/sys/fs/cgroup"))
        );
    }

    #[test]
    fn no_cgroup2_is_none_and_garbage_does_not_panic() {
        assert_eq!(
            cgroup2_root(&parse_mountinfo("garbage\n\n - \\\\0\n")),
            None
        );
    }

    #[test]
    fn unescapes_octal() {
        let m = parse_mountinfo("1 2 0:1 / /mnt/with\\040space rw - tmpfs tmpfs rw\n");
        assert_eq!(m[0].mount_point, PathBuf::from("/mnt/with space"));
    }
}
