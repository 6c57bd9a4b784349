//! The durable store of observations (SQLite, embedded): per node, every edge judged
//! (source, destination, transport, port, verdict) and every documented row observed,
//! with counts and first/last seen, plus coverage: when the auditor was watching and when
//! the kernel reported drops. What a commit returned OK for survives `kill -9` (WAL,
//! synchronous=FULL). Growth is bounded by `prune` (retention).

pub mod batch;

use std::path::Path;

use anyhow::{Context, bail};
use rusqlite::{Connection, OptionalExtension, params};

pub use batch::{Batch, EdgeDelta, EdgeKey, RowDelta};

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS edges (
    node TEXT NOT NULL, verdict TEXT NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL,
    transport TEXT NOT NULL, port INTEGER NOT NULL,
    rules TEXT NOT NULL, documented TEXT, dst_addr TEXT,
    count INTEGER NOT NULL, first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,
    example_comm TEXT, example_pid INTEGER, example_cgroup TEXT, example_src_addr TEXT, example_pod TEXT,
    PRIMARY KEY (node, verdict, src, dst, transport, port)
);
CREATE INDEX IF NOT EXISTS edges_last_seen ON edges (last_seen_ms);
CREATE TABLE IF NOT EXISTS rows (
    node TEXT NOT NULL, rule INTEGER NOT NULL,
    count INTEGER NOT NULL, first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,
    example_src TEXT, example_comm TEXT,
    PRIMARY KEY (node, rule)
);
CREATE TABLE IF NOT EXISTS coverage (
    node TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL,
    ringbuf_full INTEGER NOT NULL DEFAULT 0, lru_evictions INTEGER NOT NULL DEFAULT 0,
    flow_insert_failed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (node, start_ms)
);
";

pub struct Store {
    conn: Connection,
}

/// One stored edge, as reports read it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EdgeRow {
    pub node: String,
    pub verdict: String,
    pub src: String,
    pub dst: String,
    pub transport: String,
    pub port: u16,
    pub rules: Vec<u32>,
    pub documented: Option<serde_json::Value>,
    pub dst_addr: Option<String>,
    pub count: u64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub example_comm: Option<String>,
    pub example_pid: Option<u32>,
    pub example_cgroup: Option<String>,
    pub example_src_addr: Option<String>,
    pub example_pod: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowObservation {
    pub node: String,
    pub rule: u32,
    pub count: u64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub example_src: Option<String>,
    pub example_comm: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CoverageInterval {
    pub node: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub ringbuf_full: u64,
    pub lru_evictions: u64,
    pub flow_insert_failed: u64,
}

/// The one error for a file that is not a store we can use, in the user's words rather
/// than SQLite's ("file is not a database").
fn not_a_store(path: &Path, e: &anyhow::Error) -> anyhow::Error {
    let why = match e.downcast_ref::<rusqlite::Error>() {
        Some(rusqlite::Error::SqliteFailure(f, _))
            if f.code == rusqlite::ErrorCode::NotADatabase =>
        {
            "it is not an SQLite database".to_string()
        }
        _ => format!("{e:#}"),
    };
    anyhow::anyhow!("{}: not an auditor store ({why})", path.display())
}

impl Store {
    /// Opens (creating if needed) a store. Refuses a file that is not an auditor store.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        let conn =
            Connection::open(path).with_context(|| format!("opening store {}", path.display()))?;
        let store = Store { conn };
        store.init().map_err(|e| not_a_store(path, &e))?;
        Ok(store)
    }

    /// Opens an existing store for reading only (reports): never creates one.
    pub fn open_existing(path: &Path) -> anyhow::Result<Store> {
        if !path.exists() {
            bail!("{}: cannot read: no such file", path.display());
        }
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening store {}", path.display()))?;
        let store = Store { conn };
        store.check_version().map_err(|e| not_a_store(path, &e))?;
        Ok(store)
    }

    fn init(&self) -> anyhow::Result<()> {
        self.conn.pragma_update(None, "journal_mode", "WAL")?;
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        self.conn.busy_timeout(std::time::Duration::from_secs(5))?;
        self.conn.execute_batch(SCHEMA)?;
        self.conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?1)",
            params![SCHEMA_VERSION.to_string()],
        )?;
        self.check_version()
    }

    fn check_version(&self) -> anyhow::Result<()> {
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| match e {
                // An SQLite file of something else: it has no auditor tables.
                rusqlite::Error::SqliteFailure(_, Some(m)) if m.starts_with("no such table") => {
                    anyhow::anyhow!("an SQLite database, but not one auditor wrote")
                }
                e => e.into(),
            })?;
        match v.as_deref() {
            Some("1") => Ok(()),
            Some(other) => {
                bail!("store schema version {other} is not supported (expected {SCHEMA_VERSION})")
            }
            None => bail!("no schema version"),
        }
    }

    /// Writes a batch in one transaction. On error nothing of it is stored and the caller
    /// keeps the batch for the next attempt.
    pub fn commit(&mut self, node: &str, batch: &Batch) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut up = tx.prepare_cached(
                "INSERT INTO edges (node, verdict, src, dst, transport, port, rules, documented, dst_addr, count,
                                    first_seen_ms, last_seen_ms, example_comm, example_pid, example_cgroup, example_src_addr, example_pod)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
                 ON CONFLICT (node, verdict, src, dst, transport, port) DO UPDATE SET
                    count = count + excluded.count,
                    rules = excluded.rules, documented = excluded.documented,
                    dst_addr = COALESCE(dst_addr, excluded.dst_addr),
                    first_seen_ms = MIN(first_seen_ms, excluded.first_seen_ms),
                    last_seen_ms = MAX(last_seen_ms, excluded.last_seen_ms),
                    example_comm = COALESCE(example_comm, excluded.example_comm),
                    example_pid = COALESCE(example_pid, excluded.example_pid),
                    example_cgroup = COALESCE(example_cgroup, excluded.example_cgroup),
                    example_src_addr = COALESCE(example_src_addr, excluded.example_src_addr),
                    example_pod = COALESCE(example_pod, excluded.example_pod)",
            )?;
            for (k, d) in &batch.edges {
                let rules = d
                    .rules
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                up.execute(params![
                    node,
                    k.verdict,
                    k.src,
                    k.dst,
                    k.transport,
                    k.port,
                    rules,
                    d.documented.as_ref().map(|v| v.to_string()),
                    d.dst_addr,
                    d.count as i64,
                    d.first_seen_ms,
                    d.last_seen_ms,
                    d.example_comm,
                    d.example_pid,
                    d.example_cgroup,
                    d.example_src_addr,
                    d.example_pod
                ])?;
            }
            let mut rows = tx.prepare_cached(
                "INSERT INTO rows (node, rule, count, first_seen_ms, last_seen_ms, example_src, example_comm)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (node, rule) DO UPDATE SET
                    count = count + excluded.count,
                    first_seen_ms = MIN(first_seen_ms, excluded.first_seen_ms),
                    last_seen_ms = MAX(last_seen_ms, excluded.last_seen_ms),
                    example_src = COALESCE(example_src, excluded.example_src),
                    example_comm = COALESCE(example_comm, excluded.example_comm)",
            )?;
            for (rule, d) in &batch.rows {
                rows.execute(params![
                    node,
                    rule,
                    d.count as i64,
                    d.first_seen_ms,
                    d.last_seen_ms,
                    d.example_src,
                    d.example_comm
                ])?;
            }
            if let Some(c) = &batch.coverage {
                // Extend the session's last interval while it has no drops; a drop starts
                // a new interval so reports can show exactly when auditing was incomplete.
                let last: Option<(i64, i64)> = tx
                    .query_row(
                        "SELECT start_ms, ringbuf_full + lru_evictions + flow_insert_failed FROM coverage
                         WHERE node = ?1 AND start_ms >= ?2 ORDER BY start_ms DESC LIMIT 1",
                        params![node, c.session_start_ms],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let drops = c.ringbuf_full + c.lru_evictions + c.flow_insert_failed;
                match last {
                    Some((start, 0)) if drops == 0 => {
                        tx.execute(
                            "UPDATE coverage SET end_ms = ?3 WHERE node = ?1 AND start_ms = ?2",
                            params![node, start, c.end_ms],
                        )?;
                    }
                    _ => {
                        tx.execute(
                            "INSERT OR REPLACE INTO coverage (node, start_ms, end_ms, ringbuf_full, lru_evictions, flow_insert_failed)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                            params![node, c.start_ms, c.end_ms, c.ringbuf_full as i64, c.lru_evictions as i64, c.flow_insert_failed as i64],
                        )?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records the allowlist the observations were judged against (its JSON form), so a
    /// report from this store needs nothing else.
    pub fn set_allowlist(&mut self, json: &str) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('allowlist', ?1)",
            params![json],
        )?;
        Ok(())
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
        tx.commit()?;
        Ok(n)
    }

    /// Edges seen in [since, until] (ms; None = open).
    pub fn edges(&self, since: Option<i64>, until: Option<i64>) -> anyhow::Result<Vec<EdgeRow>> {
        let mut q = self.conn.prepare(
            "SELECT node, verdict, src, dst, transport, port, rules, documented, dst_addr, count, first_seen_ms, last_seen_ms,
                    example_comm, example_pid, example_cgroup, example_src_addr, example_pod
             FROM edges WHERE last_seen_ms >= ?1 AND first_seen_ms <= ?2 ORDER BY verdict, src, dst, port",
        )?;
        let rows = q.query_map(
            params![since.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX)],
            |r| {
                let rules: String = r.get(6)?;
                let documented: Option<String> = r.get(7)?;
                Ok(EdgeRow {
                    node: r.get(0)?,
                    verdict: r.get(1)?,
                    src: r.get(2)?,
                    dst: r.get(3)?,
                    transport: r.get(4)?,
                    port: r.get(5)?,
                    rules: rules.split(',').filter_map(|s| s.parse().ok()).collect(),
                    documented: documented.and_then(|d| serde_json::from_str(&d).ok()),
                    dst_addr: r.get(8)?,
                    count: r.get::<_, i64>(9)? as u64,
                    first_seen_ms: r.get(10)?,
                    last_seen_ms: r.get(11)?,
                    example_comm: r.get(12)?,
                    example_pid: r.get(13)?,
                    example_cgroup: r.get(14)?,
                    example_src_addr: r.get(15)?,
                    example_pod: r.get(16)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn rows(
        &self,
        since: Option<i64>,
        until: Option<i64>,
    ) -> anyhow::Result<Vec<RowObservation>> {
        let mut q = self.conn.prepare(
            "SELECT node, rule, count, first_seen_ms, last_seen_ms, example_src, example_comm FROM rows
             WHERE last_seen_ms >= ?1 AND first_seen_ms <= ?2 ORDER BY rule, node",
        )?;
        let rows = q.query_map(
            params![since.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX)],
            |r| {
                Ok(RowObservation {
                    node: r.get(0)?,
                    rule: r.get(1)?,
                    count: r.get::<_, i64>(2)? as u64,
                    first_seen_ms: r.get(3)?,
                    last_seen_ms: r.get(4)?,
                    example_src: r.get(5)?,
                    example_comm: r.get(6)?,
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
        let mut q = self.conn.prepare(
            "SELECT node, start_ms, end_ms, ringbuf_full, lru_evictions, flow_insert_failed FROM coverage
             WHERE end_ms >= ?1 AND start_ms <= ?2 ORDER BY node, start_ms",
        )?;
        let rows = q.query_map(
            params![since.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX)],
            |r| {
                Ok(CoverageInterval {
                    node: r.get(0)?,
                    start_ms: r.get(1)?,
                    end_ms: r.get(2)?,
                    ringbuf_full: r.get::<_, i64>(3)? as u64,
                    lru_evictions: r.get::<_, i64>(4)? as u64,
                    flow_insert_failed: r.get::<_, i64>(5)? as u64,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
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

    fn edge(count: u64, at: i64) -> (EdgeKey, EdgeDelta) {
        (
            EdgeKey {
                verdict: "undocumented_egress",
                src: "GES".into(),
                dst: "Redis".into(),
                transport: "tcp",
                port: 6379,
            },
            EdgeDelta {
                count,
                first_seen_ms: at,
                last_seen_ms: at,
                example_comm: Some("ges".into()),
                ..EdgeDelta::default()
            },
        )
    }

    fn coverage(start: i64, end: i64, ringbuf_full: u64) -> Option<CoverageUpdate> {
        Some(CoverageUpdate {
            session_start_ms: 0,
            start_ms: start,
            end_ms: end,
            ringbuf_full,
            ..CoverageUpdate::default()
        })
    }

    #[test]
    fn commits_accumulate_and_drops_split_coverage() {
        let path = tmp("acc");
        let mut s = Store::open(&path).unwrap();
        for (i, drops) in [(1, 0), (2, 0), (3, 5), (4, 0)] {
            let mut b = Batch::default();
            let (k, d) = edge(10, i * 1000);
            b.add_edge(k, d);
            b.coverage = coverage((i - 1) * 1000, i * 1000, drops);
            s.commit("n1", &b).unwrap();
        }
        let edges = s.edges(None, None).unwrap();
        assert_eq!(
            (
                edges.len(),
                edges[0].count,
                edges[0].first_seen_ms,
                edges[0].last_seen_ms
            ),
            (1, 40, 1000, 4000)
        );
        let cov: Vec<(i64, i64, u64)> = s
            .coverage(None, None)
            .unwrap()
            .iter()
            .map(|c| (c.start_ms, c.end_ms, c.ringbuf_full))
            .collect();
        // Clean time merges into one interval; the interval with drops stands alone.
        assert_eq!(cov, vec![(0, 2000, 0), (2000, 3000, 5), (3000, 4000, 0)]);
        // Retention at 3500: the edge (last seen 4000) stays; the two intervals ending before go.
        assert_eq!(s.prune(3500).unwrap(), 2);
        assert_eq!(s.edges(None, None).unwrap().len(), 1);
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
        let missing = path.with_file_name("missing.db");
        let e = Store::open_existing(&missing).err().expect("refused");
        assert_eq!(
            format!("{e:#}"),
            format!("{}: cannot read: no such file", missing.display())
        );
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
