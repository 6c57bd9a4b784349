//! The `auditor` crate's imports run one way, down the layers README.md's "Layout" names:
//!
//!   capture → model → edge → event → identity → verdict → provenance → metrics →
//!   internal_events → alert → store → report → networkpolicy → cli → daemon → commands → main
//!
//! This test reads every `crate::…` path in `auditor/src` (in `use` trees and inline, comments
//! left out) and fails on any that names a module above the file's own, naming the file and
//! the path. It also fails on an import cycle between two files of one module (a module's
//! `mod.rs` may use its own children; a child may use its parent).
//!
//! Counting, for anyone: `cargo test -p auditor --test layering -- --nocapture` prints the
//! number of back-running imports and of import cycles before it asserts; with
//! `LAYERING_SRC=<other checkout>/auditor/src` it counts another tree.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// Bottom first. A module may import only modules listed before it (and itself). `lib` is
/// the crate root's own items (`shutdown_signal`), which import nothing of the crate.
const LAYERS: &[&str] = &[
    "lib",
    "memory",
    "capture",
    "model",
    "dns",
    "edge",
    "event",
    "identity",
    "verdict",
    "provenance",
    "metrics",
    "internal_events",
    "alert",
    "store",
    "report",
    "networkpolicy",
    "cli",
    "daemon",
    "commands",
    "main",
];

/// `LAYERING_SRC` points the count at another checkout's `auditor/src` (e.g. an older
/// commit's, for a before/after figure).
fn src_dir() -> PathBuf {
    std::env::var_os("LAYERING_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source without comments and string contents, so a doc comment that mentions
/// `crate::x` is not an import.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'r'
            && (i == 0 || !is_ident(b[i - 1] as char))
            && matches!(b.get(i + 1), Some(b'"' | b'#'))
        {
            // A raw string r"…" or r#"…"#: it ends at a quote followed by as many #.
            let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            let open = i + 1 + hashes;
            if b.get(open) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let end = (open + 1..b.len())
                .find(|&k| b[k..].starts_with(&close))
                .unwrap_or(b.len());
            out.push_str("\"\"");
            i = end + close.len();
        } else if b[i] == b'"' {
            let start = i + 1;
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            // A path in a string (`#[serde(with = "crate::model::time::as_rfc3339")]`)
            // is an import too; any other string is left out.
            let text = &src[start..i.min(b.len())];
            out.push('"');
            if text.starts_with("crate::") {
                out.push_str(text);
                out.push(' ');
            }
            out.push('"');
            i += 1;
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            // An escaped char literal: '\\', '\n', '\'', '\u{1b}'.
            let end = (i + 2..b.len()).find(|&k| b[k] == b'\'' && k > i + 2);
            out.push_str("' '");
            i = end.map_or(b.len(), |k| k + 1);
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            // A char literal such as '"' or '{'.
            out.push_str("' '");
            i += 3;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path below `root` (`crate`, `super` or `auditor`) this code names, as full
/// `a::b::c` strings: `use root::{a::{b, c}, d}` gives `a::b`, `a::c`, `d`.
fn paths_below(code: &str, root: &str) -> Vec<String> {
    let mut out = Vec::new();
    let needle = format!("{root}::");
    let mut from = 0;
    while let Some(pos) = code[from..].find(&needle) {
        let at = from + pos;
        from = at + needle.len();
        if code[..at].chars().next_back().is_some_and(is_ident) || code[..at].ends_with("::") {
            continue; // e.g. `my_crate::`, or the inner `super::` of `super::super::`
        }
        expand(&code[from..], String::new(), &mut out);
    }
    out
}

/// Reads one path (or brace tree) at the start of `rest`, under `prefix`.
fn expand(rest: &str, prefix: String, out: &mut Vec<String>) {
    let rest = rest.trim_start();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    expand(&inner[start..i], prefix.clone(), out);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&inner[start..i], prefix.clone(), out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        return;
    }
    let seg: String = rest.chars().take_while(|c| is_ident(*c)).collect();
    if seg.is_empty() {
        if !prefix.is_empty() {
            out.push(prefix);
        }
        return;
    }
    let path = if prefix.is_empty() {
        seg.clone()
    } else {
        format!("{prefix}::{seg}")
    };
    let after = &rest[seg.len()..];
    match after.strip_prefix("::") {
        Some(more) => expand(more, path, out),
        None => out.push(path),
    }
}

/// `identity/mesh.rs` → ("identity", ["identity", "mesh"]); `lib.rs` → ("lib", []).
fn module_of(rel: &Path) -> (String, Vec<String>) {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    let top = parts[0].clone();
    if top == "lib" {
        return (top, Vec::new());
    }
    (top, parts)
}

struct Findings {
    /// (file, path, its module): imports against the layers.
    back: Vec<(String, String, String)>,
    /// Files of one module that import each other, as cycles.
    cycles: Vec<Vec<String>>,
    /// Modules not in LAYERS (a new one must be placed).
    unplaced: BTreeSet<String>,
    /// Cycles between top-level modules (each module one node).
    module_cycles: Vec<Vec<String>>,
}

fn scan(src: &Path) -> Findings {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut back = Vec::new();
    let mut unplaced = BTreeSet::new();
    // Module path (["identity", "kubernetes"]) of every file, to resolve in-module edges.
    let known: BTreeSet<Vec<String>> = files
        .iter()
        .map(|f| module_of(f.strip_prefix(src).unwrap()).1)
        .collect();
    let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let mut modules: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(src).unwrap();
        let (top, me) = module_of(rel);
        let code = code_only(&std::fs::read_to_string(f).unwrap());
        let name = rel.display().to_string();
        let mut named: Vec<Vec<String>> = Vec::new();
        let root = if top == "main" { "auditor" } else { "crate" };
        for p in paths_below(&code, root) {
            let segs: Vec<String> = p.split("::").map(str::to_string).collect();
            let target = if known.contains(&segs[..1]) || segs[0] == "shutdown_signal" {
                if segs[0] == "shutdown_signal" {
                    "lib".to_string()
                } else {
                    segs[0].clone()
                }
            } else {
                continue; // an item of lib.rs or a macro: the root
            };
            if target != top {
                modules
                    .entry(vec![top.clone()])
                    .or_default()
                    .insert(vec![target.clone()]);
                match (rank(&top), rank(&target)) {
                    (Some(a), Some(b)) if b > a => back.push((name.clone(), p.clone(), target)),
                    (None, _) => {
                        unplaced.insert(top.clone());
                    }
                    (_, None) => {
                        unplaced.insert(target);
                    }
                    _ => {}
                }
            }
            named.push(segs);
        }
        // `super::x` from identity/mesh.rs is crate::identity::x.
        let parent: Vec<String> = me[..me.len().saturating_sub(1)].to_vec();
        for p in paths_below(&code, "super") {
            // `super::super::x` climbs once per `super`.
            let mut rest: Vec<&str> = p.split("::").collect();
            let mut base = parent.clone();
            while rest.first() == Some(&"super") {
                rest.remove(0);
                base.pop();
            }
            let mut segs = base;
            segs.extend(rest.iter().map(|x| x.to_string()));
            if let Some(first) = segs.first().filter(|f| **f != top)
                && let (Some(a), Some(b)) = (rank(&top), rank(first))
                && b > a
            {
                back.push((name.clone(), segs.join("::"), first.clone()));
            }
            named.push(segs);
        }
        // In-module edges: the longest known module path each named path starts with.
        for segs in named {
            if segs.first() != Some(&top) || me.is_empty() {
                continue;
            }
            let target = (1..=segs.len())
                .rev()
                .map(|n| segs[..n].to_vec())
                .find(|m| known.contains(m));
            let Some(target) = target else { continue };
            // A module owns its children: its own re-exports of them are not imports.
            let own_child = target.len() > me.len() && target.starts_with(&me);
            if target != me && !own_child {
                graph.entry(me.clone()).or_default().insert(target);
            }
        }
    }
    Findings {
        back,
        cycles: cycles(&graph),
        unplaced,
        module_cycles: cycles(&modules),
    }
}

/// Strongly connected components with more than one file (Tarjan).
fn cycles(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<String>> {
    struct T<'g> {
        g: &'g BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'g Vec<String>, usize>,
        low: BTreeMap<&'g Vec<String>, usize>,
        stack: Vec<&'g Vec<String>>,
        on: BTreeSet<&'g Vec<String>>,
        out: Vec<Vec<String>>,
    }
    fn visit<'g>(t: &mut T<'g>, v: &'g Vec<String>) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        if let Some(next) = t.g.get(v) {
            for w in next {
                if !t.index.contains_key(w) {
                    visit(t, w);
                    let l = t.low[w].min(t.low[v]);
                    t.low.insert(v, l);
                } else if t.on.contains(w) {
                    let l = t.index[w].min(t.low[v]);
                    t.low.insert(v, l);
                }
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.join("/"));
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn imports_run_down_the_layers() {
    let f = scan(&src_dir());
    println!(
        "auditor/src: {} back-running import(s), {} in-module import cycle(s), {} cycle(s) between modules",
        f.back.len(),
        f.cycles.len(),
        f.module_cycles.len()
    );
    for c in &f.module_cycles {
        println!("  modules in one cycle: {}", c.join(", "));
    }
    for (file, path, target) in &f.back {
        println!("  {file}: crate::{path} ({target} is above this module)");
    }
    for c in &f.cycles {
        println!("  cycle: {}", c.join(" <-> "));
    }
    assert!(
        f.unplaced.is_empty(),
        "modules with no place in LAYERS (tests/layering.rs): {:?}; place each where its imports allow",
        f.unplaced
    );
    assert!(
        f.back.is_empty() && f.cycles.is_empty() && f.module_cycles.is_empty(),
        "imports run against the layers (see the lines above); move the named item down to where both can use it"
    );
}

/// The checker itself: a back-running import in a scratch tree is found, with its name.
#[test]
fn a_back_running_import_is_named() {
    let dir = std::env::temp_dir().join(format!("layering-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("identity")).unwrap();
    std::fs::write(dir.join("lib.rs"), "pub mod identity; pub mod daemon;").unwrap();
    std::fs::write(
        dir.join("identity/mod.rs"),
        "pub mod a; pub mod b; pub use a::A;\n// crate::daemon::in_a_comment\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("identity/a.rs"),
        "use crate::{daemon::release_freed_memory, identity::b::B};\npub struct A;",
    )
    .unwrap();
    // An escaped char literal and a raw string must not hide the path after them, and a
    // path in a serde attribute string is an import.
    std::fs::write(
        dir.join("identity/b.rs"),
        "use super::a::A; const Q: char = '\\\\'; const R: &str = r#\"a\"b\"#;\n\
         fn f() { crate::daemon::later(); }\n\
         #[serde(with = \"crate::daemon::as_text\")] pub struct B;",
    )
    .unwrap();
    std::fs::write(dir.join("daemon.rs"), "use crate::identity::A;").unwrap();
    let f = scan(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    let back: Vec<(&str, &str)> = f
        .back
        .iter()
        .map(|(file, path, _)| (file.as_str(), path.as_str()))
        .collect();
    assert_eq!(
        back,
        [
            ("identity/a.rs", "daemon::release_freed_memory"),
            ("identity/b.rs", "daemon::later"),
            ("identity/b.rs", "daemon::as_text"),
        ]
    );
    assert_eq!(f.cycles, vec![vec!["identity/a", "identity/b"]]);
}
