//! cgroup v2 id → path. A cgroup's id is the inode number of its directory in the
//! cgroup2 filesystem, so a walk of that tree builds the map; it is rebuilt when an
//! unknown id shows up (a new pod), at most once per `REFRESH_MIN`.

use std::{
    collections::HashMap,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

const REFRESH_MIN: Duration = Duration::from_secs(1);
/// A node has thousands of cgroups at most; this bounds a pathological tree.
const MAX_ENTRIES: usize = 200_000;

pub struct CgroupPaths {
    root: PathBuf,
    paths: HashMap<u64, String>,
    last_walk: Option<Instant>,
}

impl CgroupPaths {
    pub fn new(root: PathBuf) -> CgroupPaths {
        CgroupPaths {
            root,
            paths: HashMap::new(),
            last_walk: None,
        }
    }

    /// The path of `id` relative to the cgroup root ("/" for the root itself).
    pub fn path(&mut self, id: u64) -> Option<&str> {
        if id == 0 {
            return None;
        }
        if !self.paths.contains_key(&id)
            && self.last_walk.is_none_or(|t| t.elapsed() >= REFRESH_MIN)
        {
            self.walk();
        }
        self.paths.get(&id).map(String::as_str)
    }

    fn walk(&mut self) {
        self.last_walk = Some(Instant::now());
        self.paths.clear();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            if self.paths.len() >= MAX_ENTRIES {
                break;
            }
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue;
            };
            self.paths.insert(meta.ino(), relative(&self.root, &dir));
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
    }
}

fn relative(root: &Path, dir: &Path) -> String {
    match dir.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => "/".to_string(),
        Ok(rel) => format!("/{}", rel.display()),
        Err(_) => dir.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_ids_of_a_directory_tree() {
        let root = std::env::temp_dir().join(format!("cg-test-{}", std::process::id()));
        std::fs::create_dir_all(root.join("kubepods/pod1")).unwrap();
        let ino = std::fs::metadata(root.join("kubepods/pod1")).unwrap().ino();
        let mut c = CgroupPaths::new(root.clone());
        assert_eq!(c.path(ino), Some("/kubepods/pod1"));
        assert_eq!(c.path(0), None);
        std::fs::remove_dir_all(root).unwrap();
    }
}
