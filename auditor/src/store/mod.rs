//! The durable store of observations (SQLite, embedded): per node, every edge judged
//! (source, destination, transport, port, verdict) and every documented row observed,
//! with counts and first/last seen, plus coverage: when the auditor was watching and when
//! the kernel reported drops. What a commit returned OK for survives `kill -9` (WAL,
//! synchronous=FULL). Growth is bounded by `prune` (retention).

pub mod batch;

use std::{net::IpAddr, path::Path};

use anyhow::{Context, bail};
use rusqlite::{Connection, OptionalExtension, params};

pub use batch::{Batch, CoverageUpdate, RowDelta};

use crate::{
    edge::{Direction, Drops, Edge, Endpoint, Process, Transport},
    model::Millis,
    model::Verdict,
};

/// 2: an edge's ends and example process are typed (`src_end`, `dst_end`, `process`:
/// JSON of `crate::edge` types). A version 1 store is upgraded when `auditor run` opens
/// it, and read as it is by reports.
/// 3: a documented row's observations are kept per row content (`rows.digest`, the
/// sha256 of source, destination, transport and ports): a row is credited only with
/// traffic judged against that content. Version 1 and 2 stores are upgraded by
/// `auditor run` (their rows get an empty digest: judged against the recorded allowlist)
/// and read as they are by reports.
/// 4: an edge keeps its platform baseline entry and its mesh leg (`edges.platform`,
/// `edges.mesh_leg`). Version 3 stores gain the two columns (null) when `auditor run`
/// opens them; reports read older stores as they are.
/// 5: where observations came from (`captures`: one row per live capture or replay).
/// Older stores gain the (empty) table when opened for writing; reports read them as
/// they are, with where their observations came from unknown.
/// 6: an edge is kept per DNS name its destination was reached by (`edges.domain`, in the
/// key; '' for none), and the DNS names: the name table, kept across restarts
/// (`dns_names`), and which resolver gave which name when (`dns_learned`). Version 5
/// stores are rebuilt when `auditor run` opens them; reports read older stores as they are.
/// 7: coverage records the connections the kernel lost (`coverage.connections_lost`, exact,
/// from the per-epoch flow maps) where it recorded LRU evictions. When `auditor run`
/// upgrades a version 6 store, and when a report reads an older one, its evictions,
/// full ring buffers and refused inserts all count as lost: each of them may have lost
/// connections then.
/// 8: edges and row observations are kept per time bucket (`bucket_ms`, in the key: the
/// start of the `BUCKET_MS` window their commit's first sighting fell in), so a report of
/// a period counts what was seen in it, to the bucket, not everything an edge ever did.
/// Upgrading a version 7 store keeps its rows whole (`bucket_ms` -1: read by their
/// first and last seen, as before); reports read older stores as they are.
const SCHEMA_VERSION: i64 = 8;

/// The width of a time bucket: a report of a period counts the buckets that overlap it,
/// so its counts are exact at bucket boundaries (`auditor report --chain` ends its
/// periods on them) and may include up to this much before or after otherwise. Five
/// minutes keeps a continuously active edge at 288 rows a day (pruned by retention).
pub const BUCKET_MS: Millis = 5 * 60_000;

/// The start of the bucket `at` falls in.
pub fn bucket_of(at: Millis) -> Millis {
    at.div_euclid(BUCKET_MS) * BUCKET_MS
}

/// The version new stores are created at; `init` upgrades them from there.
const CREATED_AT_VERSION: i64 = 7;

/// What an older store's coverage row says was lost (see version 7), before and after its
/// column is renamed.
const OLD_LOST: &str = "lru_evictions + ringbuf_full + flow_insert_failed";
const OLD_LOST_RENAMED: &str = "connections_lost + ringbuf_full + flow_insert_failed";

const DNS_TABLES: &str = "
CREATE TABLE IF NOT EXISTS dns_names (
    node TEXT NOT NULL, netns_cookie INTEGER NOT NULL, addr TEXT NOT NULL, name TEXT NOT NULL,
    position INTEGER NOT NULL, learned_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL,
    bound_until_ms INTEGER, resolver TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dns_names_node ON dns_names (node);
CREATE TABLE IF NOT EXISTS dns_learned (
    node TEXT NOT NULL, name TEXT NOT NULL, resolver TEXT NOT NULL, answers INTEGER NOT NULL,
    first_learned_ms INTEGER NOT NULL, last_learned_ms INTEGER NOT NULL,
    PRIMARY KEY (node, name, resolver)
);
";

/// The edges table of version 6 (the key gains `domain`).
const EDGES_V6: &str = "
CREATE TABLE IF NOT EXISTS edges (
    node TEXT NOT NULL, verdict TEXT NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL,
    transport TEXT NOT NULL, port INTEGER NOT NULL,
    rules TEXT NOT NULL, documented TEXT,
    count INTEGER NOT NULL, first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,
    direction TEXT, src_end TEXT, dst_end TEXT, process TEXT,
    platform TEXT, mesh_leg TEXT, domain TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (node, verdict, src, dst, transport, port, domain)
);
CREATE INDEX IF NOT EXISTS edges_last_seen ON edges (last_seen_ms);
";

const CAPTURES: &str = "
CREATE TABLE IF NOT EXISTS captures (
    mode TEXT NOT NULL, node TEXT NOT NULL, auditor_version TEXT NOT NULL,
    kernel TEXT, flows_file TEXT, flows_sha256 TEXT, capture_node TEXT,
    intervals_known INTEGER, recorded_ms INTEGER NOT NULL
);
";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    node TEXT NOT NULL, rule INTEGER NOT NULL, digest TEXT NOT NULL DEFAULT '',
    count INTEGER NOT NULL, first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,
    example_src TEXT, example_comm TEXT,
    PRIMARY KEY (node, rule, digest)
);
CREATE TABLE IF NOT EXISTS coverage (
    node TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL,
    ringbuf_full INTEGER NOT NULL DEFAULT 0, connections_lost INTEGER NOT NULL DEFAULT 0,
    flow_insert_failed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (node, start_ms)
);
";

/// Where a store's observations came from: a live capture by `auditor run`, or a
/// replay of a flows file by `auditor replay --store`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CaptureSource {
    /// "live" or "replay".
    pub mode: String,
    /// The node the observations are stored under.
    pub node: String,
    pub auditor_version: String,
    /// The kernel release (live).
    pub kernel: Option<String>,
    /// The flows file replayed ("-" for stdin), and the sha256 of the bytes read.
    pub flows_file: Option<String>,
    pub flows_sha256: Option<String>,
    /// The node(s) the recording's `watch` lines name, comma-joined (replay).
    pub capture_node: Option<String>,
    /// Whether the recording said what it watched (`watch` lines; replay).
    pub intervals_known: Option<bool>,
    pub recorded_ms: Millis,
}

#[cfg(test)]
impl CaptureSource {
    /// A live capture as the unit tests of the store and the report share it.
    pub(crate) fn test_live(node: &str, recorded_ms: Millis) -> CaptureSource {
        CaptureSource {
            mode: "live".into(),
            node: node.into(),
            auditor_version: "0.1.0".into(),
            kernel: Some("6.8.0".into()),
            flows_file: None,
            flows_sha256: None,
            capture_node: None,
            intervals_known: None,
            recorded_ms,
        }
    }
}

pub struct Store {
    conn: Connection,
    version: i64,
    /// Where the store lives and the file it had open there (device, inode): a commit
    /// is acknowledged only while the path still names that file. None for read-only
    /// opens.
    file: Option<(std::path::PathBuf, (u64, u64))>,
    /// What `set_allowlist` and `record_inputs` last wrote, written again into a store
    /// started afresh after its file went away, so its reports need nothing else.
    seed: Seed,
    restarted: Option<String>,
}

#[derive(Default)]
struct Seed {
    allowlist: Option<String>,
    inputs: Option<(crate::provenance::Inputs, String)>,
    captures: Vec<CaptureSource>,
}

/// The (device, inode) a path names now, if any.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// True when an open failed because the file is damaged (not a database, or corrupt),
/// as opposed to busy, unreadable, someone else's database or a newer layout.
fn is_damaged(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<rusqlite::Error>(),
        Some(rusqlite::Error::SqliteFailure(f, _))
            if matches!(f.code, rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    ) || e.downcast_ref::<Damaged>().is_some()
}

#[derive(Debug, thiserror::Error)]
#[error("integrity check failed: {0}")]
struct Damaged(String);

/// A DNS name as the store keeps its learning: which trusted resolver gave it, how often,
/// first and last.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LearnedName {
    pub node: String,
    pub name: String,
    pub resolver: std::net::IpAddr,
    pub answers: u64,
    pub first_learned_ms: Millis,
    pub last_learned_ms: Millis,
}

/// One stored edge, as reports read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEdge {
    pub node: String,
    pub edge: Edge,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowObservation {
    pub node: String,
    pub rule: u32,
    /// The content digest of the row judged against ("" in stores before version 3).
    pub digest: String,
    pub count: u64,
    pub first_seen_ms: Millis,
    pub last_seen_ms: Millis,
    pub example_src: Option<String>,
    pub example_comm: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CoverageInterval {
    pub node: String,
    pub start_ms: Millis,
    pub end_ms: Millis,
    pub drops: Drops,
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("store values serialise")
}

fn parse_json<T: serde::de::DeserializeOwned>(text: Option<String>) -> Option<T> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn conversion(what: &str, text: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("unknown {what} {text:?}").into(),
    )
}

fn transport(text: &str) -> rusqlite::Result<Transport> {
    match text {
        "tcp" => Ok(Transport::Tcp),
        "udp" => Ok(Transport::Udp),
        other => Err(conversion("transport", other)),
    }
}

/// An end named by a version 1 store: the key's text (a service, or an address when the
/// end was not attributed), and "ns/pod (Kind/name)" for a pod.
fn v1_end(name: &str, addr: Option<String>, pod: Option<String>) -> Endpoint {
    let mut e = Endpoint::default();
    match name.parse::<IpAddr>() {
        Ok(a) => e.addr = Some(a),
        Err(_) if name != "unknown" => e.service = Some(name.to_string()),
        Err(_) => {}
    }
    if let Some(a) = addr.and_then(|a| a.parse().ok()) {
        e.addr = Some(a);
    }
    if let Some(text) = pod
        && let Some((ns, rest)) = text.split_once('/')
    {
        let (pod, workload) = match rest.split_once(" (") {
            Some((p, w)) => (p, Some(w.trim_end_matches(')').to_string())),
            None => (rest, None),
        };
        e.namespace = Some(ns.to_string());
        e.pod = Some(pod.to_string());
        e.workload = workload;
    }
    e
}

const EDGE_COLUMNS: &str = "node, verdict, src, dst, transport, port, rules, documented, count,
    first_seen_ms, last_seen_ms, direction, src_end, dst_end, process";
/// Version 4 adds the platform entry and the mesh leg (columns 15 and 16).
const V4_EDGE_COLUMNS: &str = "node, verdict, src, dst, transport, port, rules, documented, count,
    first_seen_ms, last_seen_ms, direction, src_end, dst_end, process, platform, mesh_leg";
const V1_EDGE_COLUMNS: &str = "node, verdict, src, dst, transport, port, rules, documented, count,
    first_seen_ms, last_seen_ms, dst_addr, example_src_addr, example_pod, example_comm,
    example_pid, example_cgroup";

/// An edge row, selected with `EDGE_COLUMNS` (version 2) or `V1_EDGE_COLUMNS`.
fn edge_row(r: &rusqlite::Row<'_>, version: i64) -> rusqlite::Result<StoredEdge> {
    let verdict: String = r.get(1)?;
    let src: String = r.get(2)?;
    let dst: String = r.get(3)?;
    let port: u16 = r.get(5)?;
    let rules: String = r.get(6)?;
    let (direction, src_end, mut dst_end, process) = if version == 1 {
        let comm: Option<String> = r.get(14)?;
        let process = comm.map(|comm| -> rusqlite::Result<Process> {
            Ok(Process {
                pid: r.get::<_, Option<u32>>(15)?.unwrap_or(0),
                comm,
                cgroup: r.get(16)?,
            })
        });
        (
            Direction::Egress,
            v1_end(&src, r.get(12)?, r.get(13)?),
            v1_end(&dst, r.get(11)?, None),
            process.transpose()?,
        )
    } else {
        (
            parse_json(r.get(11)?).unwrap_or(Direction::Egress),
            parse_json(r.get(12)?).unwrap_or_else(|| v1_end(&src, None, None)),
            parse_json(r.get(13)?).unwrap_or_else(|| v1_end(&dst, None, None)),
            parse_json(r.get(14)?),
        )
    };
    dst_end.port = Some(port);
    let (platform, mesh_leg) = if version >= 4 {
        (r.get(15)?, parse_json(r.get::<_, Option<String>>(16)?))
    } else {
        (None, None)
    };
    Ok(StoredEdge {
        node: r.get(0)?,
        edge: Edge {
            verdict: Verdict::parse(&verdict).ok_or_else(|| conversion("verdict", &verdict))?,
            rules: rules.split(',').filter_map(|s| s.parse().ok()).collect(),
            transport: transport(&r.get::<_, String>(4)?)?,
            direction,
            documented: parse_json(r.get(7)?),
            platform,
            mesh_leg,
            src: src_end,
            dst: dst_end,
            process,
            count: r.get::<_, i64>(8)? as u64,
            first_seen: r.get(9)?,
            last_seen: r.get(10)?,
        },
    })
}

/// A path no store can be at, in the user's words, before SQLite gets to say something
/// less clear ("disk I/O error" for a directory). `reading`: a 0-byte file is no store to
/// read (a new store is started in one only by the opens that create).
fn check_path(path: &Path, reading: bool) -> anyhow::Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if meta.is_dir() {
        bail!("{} is a directory, not a store file", path.display());
    }
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    // A store not yet checkpointed can be an empty file beside its log.
    let wal_empty = std::fs::metadata(&wal).map_or(true, |m| m.len() == 0);
    if reading && meta.is_file() && meta.len() == 0 && wal_empty {
        bail!(
            "{} is empty: not a store (a store is made by auditor run or replay --store)",
            path.display()
        );
    }
    Ok(())
}

/// Why a file is not an auditor store, when that is the reason an open failed.
#[derive(Debug, thiserror::Error)]
#[error("an SQLite database, but not one auditor wrote")]
struct ForeignDatabase;

/// An open failure in the user's words: "not an auditor store" only when the file is not
/// one (not SQLite, or another program's database); anything else (busy, permissions, a
/// newer layout) as it is, naming the file.
fn not_a_store(path: &Path, e: &anyhow::Error) -> anyhow::Error {
    let not_sqlite = matches!(
        e.downcast_ref::<rusqlite::Error>(),
        Some(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::NotADatabase
    );
    if not_sqlite {
        anyhow::anyhow!(
            "{}: not an auditor store (it is not an SQLite database)",
            path.display()
        )
    } else if e.downcast_ref::<ForeignDatabase>().is_some() {
        anyhow::anyhow!(
            "{}: not an auditor store ({ForeignDatabase})",
            path.display()
        )
    } else {
        anyhow::anyhow!("opening store {}: {e:#}", path.display())
    }
}

impl Store {
    /// Opens (creating if needed) a store, upgrading an older layout. Refuses a file that
    /// is not an auditor store.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        Store::open_raw(path, false)
    }

    /// As `open` for the daemon: a damaged store (not a database, or failing SQLite's
    /// quick check) is moved aside to `<path>.corrupt-<unix seconds>` (with its -wal and
    /// -shm files; kept, never deleted) and a new store is started, so auditing starts
    /// anyway. Returns where the damaged one went. Someone else's database, a newer
    /// layout, or a file that cannot be read are still refused.
    pub fn open_or_set_aside(path: &Path) -> anyhow::Result<(Store, Option<std::path::PathBuf>)> {
        check_path(path, false)?;
        match Store::open_raw(path, true) {
            Ok(s) => Ok((s, None)),
            Err(e) if is_damaged(&e) => {
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let mut aside = path.as_os_str().to_owned();
                aside.push(format!(".corrupt-{secs}"));
                let aside = std::path::PathBuf::from(aside);
                std::fs::rename(path, &aside).with_context(|| {
                    format!(
                        "{}: the store is damaged ({e:#}) and cannot be moved aside to {}",
                        path.display(),
                        aside.display()
                    )
                })?;
                for suffix in ["-wal", "-shm"] {
                    let mut from = path.as_os_str().to_owned();
                    from.push(suffix);
                    let mut to = aside.as_os_str().to_owned();
                    to.push(suffix);
                    let _ = std::fs::rename(&from, &to);
                }
                let store = Store::open(path)?;
                tracing::debug!(error = format!("{e:#}"), "damaged store");
                Ok((store, Some(aside)))
            }
            Err(e) => Err(not_a_store(path, &e)),
        }
    }

    fn open_raw(path: &Path, raw: bool) -> anyhow::Result<Store> {
        check_path(path, false)?;
        let wrap = |e: anyhow::Error| if raw { e } else { not_a_store(path, &e) };
        let conn =
            Connection::open(path).with_context(|| format!("opening store {}", path.display()))?;
        let mut store = Store {
            conn,
            version: 0,
            file: None,
            seed: Seed::default(),
            restarted: None,
        };
        // Checked before anything is written: another program's database is refused,
        // never switched to WAL or extended with our tables.
        store.refuse_foreign().map_err(wrap)?;
        if raw {
            // Only the daemon's open pays for a check of every page: it is the one that
            // would otherwise write into a damaged file for hours.
            let check: String = store
                .conn
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(|e| wrap(e.into()))?;
            if check != "ok" {
                return Err(Damaged(check).into());
            }
        }
        let pragmas = |conn: &Connection| -> anyhow::Result<()> {
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            Ok(())
        };
        pragmas(&store.conn).map_err(wrap)?;
        store.init().map_err(wrap)?;
        store.file = file_id(path).map(|id| (path.to_path_buf(), id));
        Ok(store)
    }

    /// Fails when the store's path no longer names the file this store has open (it was
    /// removed, or replaced): what is written to the open file then is not on disk where
    /// anyone will look, so it must not be acknowledged.
    fn check_file(&self) -> anyhow::Result<()> {
        let Some((path, id)) = &self.file else {
            return Ok(());
        };
        match file_id(path) {
            Some(now) if now == *id => Ok(()),
            Some(_) => bail!(
                "{}: the store file was replaced by another file",
                path.display()
            ),
            None => bail!("{}: the store file was removed", path.display()),
        }
    }

    /// After `check_file` failed: a new store at the same path (when its directory is
    /// there), seeded with the allowlist and inputs last recorded.
    fn reopen(&mut self) -> anyhow::Result<()> {
        let Some((path, _)) = self.file.clone() else {
            return Ok(());
        };
        // Close the lost file first. A -wal file left at the path is the lost file's log
        // (SQLite keeps it when its database went away): a new connection would replay
        // it into whatever is at the path now, so it is moved aside (kept) first.
        let lost = std::mem::replace(&mut self.conn, Connection::open_in_memory()?);
        drop(lost);
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for suffix in ["-wal", "-shm"] {
            let mut from = path.as_os_str().to_owned();
            from.push(suffix);
            let mut to = path.as_os_str().to_owned();
            to.push(format!(".lost-{secs}{suffix}"));
            let _ = std::fs::rename(&from, &to);
        }
        let mut fresh = Store::open(&path)?;
        if let Some(json) = &self.seed.allowlist {
            fresh.set_allowlist(json)?;
        }
        if let Some((inputs, json)) = &self.seed.inputs {
            fresh.record_inputs(inputs, json)?;
        }
        for c in &self.seed.captures {
            fresh.record_capture(c)?;
        }
        fresh.seed = std::mem::take(&mut self.seed);
        fresh.restarted = self.restarted.take();
        *self = fresh;
        Ok(())
    }

    /// Before a write: when the file went away, a new store is started at the path (the
    /// reason kept for `take_restarted`); an error when it cannot be (directory gone).
    fn ensure_file(&mut self) -> anyhow::Result<()> {
        if let Err(gone) = self.check_file() {
            self.reopen()
                .with_context(|| format!("{gone:#}; starting a new store there failed"))?;
            self.restarted = Some(format!("{gone:#}"));
        }
        Ok(())
    }

    /// Why the store started a new file at its path since the last call, if it did (for
    /// the daemon to log and count).
    pub fn take_restarted(&mut self) -> Option<String> {
        self.restarted.take()
    }

    /// Opens an existing store for reading only (reports): never creates one.
    pub fn open_existing(path: &Path) -> anyhow::Result<Store> {
        if !path.exists() {
            bail!("{}: cannot read: no such file", path.display());
        }
        check_path(path, true)?;
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening store {}", path.display()))?;
        let mut store = Store {
            conn,
            version: 0,
            file: None,
            seed: Seed::default(),
            restarted: None,
        };
        store.version = store.check_version().map_err(|e| not_a_store(path, &e))?;
        Ok(store)
    }

    /// A file with tables but no auditor `meta` is someone else's database.
    fn refuse_foreign(&self) -> anyhow::Result<()> {
        let tables: i64 = self.conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )?;
        if tables > 0 && self.version_text()?.is_none() {
            return Err(ForeignDatabase.into());
        }
        Ok(())
    }

    fn init(&mut self) -> anyhow::Result<()> {
        let existing = self.version_text()?;
        if existing.is_none() {
            self.conn.execute_batch(SCHEMA)?;
            self.conn.execute_batch(EDGES_V6)?;
            self.conn.execute_batch(CAPTURES)?;
            self.conn.execute_batch(DNS_TABLES)?;
            self.conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?1)",
                params![CREATED_AT_VERSION.to_string()],
            )?;
        }
        self.version = self.check_version()?;
        if self.version == 1 {
            self.upgrade_from_1()?;
            self.version = 2;
        }
        if self.version == 2 {
            self.upgrade_from_2()?;
            self.version = 3;
        }
        if self.version == 3 {
            self.conn.execute_batch(
                "BEGIN;
                 ALTER TABLE edges ADD COLUMN platform TEXT;
                 ALTER TABLE edges ADD COLUMN mesh_leg TEXT;
                 UPDATE meta SET value = '4' WHERE key = 'schema_version';
                 COMMIT;",
            )?;
            self.version = 4;
        }
        if self.version == 4 {
            self.conn.execute_batch(&format!(
                "BEGIN; {CAPTURES} UPDATE meta SET value = '5' WHERE key = 'schema_version'; COMMIT;"
            ))?;
            self.version = 5;
        }
        if self.version == 5 {
            self.upgrade_from_5()?;
            self.version = 6;
        }
        if self.version == 6 {
            let rename = if self.coverage_counts_evictions()? {
                format!(
                    "ALTER TABLE coverage RENAME COLUMN lru_evictions TO connections_lost;
                     UPDATE coverage SET connections_lost = {OLD_LOST_RENAMED};"
                )
            } else {
                String::new()
            };
            self.conn.execute_batch(&format!(
                "BEGIN; {rename} UPDATE meta SET value = '7' WHERE key = 'schema_version'; COMMIT;"
            ))?;
            self.version = 7;
        }
        if self.version == 7 {
            self.upgrade_from_7()?;
            self.version = SCHEMA_VERSION;
        }
        Ok(())
    }

    /// True when the coverage table is an older version's (`lru_evictions`).
    fn coverage_counts_evictions(&self) -> anyhow::Result<bool> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM pragma_table_info('coverage') WHERE name = 'lru_evictions'",
            [],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )?)
    }

    fn version_text(&self) -> anyhow::Result<Option<String>> {
        let has_meta: bool = self.conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )?;
        if !has_meta {
            return Ok(None);
        }
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn check_version(&self) -> anyhow::Result<i64> {
        match self.version_text()?.as_deref() {
            Some("1") => Ok(1),
            Some("2") => Ok(2),
            Some("3") => Ok(3),
            Some("4") => Ok(4),
            Some("5") => Ok(5),
            Some("6") => Ok(6),
            Some("7") => Ok(7),
            Some("8") => Ok(8),
            Some(other) => {
                bail!("store schema version {other} is not supported (expected {SCHEMA_VERSION})")
            }
            None => Err(ForeignDatabase.into()),
        }
    }

    /// Version 7 to 8: edges and rows are rebuilt with `bucket_ms` in their keys; what
    /// they held keeps bucket -1 (not bucketed: its first and last seen say when).
    fn upgrade_from_7(&mut self) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute_batch(
            "CREATE TABLE edges_v8 (
                node TEXT NOT NULL, verdict TEXT NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL,
                transport TEXT NOT NULL, port INTEGER NOT NULL,
                rules TEXT NOT NULL, documented TEXT,
                count INTEGER NOT NULL, first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,
                direction TEXT, src_end TEXT, dst_end TEXT, process TEXT,
                platform TEXT, mesh_leg TEXT, domain TEXT NOT NULL DEFAULT '',
                bucket_ms INTEGER NOT NULL DEFAULT -1,
                PRIMARY KEY (node, verdict, src, dst, transport, port, domain, bucket_ms)
             );
             INSERT INTO edges_v8 (node, verdict, src, dst, transport, port, rules, documented, count,
                                   first_seen_ms, last_seen_ms, direction, src_end, dst_end, process,
                                   platform, mesh_leg, domain, bucket_ms)
                SELECT node, verdict, src, dst, transport, port, rules, documented, count,
                       first_seen_ms, last_seen_ms, direction, src_end, dst_end, process,
                       platform, mesh_leg, domain, -1 FROM edges;
             DROP INDEX IF EXISTS edges_last_seen;
             DROP TABLE edges;
             ALTER TABLE edges_v8 RENAME TO edges;
             CREATE INDEX edges_last_seen ON edges (last_seen_ms);
             CREATE INDEX edges_bucket ON edges (bucket_ms);
             CREATE TABLE rows_v8 (
                node TEXT NOT NULL, rule INTEGER NOT NULL, digest TEXT NOT NULL DEFAULT '',
                count INTEGER NOT NULL, first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,
                example_src TEXT, example_comm TEXT,
                bucket_ms INTEGER NOT NULL DEFAULT -1,
                PRIMARY KEY (node, rule, digest, bucket_ms)
             );
             INSERT INTO rows_v8 (node, rule, digest, count, first_seen_ms, last_seen_ms,
                                  example_src, example_comm, bucket_ms)
                SELECT node, rule, digest, count, first_seen_ms, last_seen_ms,
                       example_src, example_comm, -1 FROM rows;
             DROP TABLE rows;
             ALTER TABLE rows_v8 RENAME TO rows;
             CREATE INDEX rows_bucket ON rows (bucket_ms);
             UPDATE meta SET value = '8' WHERE key = 'schema_version';",
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Version 1 kept an edge's example in loose columns; version 2 keeps typed ends. The
    /// old columns stay (unused) so no data is rewritten but the new ones.
    /// Version 3 keys row observations by content digest too: the table is rebuilt (SQLite
    /// cannot change a primary key), old rows with an empty digest.
    /// Version 5 to 6: the edges table is rebuilt with `domain` in its key (existing
    /// edges get ''), and the DNS tables are made.
    fn upgrade_from_5(&mut self) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute_batch(&format!(
            "ALTER TABLE edges RENAME TO edges_v5;
             DROP INDEX IF EXISTS edges_last_seen;
             {EDGES_V6}
             INSERT INTO edges (node, verdict, src, dst, transport, port, rules, documented, count,
                                first_seen_ms, last_seen_ms, direction, src_end, dst_end, process,
                                platform, mesh_leg, domain)
                SELECT node, verdict, src, dst, transport, port, rules, documented, count,
                       first_seen_ms, last_seen_ms, direction, src_end, dst_end, process,
                       platform, mesh_leg, '' FROM edges_v5;
             DROP TABLE edges_v5;
             {DNS_TABLES}
             UPDATE meta SET value = '6' WHERE key = 'schema_version';"
        ))?;
        tx.commit()?;
        Ok(())
    }

    fn upgrade_from_2(&mut self) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute_batch(
            "CREATE TABLE rows_v3 (
                node TEXT NOT NULL, rule INTEGER NOT NULL, digest TEXT NOT NULL DEFAULT '',
                count INTEGER NOT NULL, first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,
                example_src TEXT, example_comm TEXT,
                PRIMARY KEY (node, rule, digest)
             );
             INSERT INTO rows_v3 (node, rule, digest, count, first_seen_ms, last_seen_ms, example_src, example_comm)
                SELECT node, rule, '', count, first_seen_ms, last_seen_ms, example_src, example_comm FROM rows;
             DROP TABLE rows;
             ALTER TABLE rows_v3 RENAME TO rows;
             UPDATE meta SET value = '3' WHERE key = 'schema_version';",
        )?;
        tx.commit()?;
        Ok(())
    }

    fn upgrade_from_1(&mut self) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        for col in ["direction", "src_end", "dst_end", "process"] {
            tx.execute(&format!("ALTER TABLE edges ADD COLUMN {col} TEXT"), [])?;
        }
        let old: Vec<(i64, Edge)> = {
            let mut q = tx.prepare(&format!("SELECT {V1_EDGE_COLUMNS}, rowid FROM edges"))?;
            q.query_map([], |r| Ok((r.get(17)?, edge_row(r, 1)?.edge)))?
                .collect::<Result<_, _>>()?
        };
        for (rowid, e) in old {
            tx.execute(
                "UPDATE edges SET direction = ?2, src_end = ?3, dst_end = ?4, process = ?5 WHERE rowid = ?1",
                params![rowid, json(&e.direction), json(&e.src), json(&e.dst), e.process.as_ref().map(json)],
            )?;
        }
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
            params!["2"],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Writes a batch in one transaction. On error nothing of it is stored and the caller
    /// keeps the batch for the next attempt. Ok means on disk at the store's path: when
    /// the file was removed or replaced the store starts a new one there first (or fails
    /// when it cannot), and a file that went away during the commit fails it.
    pub fn commit(&mut self, node: &str, batch: &Batch) -> anyhow::Result<()> {
        self.ensure_file()?;
        self.commit_tx(node, batch)?;
        // Gone while we wrote: the caller keeps the batch and the next commit writes it
        // to the new file.
        self.check_file()
    }

    fn commit_tx(&mut self, node: &str, batch: &Batch) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut up = tx.prepare_cached(
                "INSERT INTO edges (node, verdict, src, dst, transport, port, rules, documented, count,
                                    first_seen_ms, last_seen_ms, direction, src_end, dst_end, process,
                                    platform, mesh_leg, domain, bucket_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)
                 ON CONFLICT (node, verdict, src, dst, transport, port, domain, bucket_ms) DO UPDATE SET
                    count = count + excluded.count,
                    rules = excluded.rules, documented = excluded.documented,
                    first_seen_ms = MIN(first_seen_ms, excluded.first_seen_ms),
                    last_seen_ms = MAX(last_seen_ms, excluded.last_seen_ms),
                    direction = COALESCE(direction, excluded.direction),
                    src_end = COALESCE(src_end, excluded.src_end),
                    dst_end = COALESCE(dst_end, excluded.dst_end),
                    process = COALESCE(process, excluded.process),
                    platform = excluded.platform,
                    mesh_leg = COALESCE(mesh_leg, excluded.mesh_leg)",
            )?;
            for ((k, bucket), e) in &batch.edges {
                let rules = e
                    .rules
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                up.execute(params![
                    node,
                    k.verdict.as_str(),
                    k.src,
                    k.dst,
                    k.transport.as_str(),
                    k.port,
                    rules,
                    e.documented.as_ref().map(json),
                    e.count as i64,
                    e.first_seen,
                    e.last_seen,
                    json(&e.direction),
                    json(&e.src),
                    json(&e.dst),
                    e.process.as_ref().map(json),
                    e.platform,
                    e.mesh_leg.as_ref().map(json),
                    k.domain.as_deref().unwrap_or(""),
                    bucket,
                ])?;
            }
            let mut rows = tx.prepare_cached(
                "INSERT INTO rows (node, rule, count, first_seen_ms, last_seen_ms, example_src, example_comm, digest, bucket_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (node, rule, digest, bucket_ms) DO UPDATE SET
                    count = count + excluded.count,
                    first_seen_ms = MIN(first_seen_ms, excluded.first_seen_ms),
                    last_seen_ms = MAX(last_seen_ms, excluded.last_seen_ms),
                    example_src = COALESCE(example_src, excluded.example_src),
                    example_comm = COALESCE(example_comm, excluded.example_comm)",
            )?;
            for ((rule, digest, bucket), d) in &batch.rows {
                rows.execute(params![
                    node,
                    rule,
                    d.count as i64,
                    d.first_seen_ms,
                    d.last_seen_ms,
                    d.example_src,
                    d.example_comm,
                    digest,
                    bucket
                ])?;
            }
            if let Some(c) = &batch.coverage {
                // Extend the session's last interval while it has no drops; a drop starts
                // a new interval so reports can show exactly when auditing was incomplete.
                let last: Option<(i64, i64)> = tx
                    .query_row(
                        "SELECT start_ms, connections_lost FROM coverage
                         WHERE node = ?1 AND start_ms >= ?2 ORDER BY start_ms DESC LIMIT 1",
                        params![node, c.session_start_ms],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                match last {
                    Some((start, 0)) if c.drops.lost() == 0 => {
                        tx.execute(
                            "UPDATE coverage SET end_ms = ?3 WHERE node = ?1 AND start_ms = ?2",
                            params![node, start, c.end_ms],
                        )?;
                    }
                    _ => {
                        let d = &c.drops;
                        tx.execute(
                            "INSERT OR REPLACE INTO coverage (node, start_ms, end_ms, ringbuf_full, connections_lost, flow_insert_failed)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                            params![node, c.start_ms, c.end_ms, d.ringbuf_full as i64, d.connections_lost as i64, d.flow_insert_failed as i64],
                        )?;
                    }
                }
            }
            // A replayed capture's own intervals, as it wrote them (two captures starting
            // at the same millisecond share one row: the longer span, the drops summed).
            for c in &batch.intervals {
                let d = &c.drops;
                tx.execute(
                    "INSERT INTO coverage (node, start_ms, end_ms, ringbuf_full, connections_lost, flow_insert_failed)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (node, start_ms) DO UPDATE SET end_ms = MAX(end_ms, excluded.end_ms),
                        ringbuf_full = ringbuf_full + excluded.ringbuf_full,
                        connections_lost = connections_lost + excluded.connections_lost,
                        flow_insert_failed = flow_insert_failed + excluded.flow_insert_failed",
                    params![node, c.start_ms, c.end_ms, d.ringbuf_full as i64, d.connections_lost as i64, d.flow_insert_failed as i64],
                )?;
            }
            if let Some(c) = &batch.capture {
                insert_capture(&tx, c)?;
            }
            if let Some(snapshot) = &batch.names {
                // The whole table as it stands: what a restart restores, in this boot.
                tx.execute("DELETE FROM dns_names WHERE node = ?1", params![node])?;
                tx.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                    params![format!("dns_names_boot_id:{node}"), snapshot.boot_id],
                )?;
                let names = &snapshot.names;
                let mut put = tx.prepare_cached(
                    "INSERT INTO dns_names (node, netns_cookie, addr, name, position, learned_ms,
                                            expires_ms, bound_until_ms, resolver)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?;
                for n in names {
                    put.execute(params![
                        node,
                        n.netns_cookie as i64,
                        n.addr.to_string(),
                        n.name,
                        n.position,
                        n.learned_ms,
                        n.expires_ms,
                        n.bound_until_ms,
                        n.resolver.to_string(),
                    ])?;
                }
            }
            let mut learned = tx.prepare_cached(
                "INSERT INTO dns_learned (node, name, resolver, answers, first_learned_ms, last_learned_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (node, name, resolver) DO UPDATE SET
                    answers = answers + excluded.answers,
                    first_learned_ms = MIN(first_learned_ms, excluded.first_learned_ms),
                    last_learned_ms = MAX(last_learned_ms, excluded.last_learned_ms)",
            )?;
            for ((name, resolver), d) in &batch.learned {
                learned.execute(params![
                    node,
                    name,
                    resolver.to_string(),
                    d.answers as i64,
                    d.first_ms,
                    d.last_ms
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records the allowlist the observations were judged against (its JSON form), so a
    /// report from this store needs nothing else.
    pub fn set_allowlist(&mut self, json: &str) -> anyhow::Result<()> {
        // Kept first: a store started afresh later records this one even if this write
        // fails now.
        self.seed.allowlist = Some(json.to_string());
        self.ensure_file()?;
        self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('allowlist', ?1)",
            params![json],
        )?;
        Ok(())
    }

    /// Records the inputs a (re)loaded policy was judged against, and keeps that
    /// allowlist under its content digest: the store keeps every allowlist it judged
    /// against, not only the latest. Meta rows only, so no layout change.
    pub fn record_inputs(
        &mut self,
        inputs: &crate::provenance::Inputs,
        allowlist_json: &str,
    ) -> anyhow::Result<()> {
        self.seed.inputs = Some((inputs.clone(), allowlist_json.to_string()));
        self.ensure_file()?;
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
            params![
                format!("allowlist:{}", inputs.allowlist_content_sha256),
                allowlist_json
            ],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            params![format!("inputs:{}", inputs.since), json(inputs)],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records where observations come from (the daemon at start; a replay commits its
    /// row with its observations, in `Batch::capture`).
    pub fn record_capture(&mut self, c: &CaptureSource) -> anyhow::Result<()> {
        if !self.seed.captures.contains(c) {
            self.seed.captures.push(c.clone());
        }
        self.ensure_file()?;
        insert_capture(&self.conn, c)
    }

    /// Where the observations came from, oldest first; None for a store written before
    /// auditor recorded it (version 4 and older, read as they are).
    pub fn captures(&self) -> anyhow::Result<Option<Vec<CaptureSource>>> {
        if self.version < 5 {
            return Ok(None);
        }
        let mut q = self.conn.prepare(
            "SELECT mode, node, auditor_version, kernel, flows_file, flows_sha256, capture_node,
                    intervals_known, recorded_ms FROM captures ORDER BY recorded_ms, rowid",
        )?;
        let rows = q.query_map([], |r| {
            Ok(CaptureSource {
                mode: r.get(0)?,
                node: r.get(1)?,
                auditor_version: r.get(2)?,
                kernel: r.get(3)?,
                flows_file: r.get(4)?,
                flows_sha256: r.get(5)?,
                capture_node: r.get(6)?,
                intervals_known: r.get(7)?,
                recorded_ms: r.get(8)?,
            })
        })?;
        Ok(Some(rows.collect::<Result<_, _>>()?))
    }

    /// Every set of inputs recorded, oldest first.
    pub fn inputs(&self) -> anyhow::Result<Vec<crate::provenance::Inputs>> {
        let mut st = self
            .conn
            .prepare("SELECT value FROM meta WHERE key LIKE 'inputs:%' ORDER BY key")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for r in rows {
            let text = r?;
            out.push(
                serde_json::from_str(&text)
                    .with_context(|| format!("a recorded set of inputs is unreadable: {text}"))?,
            );
        }
        Ok(out)
    }

    /// A recorded allowlist by its content digest.
    pub fn allowlist_by_digest(&self, digest: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                params![format!("allowlist:{digest}")],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn allowlist(&self) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'allowlist'", [], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Deletes what was last seen before `cutoff_ms` (retention). Returns rows deleted.
    pub fn prune(&mut self, cutoff_ms: i64) -> anyhow::Result<usize> {
        let tx = self.conn.transaction()?;
        let mut n = tx.execute(
            "DELETE FROM edges WHERE last_seen_ms < ?1",
            params![cutoff_ms],
        )?;
        n += tx.execute(
            "DELETE FROM rows WHERE last_seen_ms < ?1",
            params![cutoff_ms],
        )?;
        n += tx.execute("DELETE FROM coverage WHERE end_ms < ?1", params![cutoff_ms])?;
        if self.version >= 6 {
            n += tx.execute(
                "DELETE FROM dns_learned WHERE last_learned_ms < ?1",
                params![cutoff_ms],
            )?;
        }
        tx.commit()?;
        Ok(n)
    }

    /// True when the store keeps edges and rows per time bucket (version 8 on).
    pub fn bucketed(&self) -> bool {
        self.version >= 8
    }

    /// Whether edges or rows kept whole (stored before version 8, or in an older store)
    /// fall in the period: they count whole wherever their first-to-last seen reaches.
    pub fn whole_in_period(&self, since: Option<i64>, until: Option<i64>) -> anyhow::Result<bool> {
        let legacy = if self.version >= 8 {
            "bucket_ms < 0 AND "
        } else {
            ""
        };
        let mut any = false;
        for table in ["edges", "rows"] {
            any |= self.conn.query_row(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM {table} WHERE {legacy}last_seen_ms >= ?1 AND first_seen_ms <= ?2)"
                ),
                params![since.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX)],
                |r| r.get::<_, bool>(0),
            )?;
        }
        Ok(any)
    }

    /// Edges seen in the period (ms; None = open), one per node and edge: from version 8,
    /// the sum of its buckets that overlap [since, until) (`in_period`); before, each
    /// edge whole when its first-to-last seen overlaps [since, until].
    pub fn edges(&self, since: Option<i64>, until: Option<i64>) -> anyhow::Result<Vec<StoredEdge>> {
        let columns = match self.version {
            1 => V1_EDGE_COLUMNS,
            2 | 3 => EDGE_COLUMNS,
            _ => V4_EDGE_COLUMNS,
        };
        let mut q = self.conn.prepare(&format!(
            "SELECT {columns} FROM edges WHERE {}
             ORDER BY verdict, src, dst, port, node{}",
            self.in_period(),
            if self.version >= 8 { ", bucket_ms" } else { "" }
        ))?;
        let version = self.version;
        let rows = q.query_map(
            params![
                since.unwrap_or(i64::MIN),
                until.unwrap_or(i64::MAX),
                BUCKET_MS
            ],
            |r| edge_row(r, version),
        )?;
        // One edge per node and key: its buckets, added up in time order (the latest
        // bucket's rules and documented ports win, as the commits' did).
        let mut out: Vec<StoredEdge> = Vec::new();
        let mut at: std::collections::HashMap<(String, crate::edge::EdgeKey), usize> =
            std::collections::HashMap::new();
        for row in rows {
            let e = row?;
            match at.entry((e.node.clone(), e.edge.key())) {
                std::collections::hash_map::Entry::Occupied(i) => out[*i.get()].edge.add(&e.edge),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(out.len());
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    /// The SQL condition for a bucketed row (edges, rows) in the period ?1..?2 with
    /// buckets ?3 wide: its bucket overlaps [?1, ?2); a row from before version 8 (bucket
    /// -1), or in an older store, when its first-to-last seen overlaps [?1, ?2].
    fn in_period(&self) -> &'static str {
        if self.version >= 8 {
            "((bucket_ms >= 0 AND bucket_ms + ?3 > ?1 AND bucket_ms < ?2)
              OR (bucket_ms < 0 AND last_seen_ms >= ?1 AND first_seen_ms <= ?2))"
        } else {
            "(last_seen_ms >= ?1 AND first_seen_ms <= ?2 AND ?3 = ?3)"
        }
    }

    pub fn rows(
        &self,
        since: Option<i64>,
        until: Option<i64>,
    ) -> anyhow::Result<Vec<RowObservation>> {
        let digest = if self.version >= 3 { "digest" } else { "''" };
        let mut q = self.conn.prepare(&format!(
            "SELECT node, rule, count, first_seen_ms, last_seen_ms, example_src, example_comm, {digest} FROM rows
             WHERE {} ORDER BY rule, node{}",
            self.in_period(),
            if self.version >= 8 { ", digest, bucket_ms" } else { "" }
        ))?;
        let rows = q.query_map(
            params![
                since.unwrap_or(i64::MIN),
                until.unwrap_or(i64::MAX),
                BUCKET_MS
            ],
            |r| {
                Ok(RowObservation {
                    node: r.get(0)?,
                    rule: r.get(1)?,
                    count: r.get::<_, i64>(2)? as u64,
                    first_seen_ms: r.get(3)?,
                    last_seen_ms: r.get(4)?,
                    example_src: r.get(5)?,
                    example_comm: r.get(6)?,
                    digest: r.get(7)?,
                })
            },
        )?;
        // One observation per node, row and content: its buckets (consecutive in this
        // order) added up.
        let mut out: Vec<RowObservation> = Vec::new();
        for row in rows {
            let o = row?;
            match out.last_mut() {
                Some(last)
                    if (&last.node, last.rule, &last.digest) == (&o.node, o.rule, &o.digest) =>
                {
                    last.count += o.count;
                    last.first_seen_ms = last.first_seen_ms.min(o.first_seen_ms);
                    last.last_seen_ms = last.last_seen_ms.max(o.last_seen_ms);
                    if last.example_src.is_none() {
                        last.example_src = o.example_src;
                        last.example_comm = o.example_comm;
                    }
                }
                _ => out.push(o),
            }
        }
        Ok(out)
    }

    /// This node's name table as last saved in the boot `boot_id` (empty for another
    /// boot, whose namespace cookies name other pods, and for a store older than 6).
    pub fn names(
        &self,
        node: &str,
        boot_id: &str,
    ) -> anyhow::Result<Vec<crate::dns::names::StoredName>> {
        if self.version < 6 {
            return Ok(Vec::new());
        }
        let saved_in: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                params![format!("dns_names_boot_id:{node}")],
                |r| r.get(0),
            )
            .optional()?;
        if saved_in.as_deref() != Some(boot_id) {
            return Ok(Vec::new());
        }
        let mut q = self.conn.prepare(
            "SELECT netns_cookie, addr, name, position, learned_ms, expires_ms, bound_until_ms, resolver
             FROM dns_names WHERE node = ?1",
        )?;
        let addr = |text: String| {
            text.parse::<std::net::IpAddr>()
                .map_err(|_| conversion("address", &text))
        };
        let rows = q.query_map(params![node], |r| {
            Ok(crate::dns::names::StoredName {
                netns_cookie: r.get::<_, i64>(0)? as u64,
                addr: addr(r.get(1)?)?,
                name: r.get(2)?,
                position: r.get(3)?,
                learned_ms: r.get(4)?,
                expires_ms: r.get(5)?,
                bound_until_ms: r.get(6)?,
                resolver: addr(r.get(7)?)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Which resolver gave which name, learned in [since, until] (ms; None = open); empty
    /// for a store older than version 6.
    pub fn learned(
        &self,
        since: Option<i64>,
        until: Option<i64>,
    ) -> anyhow::Result<Vec<LearnedName>> {
        if self.version < 6 {
            return Ok(Vec::new());
        }
        let mut q = self.conn.prepare(
            "SELECT node, name, resolver, answers, first_learned_ms, last_learned_ms FROM dns_learned
             WHERE last_learned_ms >= ?1 AND first_learned_ms <= ?2 ORDER BY name, node, resolver",
        )?;
        let rows = q.query_map(
            params![since.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX)],
            |r| {
                let resolver: String = r.get(2)?;
                Ok(LearnedName {
                    node: r.get(0)?,
                    name: r.get(1)?,
                    resolver: resolver
                        .parse()
                        .map_err(|_| conversion("address", &resolver))?,
                    answers: r.get::<_, i64>(3)? as u64,
                    first_learned_ms: r.get(4)?,
                    last_learned_ms: r.get(5)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn coverage(
        &self,
        since: Option<i64>,
        until: Option<i64>,
    ) -> anyhow::Result<Vec<CoverageInterval>> {
        let lost = if self.coverage_counts_evictions()? {
            OLD_LOST
        } else {
            "connections_lost"
        };
        let mut q = self.conn.prepare(&format!(
            "SELECT node, start_ms, end_ms, ringbuf_full, {lost}, flow_insert_failed FROM coverage
             WHERE end_ms >= ?1 AND start_ms <= ?2 ORDER BY node, start_ms"
        ))?;
        let rows = q.query_map(
            params![since.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX)],
            |r| {
                Ok(CoverageInterval {
                    node: r.get(0)?,
                    start_ms: r.get(1)?,
                    end_ms: r.get(2)?,
                    drops: Drops {
                        ringbuf_full: r.get::<_, i64>(3)? as u64,
                        connections_lost: r.get::<_, i64>(4)? as u64,
                        flow_insert_failed: r.get::<_, i64>(5)? as u64,
                    },
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn insert_capture(conn: &Connection, c: &CaptureSource) -> anyhow::Result<()> {
    conn.execute(
        "INSERT INTO captures (mode, node, auditor_version, kernel, flows_file, flows_sha256,
                               capture_node, intervals_known, recorded_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            c.mode,
            c.node,
            c.auditor_version,
            c.kernel,
            c.flows_file,
            c.flows_sha256,
            c.capture_node,
            c.intervals_known,
            c.recorded_ms
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{batch::CoverageUpdate, *};

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("auditor-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d.join("store.db")
    }

    fn edge(count: u64, at: i64) -> Edge {
        crate::edge::test_edge(count, at)
    }

    fn coverage(start: i64, end: i64, connections_lost: u64) -> Option<CoverageUpdate> {
        Some(CoverageUpdate {
            session_start_ms: 0,
            start_ms: start,
            end_ms: end,
            drops: Drops {
                connections_lost,
                // Pressure with nothing lost never splits an interval.
                ringbuf_full: 3,
                ..Drops::default()
            },
        })
    }

    #[test]
    fn commits_accumulate_and_drops_split_coverage() {
        let path = tmp("acc");
        let mut s = Store::open(&path).unwrap();
        for (i, drops) in [(1, 0), (2, 0), (3, 5), (4, 0)] {
            let mut b = Batch::default();
            b.add_edge(edge(10, i * 1000));
            b.coverage = coverage((i - 1) * 1000, i * 1000, drops);
            s.commit("n1", &b).unwrap();
        }
        let edges = s.edges(None, None).unwrap();
        assert_eq!(
            (
                edges.len(),
                edges[0].edge.count,
                edges[0].edge.first_seen,
                edges[0].edge.last_seen
            ),
            (1, 40, 1000, 4000)
        );
        let mut want = edge(40, 1000);
        want.last_seen = 4000;
        assert_eq!(
            edges[0].edge, want,
            "the typed edge comes back as it went in"
        );
        let cov: Vec<(i64, i64, u64)> = s
            .coverage(None, None)
            .unwrap()
            .iter()
            .map(|c| (c.start_ms, c.end_ms, c.drops.connections_lost))
            .collect();
        // Clean time merges into one interval; the interval with drops stands alone.
        assert_eq!(cov, vec![(0, 2000, 0), (2000, 3000, 5), (3000, 4000, 0)]);
        // Retention at 3500: the edge (last seen 4000) stays; the two intervals ending before go.
        assert_eq!(s.prune(3500).unwrap(), 2);
        assert_eq!(s.edges(None, None).unwrap().len(), 1);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_version_1_store_is_read_and_upgraded() {
        let path = tmp("v1");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 INSERT INTO meta VALUES ('schema_version', '1');
                 CREATE TABLE edges (
                    node TEXT NOT NULL, verdict TEXT NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL,
                    transport TEXT NOT NULL, port INTEGER NOT NULL,
                    rules TEXT NOT NULL, documented TEXT, dst_addr TEXT,
                    count INTEGER NOT NULL, first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,
                    example_comm TEXT, example_pid INTEGER, example_cgroup TEXT, example_src_addr TEXT, example_pod TEXT,
                    PRIMARY KEY (node, verdict, src, dst, transport, port));
                 CREATE TABLE rows (node TEXT NOT NULL, rule INTEGER NOT NULL, count INTEGER NOT NULL,
                    first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL, example_src TEXT,
                    example_comm TEXT, PRIMARY KEY (node, rule));
                 CREATE TABLE coverage (node TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL,
                    ringbuf_full INTEGER NOT NULL DEFAULT 0, lru_evictions INTEGER NOT NULL DEFAULT 0,
                    flow_insert_failed INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (node, start_ms));
                 INSERT INTO edges VALUES ('n1', 'port_drift', 'Tenant Service', '198.18.0.9', 'tcp', 9200,
                    '26', '{\"ports\":[\"9100\"],\"transport\":\"tcp\"}', '198.18.0.9', 5, 1000, 2000,
                    'tenant', 42, '/kubepods/x', '10.0.1.5', 'voice/tenant-7d9f (Deployment/tenant)');
                 INSERT INTO rows VALUES ('n1', 26, 7, 1000, 2000, 'Tenant Service', 'tenant');",
            )
            .unwrap();
        }
        let read = |s: &Store| s.edges(None, None).unwrap().remove(0).edge;
        let old = read(&Store::open_existing(&path).unwrap());
        assert_eq!(old.src.service.as_deref(), Some("Tenant Service"));
        assert_eq!(old.src.pod.as_deref(), Some("tenant-7d9f"));
        assert_eq!(old.src.workload.as_deref(), Some("Deployment/tenant"));
        assert_eq!(old.dst.service, None);
        assert_eq!(old.dst.addr, Some("198.18.0.9".parse().unwrap()));
        assert_eq!(old.dst.port, Some(9200));
        assert_eq!(old.process.as_ref().map(|p| p.pid), Some(42));
        assert_eq!(
            old.documented.as_ref().map(|d| d.to_string()).as_deref(),
            Some("tcp/9100")
        );
        // `auditor run` upgrades it in place; it reads the same, and takes new commits.
        let mut s = Store::open(&path).unwrap();
        assert_eq!(read(&s), old);
        let mut b = Batch::default();
        let mut e = old.clone();
        e.count = 1;
        b.add_edge(e);
        s.commit("n1", &b).unwrap();
        assert_eq!(read(&s).count, 6);
        // Version 3: old row observations keep an empty digest; new ones carry theirs,
        // apart from the old ones.
        let mut b = Batch::default();
        b.add_row(
            26,
            "abc",
            RowDelta {
                count: 1,
                first_seen_ms: 3000,
                last_seen_ms: 3000,
                ..RowDelta::default()
            },
        );
        s.commit("n1", &b).unwrap();
        let rows: Vec<(u32, String, u64)> = s
            .rows(None, None)
            .unwrap()
            .into_iter()
            .map(|r| (r.rule, r.digest, r.count))
            .collect();
        assert_eq!(rows, vec![(26, String::new(), 7), (26, "abc".into(), 1)]);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_period_counts_its_buckets_only_and_an_upgraded_stores_edges_count_whole() {
        let path = tmp("buckets");
        let mut s = Store::open(&path).unwrap();
        // 10 connections in the first five-minute bucket, 5 in the second.
        for (count, at) in [(10, 1_000), (5, BUCKET_MS + 1_000)] {
            let mut b = Batch::default();
            b.add_edge(edge(count, at));
            b.add_row(
                26,
                "d",
                RowDelta {
                    count,
                    first_seen_ms: at,
                    last_seen_ms: at,
                    ..RowDelta::default()
                },
            );
            s.commit("n1", &b).unwrap();
        }
        let counted = |s: &Store, since, until| -> (Vec<u64>, Vec<u64>) {
            (
                s.edges(since, until)
                    .unwrap()
                    .iter()
                    .map(|e| e.edge.count)
                    .collect(),
                s.rows(since, until)
                    .unwrap()
                    .iter()
                    .map(|r| r.count)
                    .collect(),
            )
        };
        assert_eq!(counted(&s, None, None), (vec![15], vec![15]));
        assert_eq!(counted(&s, None, Some(BUCKET_MS)), (vec![10], vec![10]));
        assert_eq!(
            counted(&s, Some(BUCKET_MS), Some(2 * BUCKET_MS)),
            (vec![5], vec![5])
        );
        // A bound inside a bucket counts that bucket whole.
        assert_eq!(counted(&s, Some(BUCKET_MS / 2), None), (vec![15], vec![15]));
        drop(s);
        // A version 7 store: one row per edge, whatever its span.
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
        let path = tmp("buckets-v7");
        {
            let s = Store::open(&path).unwrap();
            s.conn
                .execute_batch(&format!(
                    "DROP TABLE edges; {EDGES_V6}
                     DROP TABLE rows;
                     CREATE TABLE rows (node TEXT NOT NULL, rule INTEGER NOT NULL, digest TEXT NOT NULL DEFAULT '',
                        count INTEGER NOT NULL, first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,
                        example_src TEXT, example_comm TEXT, PRIMARY KEY (node, rule, digest));
                     INSERT INTO rows VALUES ('n1', 26, 'd', 7, 1000, {far}, NULL, NULL);
                     UPDATE meta SET value = '7' WHERE key = 'schema_version';",
                    far = 10 * BUCKET_MS
                ))
                .unwrap();
        }
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.version, SCHEMA_VERSION);
        let mut b = Batch::default();
        b.add_row(
            26,
            "d",
            RowDelta {
                count: 2,
                first_seen_ms: 3 * BUCKET_MS,
                last_seen_ms: 3 * BUCKET_MS,
                ..RowDelta::default()
            },
        );
        s.commit("n1", &b).unwrap();
        // The old row counts whole wherever its first-to-last seen reaches; the new one
        // in its bucket.
        assert_eq!(
            counted(&s, Some(3 * BUCKET_MS), Some(4 * BUCKET_MS)).1,
            vec![9]
        );
        assert_eq!(
            counted(&s, Some(5 * BUCKET_MS), Some(6 * BUCKET_MS)).1,
            vec![7]
        );
        assert_eq!(counted(&s, Some(11 * BUCKET_MS), None).1, Vec::<u64>::new());
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_version_6_store_counts_every_old_drop_as_lost_read_as_it_is_or_upgraded() {
        let path = tmp("v6-coverage");
        {
            let s = Store::open(&path).unwrap();
            s.conn
                .execute_batch(
                    "DROP TABLE coverage;
                     CREATE TABLE coverage (node TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL,
                        ringbuf_full INTEGER NOT NULL DEFAULT 0, lru_evictions INTEGER NOT NULL DEFAULT 0,
                        flow_insert_failed INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (node, start_ms));
                     INSERT INTO coverage VALUES ('n1', 0, 1000, 1, 2, 3), ('n1', 1000, 2000, 0, 0, 0);
                     UPDATE meta SET value = '6' WHERE key = 'schema_version';",
                )
                .unwrap();
        }
        let lost = |s: &Store| -> Vec<u64> {
            s.coverage(None, None)
                .unwrap()
                .iter()
                .map(|c| c.drops.lost())
                .collect()
        };
        // A full ring buffer or a refused insert could lose connections then.
        assert_eq!(lost(&Store::open_existing(&path).unwrap()), [6, 0]);
        let s = Store::open(&path).unwrap();
        assert_eq!((s.version, lost(&s)), (SCHEMA_VERSION, vec![6, 0]));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn captures_are_recorded_and_an_older_store_gains_the_table() {
        let path = tmp("captures");
        {
            // A version 4 store: no captures table.
            let mut s = Store::open(&path).unwrap();
            s.conn
                .execute_batch(
                    "DROP TABLE captures; UPDATE meta SET value = '4' WHERE key = 'schema_version';",
                )
                .unwrap();
            s.commit("n1", &one_edge(3)).unwrap();
        }
        // Read as it is: where its observations came from is not recorded.
        assert_eq!(
            Store::open_existing(&path).unwrap().captures().unwrap(),
            None
        );
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.captures().unwrap(), Some(vec![]));
        s.record_capture(&CaptureSource::test_live("n1", 1000))
            .unwrap();
        let replay = CaptureSource {
            mode: "replay".into(),
            node: "n2".into(),
            kernel: None,
            flows_file: Some("flows.jsonl".into()),
            flows_sha256: Some("ab12".into()),
            capture_node: Some("node-a".into()),
            intervals_known: Some(false),
            recorded_ms: 2000,
            ..CaptureSource::test_live("n2", 1000)
        };
        let mut b = one_edge(1);
        b.capture = Some(replay.clone());
        s.commit("n2", &b).unwrap();
        assert_eq!(
            Store::open_existing(&path).unwrap().captures().unwrap(),
            Some(vec![CaptureSource::test_live("n1", 1000), replay])
        );
        assert_eq!(
            s.edges(None, None).unwrap().len(),
            2,
            "the data survived the upgrade"
        );
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_file_that_is_not_a_store_is_refused() {
        let path = tmp("corrupt");
        std::fs::write(
            &path,
            b"this is not sqlite at all, just text that happens to be here",
        )
        .unwrap();
        let e = Store::open_existing(&path).err().expect("refused");
        assert_eq!(
            format!("{e:#}"),
            format!(
                "{}: not an auditor store (it is not an SQLite database)",
                path.display()
            )
        );
        // The daemon's open (which creates) refuses it in the same words.
        let e = Store::open(&path).err().expect("refused");
        assert!(format!("{e:#}").contains(": not an auditor store"), "{e:#}");
        // An SQLite database of something else.
        let other = path.with_file_name("other.db");
        rusqlite::Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x INTEGER);")
            .unwrap();
        let e = Store::open_existing(&other).err().expect("refused");
        assert!(
            format!("{e:#}")
                .contains("not an auditor store (an SQLite database, but not one auditor wrote)"),
            "{e:#}"
        );
        // The daemon's open refuses it too, and leaves it as it was: no WAL, no tables.
        let e = Store::open(&other).err().expect("refused");
        assert!(format!("{e:#}").contains("not one auditor wrote"), "{e:#}");
        let c = rusqlite::Connection::open(&other).unwrap();
        let tables: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!((tables, mode.as_str()), (1, "delete"));
        let missing = path.with_file_name("missing.db");
        let e = Store::open_existing(&missing).err().expect("refused");
        assert_eq!(
            format!("{e:#}"),
            format!("{}: cannot read: no such file", missing.display())
        );
        // A directory: said so, by every open (SQLite alone says "disk I/O error").
        let dir = path.with_file_name("a-directory");
        std::fs::create_dir(&dir).unwrap();
        let want = format!("{} is a directory, not a store file", dir.display());
        let e = Store::open_existing(&dir).err().expect("refused");
        assert_eq!(format!("{e:#}"), want);
        let e = Store::open(&dir).err().expect("refused");
        assert_eq!(format!("{e:#}"), want);
        let e = Store::open_or_set_aside(&dir).err().expect("refused");
        assert_eq!(format!("{e:#}"), want);
        // An empty file has nothing to report from (not "someone else's database").
        let empty = path.with_file_name("empty.db");
        std::fs::write(&empty, b"").unwrap();
        let e = Store::open_existing(&empty).err().expect("refused");
        assert_eq!(
            format!("{e:#}"),
            format!(
                "{} is empty: not a store (a store is made by auditor run or replay --store)",
                empty.display()
            )
        );
        // The opens that create start a store in it (e.g. a file made by mktemp).
        drop(Store::open(&empty).unwrap());
        Store::open_existing(&empty).unwrap();
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    fn one_edge(count: u64) -> Batch {
        let mut b = Batch::default();
        b.add_edge(edge(count, 1000));
        b
    }

    fn stored(path: &Path) -> u64 {
        Store::open_existing(path)
            .unwrap()
            .edges(None, None)
            .unwrap()
            .iter()
            .map(|e| e.edge.count)
            .sum()
    }

    /// A commit is acknowledged only when it is in the file at the store's path: after the
    /// file is removed the store starts a new one there (with the allowlist it had), and
    /// while the directory is gone every commit fails, until it is back.
    #[test]
    fn a_removed_store_file_is_never_acknowledged_and_restarts_when_it_can() {
        let path = tmp("unlinked");
        let mut s = Store::open(&path).unwrap();
        s.set_allowlist("{\"version\":1}").unwrap();
        s.commit("n1", &one_edge(3)).unwrap();
        assert_eq!(s.take_restarted(), None);

        std::fs::remove_file(&path).unwrap();
        s.commit("n1", &one_edge(5)).unwrap();
        assert!(s.take_restarted().unwrap().contains("was removed"));
        assert_eq!(
            stored(&path),
            5,
            "the acknowledged commit is on disk at the path"
        );
        assert_eq!(
            Store::open_existing(&path)
                .unwrap()
                .allowlist()
                .unwrap()
                .as_deref(),
            Some("{\"version\":1}")
        );

        let dir = path.parent().unwrap();
        std::fs::remove_dir_all(dir).unwrap();
        let e = s
            .commit("n1", &one_edge(7))
            .expect_err("nothing to write to");
        assert!(format!("{e:#}").contains("was removed"), "{e:#}");
        std::fs::create_dir_all(dir).unwrap();
        s.commit("n1", &one_edge(7)).unwrap();
        assert_eq!(stored(&path), 7);
    }

    #[test]
    fn a_replaced_store_file_is_noticed() {
        let path = tmp("replaced");
        let mut s = Store::open(&path).unwrap();
        s.commit("n1", &one_edge(3)).unwrap();
        let other = path.with_file_name("other.db");
        Store::open(&other).unwrap();
        std::fs::rename(&other, &path).unwrap();
        s.commit("n1", &one_edge(4)).unwrap();
        assert!(s.take_restarted().unwrap().contains("replaced"));
        assert_eq!(stored(&path), 4);
    }

    /// A damaged store is moved aside, kept byte for byte, and a new one started.
    #[test]
    fn a_damaged_store_is_moved_aside_and_kept() {
        let path = tmp("damaged");
        std::fs::write(
            &path,
            b"this is not a database, just damaged bytes\n".repeat(200),
        )
        .unwrap();
        let (mut s, aside) = Store::open_or_set_aside(&path).unwrap();
        let aside = aside.expect("moved aside");
        assert!(
            aside.to_string_lossy().contains("store.db.corrupt-"),
            "{}",
            aside.display()
        );
        assert!(
            std::fs::read(&aside)
                .unwrap()
                .starts_with(b"this is not a database")
        );
        s.commit("n1", &one_edge(2)).unwrap();
        assert_eq!(stored(&path), 2);

        // A healthy store and someone else's database are left alone.
        let (_, aside) = Store::open_or_set_aside(&path).unwrap();
        assert_eq!(aside, None);
        let foreign = path.with_file_name("foreign.db");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert!(Store::open_or_set_aside(&foreign).is_err());
        assert!(foreign.exists());
    }
}
