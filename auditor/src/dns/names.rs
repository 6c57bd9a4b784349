//! The name table: per (network namespace, address), the names that pod's answers gave
//! the address, each with its expiry. A flow is judged only by the names its own pod
//! resolved, so the namespace is part of every key and no lookup crosses it.
//!
//! An entry names a connection opened at `t` when `t <= expires_ms` (the answer's TTL
//! plus the grace window). A flow that used the entry binds it for `hold`, and every
//! later use renews that: a connection *held* open since (found by the walk of open
//! sockets, also after a restart) keeps the name while it is bound, so a pool opened at
//! start and held for days is still Redis. A *new* connection after the expiry is not
//! named, bound or not: TTLs are honoured for every connection made.
//!
//! Memory is bounded by `max_names` entries (one per namespace, address and name);
//! names are interned, so many pods and addresses sharing a CDN name hold one copy.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::answer::Resolution;
use crate::model::Millis;

/// How long a flow's use of a name keeps it (see the module doc). An hour is twelve
/// sweeps of open sockets at the default `--active-interval` (5 min), so a pool that is
/// only re-reported by those sweeps keeps its name with room for missed ones; a daemon
/// run with a longer interval should raise [`NameLimits::hold`] above it.
pub const HOLD: Duration = Duration::from_secs(3600);

/// Per-allocation bookkeeping of the allocator, counted into [`NameTable::approx_bytes`]
/// (glibc's malloc uses 8 to 16 bytes a chunk, and rounds sizes up to 16).
const ALLOC_OVERHEAD: usize = 16;

/// The table's bounds and windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameLimits {
    /// The most (namespace, address, name) entries held; 100,000 by default. At that
    /// cap the table holds about 23 MB when no two entries share a name, the worst case
    /// (`names_memory_at_100k` measures it). A node's pods rarely hold more than a few
    /// thousand live names, so this is room for a busy node, and a bound against a pod
    /// that resolves random names on purpose.
    pub max_names: usize,
    /// Added to each answer's TTL. 30 s because the JVM caches a lookup for 30 s by
    /// default (`networkaddress.cache.ttl`) whatever the TTL, glibc-based clients with
    /// nscd or a sidecar cache do similar, and a connect comes a little after the answer
    /// it uses; with a 2 s TTL, such clients would otherwise turn into alarms.
    pub grace: Duration,
    /// How long a use binds a name, [`HOLD`] by default.
    pub hold: Duration,
}

impl Default for NameLimits {
    fn default() -> Self {
        Self {
            max_names: 100_000,
            grace: Duration::from_secs(30),
            hold: HOLD,
        }
    }
}

/// A name an address had for a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameHit {
    pub name: Arc<str>,
    /// When an answer last gave this name to this address (Unix ms).
    pub learned_ms: Millis,
    /// The resolver that last gave it.
    pub resolver: IpAddr,
    /// When the answer's TTL plus grace ran (or runs) out.
    pub expires_ms: Millis,
}

/// One entry as the store keeps it across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredName {
    pub netns_cookie: u64,
    pub addr: IpAddr,
    pub name: String,
    /// Where the name stood in its chain: 0 the name the application asked for, then
    /// CNAME targets in order (so lookups after a restart list names in the same order).
    #[serde(default)]
    pub position: u8,
    pub learned_ms: Millis,
    pub expires_ms: Millis,
    /// Until when a flow's use keeps the name; `None` when no flow has used it.
    pub bound_until_ms: Option<Millis>,
    pub resolver: IpAddr,
}

#[derive(Debug, Clone)]
struct Entry {
    name: Arc<str>,
    position: u8,
    learned_ms: Millis,
    expires_ms: Millis,
    bound_until_ms: Option<Millis>,
    /// Learned or used; the least recent go first when the table is full.
    last_used_ms: Millis,
    resolver: IpAddr,
}

impl Entry {
    fn valid_at(&self, at_ms: Millis) -> bool {
        at_ms <= self.expires_ms || self.bound_until_ms.is_some_and(|b| at_ms <= b)
    }
}

type Key = (u64, IpAddr);

/// The names each pod learned for each address.
#[derive(Debug)]
pub struct NameTable {
    limits: NameLimits,
    by_addr: HashMap<Key, Vec<Entry>>,
    interned: HashSet<Arc<str>>,
    len: usize,
    evictions: u64,
    /// The latest time the table was told about: a use binds from here, so a flow that
    /// reports its (old) opening time still renews the binding.
    clock: Millis,
}

fn millis(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

impl NameTable {
    pub fn new(limits: NameLimits) -> Self {
        Self {
            limits,
            by_addr: HashMap::new(),
            interned: HashSet::new(),
            len: 0,
            evictions: 0,
            clock: Millis::MIN,
        }
    }

    /// Records the names of one resolution for `netns`'s view of its address. Learning a
    /// name again extends its expiry (never shortens it) and moves `learned_ms` and
    /// `resolver` to this answer: the report says when and from where a name was last
    /// confirmed.
    pub fn learn(&mut self, netns: u64, r: &Resolution, resolver: IpAddr, at_ms: Millis) {
        self.clock = self.clock.max(at_ms);
        let expires_ms = at_ms
            .saturating_add(Millis::from(r.ttl).saturating_mul(1000))
            .saturating_add(millis(self.limits.grace));
        for (position, name) in r.names.iter().enumerate() {
            let name = self.intern(name);
            self.insert(
                (netns, r.addr),
                Entry {
                    name,
                    position: u8::try_from(position).unwrap_or(u8::MAX),
                    learned_ms: at_ms,
                    expires_ms,
                    bound_until_ms: None,
                    last_used_ms: at_ms,
                    resolver,
                },
            );
        }
    }

    /// The names `addr` had for `netns` for a connection seen at `at_ms`: the name the
    /// application asked for first, then CNAME targets in chain order (among names at the
    /// same place, the most recently learned first). `held`: the connection was found
    /// open, so a bound name still names it after its expiry (see the module doc). Each
    /// name returned is bound.
    pub fn names_at(
        &mut self,
        netns: u64,
        addr: IpAddr,
        at_ms: Millis,
        held: bool,
    ) -> Vec<NameHit> {
        self.clock = self.clock.max(at_ms);
        let bind_until = self.clock.saturating_add(millis(self.limits.hold));
        let clock = self.clock;
        let Some(entries) = self.by_addr.get_mut(&(netns, addr)) else {
            return Vec::new();
        };
        let mut hits: Vec<(u8, NameHit)> = Vec::new();
        let names = |e: &Entry| {
            at_ms <= e.expires_ms || (held && e.bound_until_ms.is_some_and(|b| at_ms <= b))
        };
        for e in entries.iter_mut().filter(|e| names(e)) {
            e.bound_until_ms = Some(e.bound_until_ms.map_or(bind_until, |b| b.max(bind_until)));
            e.last_used_ms = e.last_used_ms.max(clock);
            hits.push((
                e.position,
                NameHit {
                    name: e.name.clone(),
                    learned_ms: e.learned_ms,
                    resolver: e.resolver,
                    expires_ms: e.expires_ms,
                },
            ));
        }
        hits.sort_by(|(pa, a), (pb, b)| {
            pa.cmp(pb)
                .then(b.learned_ms.cmp(&a.learned_ms))
                .then(a.name.cmp(&b.name))
        });
        hits.into_iter().map(|(_, h)| h).collect()
    }

    /// Drops the entries that are neither valid nor bound at `now_ms`.
    pub fn expire(&mut self, now_ms: Millis) {
        self.clock = self.clock.max(now_ms);
        let mut dropped = 0;
        self.by_addr.retain(|_, entries| {
            let before = entries.len();
            entries.retain(|e| e.valid_at(now_ms));
            dropped += before - entries.len();
            !entries.is_empty()
        });
        self.len -= dropped;
        if dropped > 0 {
            self.forget_unused_names();
        }
    }

    /// Entries held: one per (namespace, address, name).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries dropped to stay within `max_names` while still valid or bound (expired
    /// ones dropped on the way are not counted: they were going anyway).
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The heap the table holds, estimated from its capacities (walks every entry): hash
    /// tables at their slot count plus a control byte a slot, each vector at its capacity,
    /// each interned name with its reference counts, and allocator overhead for each
    /// allocation.
    pub fn approx_bytes(&self) -> usize {
        use std::mem::size_of;
        // hashbrown keeps a power of two of slots, at most 7/8 of them used.
        fn slots(capacity: usize) -> usize {
            if capacity == 0 {
                0
            } else {
                (capacity * 8 / 7).next_power_of_two()
            }
        }
        let map = slots(self.by_addr.capacity()) * (size_of::<(Key, Vec<Entry>)>() + 1);
        let vecs: usize = self
            .by_addr
            .values()
            .map(|v| v.capacity() * size_of::<Entry>() + ALLOC_OVERHEAD)
            .sum();
        let set = slots(self.interned.capacity()) * (size_of::<Arc<str>>() + 1);
        let names: usize = self
            .interned
            .iter()
            .map(|n| (2 * size_of::<usize>() + n.len()).next_multiple_of(16) + ALLOC_OVERHEAD)
            .sum();
        map + vecs + set + names
    }

    /// Every entry, for the store.
    pub fn snapshot(&self) -> Vec<StoredName> {
        let mut rows = Vec::with_capacity(self.len);
        for (&(netns_cookie, addr), entries) in &self.by_addr {
            for e in entries {
                rows.push(StoredName {
                    netns_cookie,
                    addr,
                    name: e.name.to_string(),
                    position: e.position,
                    learned_ms: e.learned_ms,
                    expires_ms: e.expires_ms,
                    bound_until_ms: e.bound_until_ms,
                    resolver: e.resolver,
                });
            }
        }
        rows
    }

    /// Adds the entries the store kept (merged with any already held, within
    /// `max_names`). Returns how many rows were refused because their name is not one
    /// this table could have written (empty, or not printable ASCII): a damaged store
    /// must not put arbitrary text into outputs. Call [`NameTable::expire`] after, with
    /// the current time, to drop what ran out while the daemon was down.
    pub fn restore(&mut self, rows: impl IntoIterator<Item = StoredName>) -> usize {
        let hold = millis(self.limits.hold);
        let mut refused = 0;
        for row in rows {
            if row.name.is_empty() || !row.name.bytes().all(|b| b.is_ascii_graphic()) {
                refused += 1;
                continue;
            }
            self.clock = self.clock.max(row.learned_ms);
            let last_used_ms = row.bound_until_ms.map_or(row.learned_ms, |b| {
                row.learned_ms.max(b.saturating_sub(hold))
            });
            let name = self.intern(&row.name);
            self.insert(
                (row.netns_cookie, row.addr),
                Entry {
                    name,
                    position: row.position,
                    learned_ms: row.learned_ms,
                    expires_ms: row.expires_ms,
                    bound_until_ms: row.bound_until_ms,
                    last_used_ms,
                    resolver: row.resolver,
                },
            );
        }
        refused
    }

    /// The one shared copy of `name`.
    fn intern(&mut self, name: &str) -> Arc<str> {
        if let Some(n) = self.interned.get(name) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(name);
        self.interned.insert(n.clone());
        n
    }

    /// Adds `new` under `key`, or merges it into the entry of the same name there.
    fn insert(&mut self, key: Key, new: Entry) {
        if let Some(e) = self
            .by_addr
            .get_mut(&key)
            .and_then(|v| v.iter_mut().find(|e| Arc::ptr_eq(&e.name, &new.name)))
        {
            e.expires_ms = e.expires_ms.max(new.expires_ms);
            e.bound_until_ms = e.bound_until_ms.max(new.bound_until_ms);
            e.position = e.position.min(new.position);
            e.last_used_ms = e.last_used_ms.max(new.last_used_ms);
            if new.learned_ms >= e.learned_ms {
                e.learned_ms = new.learned_ms;
                e.resolver = new.resolver;
            }
            return;
        }
        if self.limits.max_names == 0 {
            drop(new);
            self.forget_unused_names();
            return;
        }
        if self.len >= self.limits.max_names {
            self.make_room();
        }
        let entries = self.by_addr.entry(key).or_default();
        // Most addresses carry one or two names: grow by half rather than doubling from
        // four, which would reserve room for four entries behind every address.
        if entries.len() == entries.capacity() {
            entries.reserve_exact((entries.len() / 2).max(1));
        }
        entries.push(new);
        self.len += 1;
    }

    /// Frees at least one slot: first what has expired, else the least recently used
    /// 1/64 of the table (one O(n) pass per batch rather than per insertion).
    fn make_room(&mut self) {
        self.expire(self.clock);
        if self.len < self.limits.max_names {
            return;
        }
        let batch = (self.limits.max_names / 64).max(1).min(self.len);
        let mut used: Vec<Millis> = self
            .by_addr
            .values()
            .flatten()
            .map(|e| e.last_used_ms)
            .collect();
        let (_, &mut cutoff, _) = used.select_nth_unstable(batch - 1);
        let mut left = batch;
        self.by_addr.retain(|_, entries| {
            entries.retain(|e| {
                if left > 0 && e.last_used_ms <= cutoff {
                    left -= 1;
                    false
                } else {
                    true
                }
            });
            !entries.is_empty()
        });
        self.len -= batch - left;
        self.evictions += (batch - left) as u64;
        self.forget_unused_names();
    }

    /// Drops interned names no entry holds (the set's own reference is the only one).
    fn forget_unused_names(&mut self) {
        self.interned.retain(|n| Arc::strong_count(n) > 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NETNS_A: u64 = 0xA;
    const NETNS_B: u64 = 0xB;

    fn resolver() -> IpAddr {
        "10.96.0.10".parse().unwrap()
    }

    fn res(addr: &str, names: &[&str], ttl: u32) -> Resolution {
        Resolution {
            addr: addr.parse().unwrap(),
            names: names.iter().map(|n| n.to_string()).collect(),
            ttl,
        }
    }

    fn names(hits: &[NameHit]) -> Vec<&str> {
        hits.iter().map(|h| &*h.name).collect()
    }

    /// The managed Redis at 10.1.0.5, as pod A's resolver gave it at `at_ms` with a 2 s TTL.
    fn redis_learned_at(at_ms: Millis) -> (NameTable, IpAddr) {
        let mut t = NameTable::new(limits(100));
        t.learn(
            NETNS_A,
            &res("10.1.0.5", &["redis.example"], 2),
            resolver(),
            at_ms,
        );
        (t, "10.1.0.5".parse().unwrap())
    }

    fn limits(max_names: usize) -> NameLimits {
        NameLimits {
            max_names,
            ..NameLimits::default()
        }
    }

    #[test]
    fn a_name_holds_for_its_ttl_plus_grace_then_not() {
        let (mut t, addr) = redis_learned_at(1_000);
        let last_valid = 1_000 + 2_000 + 30_000;
        let hits = t.names_at(NETNS_A, addr, last_valid, true);
        assert_eq!(names(&hits), ["redis.example"]);
        assert_eq!(hits[0].learned_ms, 1_000);
        assert_eq!(hits[0].expires_ms, last_valid);
        assert_eq!(hits[0].resolver, resolver());
        // A fresh table: no lookup has bound the name.
        let (mut t, _) = redis_learned_at(1_000);
        assert!(t.names_at(NETNS_A, addr, last_valid + 1, true).is_empty());
        t.expire(last_valid + 1);
        assert!(t.is_empty());
    }

    #[test]
    fn a_connection_opened_while_valid_keeps_its_name_for_days() {
        let (mut t, addr) = redis_learned_at(0);
        // The pool connects at 1 s, and is re-reported every 5 minutes for three days,
        // with its opening time.
        assert_eq!(
            names(&t.names_at(NETNS_A, addr, 1_000, true)),
            ["redis.example"]
        );
        let mut now = 0;
        while now < 3 * 86_400_000 {
            now += 300_000;
            t.expire(now);
            assert_eq!(
                names(&t.names_at(NETNS_A, addr, 1_000, true)),
                ["redis.example"],
                "{now}"
            );
        }
        // The pool closes: an hour after its last report the name is gone.
        t.expire(now + millis(HOLD) + 1);
        assert!(t.is_empty());
    }

    #[test]
    fn a_connection_opened_after_expiry_does_not_bind() {
        let (mut t, addr) = redis_learned_at(0);
        assert!(t.names_at(NETNS_A, addr, 60_000, true).is_empty());
        t.expire(60_000);
        assert!(t.is_empty());
    }

    #[test]
    fn a_held_connection_keeps_a_bound_name_and_a_new_one_after_expiry_does_not() {
        let (mut t, addr) = redis_learned_at(0);
        // The pool opens while the name is valid (2 s TTL, 30 s grace): bound.
        assert_eq!(
            names(&t.names_at(NETNS_A, addr, 1_000, false)),
            ["redis.example"]
        );
        let late = 2_000 + 30_000 + 60_000;
        // A minute past the expiry, the walk finds the pool still open: still Redis.
        assert_eq!(
            names(&t.names_at(NETNS_A, addr, late, true)),
            ["redis.example"]
        );
        // A new connection then, without a new answer: not named.
        assert!(t.names_at(NETNS_A, addr, late, false).is_empty());
    }

    #[test]
    fn namespaces_never_see_each_others_names() {
        let mut t = NameTable::new(limits(100));
        let addr: IpAddr = "10.1.0.5".parse().unwrap();
        t.learn(
            NETNS_A,
            &res("10.1.0.5", &["redis.example"], 60),
            resolver(),
            0,
        );
        t.learn(
            NETNS_B,
            &res("10.1.0.5", &["kafka.example"], 60),
            resolver(),
            0,
        );
        assert_eq!(
            names(&t.names_at(NETNS_A, addr, 1, true)),
            ["redis.example"]
        );
        assert_eq!(
            names(&t.names_at(NETNS_B, addr, 1, true)),
            ["kafka.example"]
        );
        assert!(t.names_at(0xC, addr, 1, true).is_empty());
    }

    #[test]
    fn an_address_keeps_every_name_question_first() {
        let mut t = NameTable::new(limits(100));
        let addr = "151.101.1.1".parse().unwrap();
        t.learn(
            NETNS_A,
            &res("151.101.1.1", &["www.shop.example", "shop.cdn.example"], 60),
            resolver(),
            0,
        );
        t.learn(
            NETNS_A,
            &res(
                "151.101.1.1",
                &["api.other.example", "other.cdn.example"],
                60,
            ),
            resolver(),
            5,
        );
        assert_eq!(
            names(&t.names_at(NETNS_A, addr, 10, true)),
            [
                "api.other.example",
                "www.shop.example",
                "other.cdn.example",
                "shop.cdn.example"
            ]
        );
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn learning_again_extends_and_says_when_and_from_where() {
        let mut t = NameTable::new(limits(100));
        let addr = "10.1.0.5".parse().unwrap();
        let other: IpAddr = "169.254.20.10".parse().unwrap();
        t.learn(
            NETNS_A,
            &res("10.1.0.5", &["redis.example"], 300),
            resolver(),
            0,
        );
        t.learn(
            NETNS_A,
            &res("10.1.0.5", &["redis.example"], 2),
            other,
            10_000,
        );
        let hits = t.names_at(NETNS_A, addr, 10_000, true);
        assert_eq!(t.len(), 1);
        assert_eq!(hits[0].learned_ms, 10_000);
        assert_eq!(hits[0].resolver, other);
        // The longer expiry stands.
        assert_eq!(hits[0].expires_ms, 300_000 + 30_000);
    }

    #[test]
    fn the_cap_evicts_the_least_recently_used_and_counts() {
        let mut t = NameTable::new(limits(128));
        let first: IpAddr = "10.0.0.0".parse().unwrap();
        for i in 0..200u32 {
            let addr = IpAddr::from((0x0A00_0000 + i).to_be_bytes());
            t.learn(
                NETNS_A,
                &res(&addr.to_string(), &[&format!("n{i}.example")], 3600),
                resolver(),
                i64::from(i),
            );
            if i < 100 {
                // Keep the first address in use.
                t.names_at(NETNS_A, first, i64::from(i), true);
            }
        }
        assert!(t.len() <= 128);
        assert_eq!(t.evictions(), 200 - t.len() as u64);
        assert_eq!(
            names(&t.names_at(NETNS_A, first, 200, true)),
            ["n0.example"]
        );
        let newest = IpAddr::from((0x0A00_0000u32 + 199).to_be_bytes());
        assert_eq!(
            names(&t.names_at(NETNS_A, newest, 200, true)),
            ["n199.example"]
        );
        let old = IpAddr::from((0x0A00_0000u32 + 1).to_be_bytes());
        assert!(t.names_at(NETNS_A, old, 200, true).is_empty());
    }

    #[test]
    fn expired_entries_make_room_before_live_ones_are_evicted() {
        let mut t = NameTable::new(limits(10));
        for i in 0..10u8 {
            t.learn(
                NETNS_A,
                &res(&format!("10.0.0.{i}"), &["short.example"], 1),
                resolver(),
                0,
            );
        }
        t.learn(
            NETNS_A,
            &res("10.0.1.1", &["new.example"], 60),
            resolver(),
            100_000,
        );
        assert_eq!(t.len(), 1);
        assert_eq!(t.evictions(), 0);
    }

    #[test]
    fn names_are_shared_and_forgotten_with_their_last_entry() {
        let mut t = NameTable::new(limits(1000));
        for i in 0..100u8 {
            t.learn(
                i.into(),
                &res("10.0.0.1", &["shared.example"], 1),
                resolver(),
                0,
            );
        }
        assert_eq!(t.interned.len(), 1);
        t.expire(1_000_000);
        assert!(t.interned.is_empty());
    }

    #[test]
    fn snapshot_and_restore_keep_names_expiries_and_bindings() {
        let mut t = NameTable::new(limits(100));
        let addr: IpAddr = "10.1.0.5".parse().unwrap();
        t.learn(
            NETNS_A,
            &res("10.1.0.5", &["redis.voice.svc", "x.redis.example"], 2),
            resolver(),
            0,
        );
        t.learn(
            NETNS_B,
            &res("10.2.0.9", &["kafka.example"], 2),
            resolver(),
            0,
        );
        // A pool to Redis was open; Kafka's name was never used.
        t.names_at(NETNS_A, addr, 1_000, true);
        let rows = t.snapshot();
        let text = serde_json::to_string(&rows).unwrap();
        let back: Vec<StoredName> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, rows);

        // The daemon comes back ten minutes later.
        let mut restored = NameTable::new(limits(100));
        assert_eq!(restored.restore(back), 0);
        assert_eq!(restored.len(), 3);
        restored.expire(600_000);
        assert_eq!(restored.len(), 2);
        let hits = restored.names_at(NETNS_A, addr, 1_000, true);
        assert_eq!(names(&hits), ["redis.voice.svc", "x.redis.example"]);
        assert_eq!(hits[0].expires_ms, 32_000);
        assert!(
            restored
                .names_at(NETNS_B, "10.2.0.9".parse().unwrap(), 1_000, true)
                .is_empty()
        );
    }

    #[test]
    fn restore_refuses_names_no_answer_could_give() {
        let mut t = NameTable::new(limits(100));
        let row = |name: &str| StoredName {
            netns_cookie: 1,
            addr: "10.0.0.1".parse().unwrap(),
            name: name.into(),
            position: 0,
            learned_ms: 0,
            expires_ms: 10,
            bound_until_ms: None,
            resolver: resolver(),
        };
        assert_eq!(
            t.restore([row("ok.example"), row(""), row("bad\nname"), row("ünï")]),
            3
        );
        assert_eq!(t.len(), 1);
    }

    /// The README's figure: the table at its default cap, 100,000 entries each with its
    /// own name (the worst case: no name shared between entries), two names an address,
    /// in 20 namespaces.
    #[test]
    fn names_memory_at_100k() {
        fn rss_bytes() -> Option<usize> {
            let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
            let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
            Some(pages * 4096)
        }
        let before = rss_bytes();
        let mut t = NameTable::new(NameLimits::default());
        for i in 0..100_000u32 {
            let addr = IpAddr::from((0x0A00_0000 + i / 2).to_be_bytes());
            let name = format!("svc-{i:06}.tenant-{:02}.redis.cache.windows.net", i % 97);
            let r = Resolution {
                addr,
                names: vec![name],
                ttl: 300,
            };
            t.learn(u64::from((i / 2) % 20), &r, resolver(), 0);
        }
        // What glibc holds freed (the building's temporaries, the tables outgrown) is not
        // the table's.
        crate::memory::release_freed_memory();
        let after = rss_bytes();
        assert_eq!(t.len(), 100_000);
        assert_eq!(t.evictions(), 0);
        let approx = t.approx_bytes();
        let rss = match (before, after) {
            (Some(b), Some(a)) => format!("{:.1} MB", a.saturating_sub(b) as f64 / 1e6),
            _ => "unknown".into(),
        };
        println!(
            "name table at 100,000 names: approx_bytes {:.1} MB, RSS growth {rss} (with the allocator's fragmentation, and whatever tests run alongside)",
            approx as f64 / 1e6
        );
        assert!(approx < 40_000_000, "{approx}");
        assert!(
            approx > 100_000 * 100,
            "an estimate this low cannot be honest: {approx}"
        );
    }
}
