//! The two caches (success and denial) on moka, and the freshness of an entry. Freshness comes
//! from our own timestamps and an injectable [`Clock`] (moka's clock cannot be mocked); moka only
//! bounds the entry count and memory and drops entries once even stale serving is over.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::BinEncodable;
use moka::future::Cache;
use moka::notification::RemovalCause;

use super::key::{Key, KeyRef};
use super::policy::Kind;
use crate::plugin::Answer;

/// Milliseconds since an arbitrary, fixed start: what freshness is measured in.
pub(crate) trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> u64;
}

/// The real monotonic clock.
pub(crate) struct SystemClock {
    epoch: Instant,
}

impl SystemClock {
    pub(crate) fn new() -> Self {
        SystemClock {
            epoch: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A clock tests move by hand.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct FakeClock(AtomicU64);

#[cfg(test)]
impl FakeClock {
    pub(crate) fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

#[cfg(test)]
impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Every entry weighs at least this many bytes, so a cache of N entries' worth of weight holds
/// at most N entries and at most N KiB (approximately) of records.
pub(crate) const MIN_ENTRY_WEIGHT: u32 = 1024;

/// One cached answer. Its records already carry the entry's single TTL.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) kind: Kind,
    rcode: ResponseCode,
    recursion_available: bool,
    authentic_data: bool,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
    /// Lifetime in seconds, as stored.
    pub(crate) ttl: u32,
    /// When it was stored ([`Clock::now_ms`]).
    stored_ms: u64,
    /// Approximate memory, for moka's weigher.
    weight: u32,
    /// Prefetch popularity: hits since `window_ms`.
    window_ms: AtomicU64,
    hits: AtomicU32,
    /// A background refresh of this entry is running.
    refreshing: AtomicBool,
}

impl Entry {
    /// An entry for `answer` (whose records already carry `ttl`) stored at `now_ms`.
    pub(crate) fn new(kind: Kind, answer: &Answer, ttl: u32, now_ms: u64) -> Self {
        let records = answer
            .answers
            .iter()
            .chain(&answer.authorities)
            .chain(&answer.additionals);
        let bytes: usize = std::mem::size_of::<Entry>()
            + records
                .map(|r| {
                    // Wire size stands in for the heap parts (names, rdata); only on insert.
                    std::mem::size_of::<Record>() + r.to_bytes().map_or(512, |b| b.len())
                })
                .sum::<usize>();
        Entry {
            kind,
            rcode: answer.rcode,
            recursion_available: answer.recursion_available,
            authentic_data: answer.authentic_data,
            answers: answer.answers.clone(),
            authorities: answer.authorities.clone(),
            additionals: answer.additionals.clone(),
            ttl,
            stored_ms: now_ms,
            weight: u32::try_from(bytes)
                .unwrap_or(u32::MAX)
                .max(MIN_ENTRY_WEIGHT),
            window_ms: AtomicU64::new(now_ms),
            hits: AtomicU32::new(0),
            refreshing: AtomicBool::new(false),
        }
    }

    /// Seconds of life left at `now_ms` (0 or below: expired), ageing in whole seconds.
    pub(crate) fn remaining(&self, now_ms: u64) -> i64 {
        let elapsed = now_ms.saturating_sub(self.stored_ms) / 1000;
        i64::from(self.ttl) - i64::try_from(elapsed).unwrap_or(i64::MAX)
    }

    /// The reply for a query named `qname`: every record with `ttl`, owner names equal to the
    /// question in the asker's letter case, AA=1, AD only for DO queries.
    pub(crate) fn answer(&self, qname: &Name, ttl: u32, dnssec_ok: bool) -> Answer {
        Answer {
            rcode: self.rcode,
            authoritative: true,
            recursion_available: self.recursion_available,
            authentic_data: self.authentic_data && dnssec_ok,
            truncated: false,
            answers: copy(&self.answers, qname, Some(ttl)),
            authorities: copy(&self.authorities, qname, Some(ttl)),
            additionals: copy(&self.additionals, qname, Some(ttl)),
        }
    }

    /// Counts a hit for prefetch; returns the hits within the current window of `window`.
    pub(crate) fn hit(&self, now_ms: u64, window: Duration) -> u32 {
        let window = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let start = self.window_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(start) > window
            && self
                .window_ms
                .compare_exchange(start, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.hits.store(1, Ordering::Relaxed);
            return 1;
        }
        self.hits.fetch_add(1, Ordering::Relaxed).saturating_add(1)
    }

    /// Claims the one background refresh of this entry; false if one is running.
    pub(crate) fn begin_refresh(&self) -> bool {
        !self.refreshing.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn end_refresh(&self) {
        self.refreshing.store(false, Ordering::Release);
    }
}

/// Copies `records`, optionally setting their TTL, with owner names equal to `qname` in its case.
pub(crate) fn copy(records: &[Record], qname: &Name, ttl: Option<u32>) -> Vec<Record> {
    records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if let Some(ttl) = ttl {
                r.ttl = ttl;
            }
            if r.name == *qname && !r.name.eq_case(qname) {
                r.name = qname.clone();
            }
            r
        })
        .collect()
}

/// Called when moka drops an entry: its cache, and whether it was evicted for room.
pub(crate) type OnRemove = Arc<dyn Fn(Kind, bool) + Send + Sync>;

/// The success and denial caches.
pub(crate) struct Store {
    pub(crate) success: Cache<Key, Arc<Entry>>,
    pub(crate) denial: Cache<Key, Arc<Entry>>,
}

/// Moka drops an entry once its TTL and the stale window are over (plus a second of slack so
/// our own clock decides first).
struct Expire {
    stale: Duration,
}

impl moka::Expiry<Key, Arc<Entry>> for Expire {
    fn expire_after_create(
        &self,
        _key: &Key,
        value: &Arc<Entry>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(u64::from(value.ttl) + 1).saturating_add(self.stale))
    }

    fn expire_after_update(
        &self,
        key: &Key,
        value: &Arc<Entry>,
        updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, value, updated_at)
    }
}

fn build(
    kind: Kind,
    capacity: usize,
    stale: Duration,
    on_remove: OnRemove,
) -> Cache<Key, Arc<Entry>> {
    let budget = u64::try_from(capacity)
        .unwrap_or(u64::MAX)
        .saturating_mul(u64::from(MIN_ENTRY_WEIGHT));
    Cache::builder()
        .max_capacity(budget)
        .weigher(|_k: &Key, v: &Arc<Entry>| v.weight)
        .expire_after(Expire { stale })
        .eviction_listener(move |_k, _v, cause| on_remove(kind, cause == RemovalCause::Size))
        .build()
}

impl Store {
    /// Caches of `success` and `denial` entries each; `stale` is how long past expiry an entry
    /// may still be served.
    pub(crate) fn new(success: usize, denial: usize, stale: Duration, on_remove: OnRemove) -> Self {
        Store {
            success: build(Kind::Success, success, stale, Arc::clone(&on_remove)),
            denial: build(Kind::Denial, denial, stale, on_remove),
        }
    }

    /// The entry for `key`, from either cache.
    pub(crate) async fn get(&self, key: &KeyRef<'_>) -> Option<Arc<Entry>> {
        match self.success.get(key).await {
            Some(entry) => Some(entry),
            None => self.denial.get(key).await,
        }
    }

    /// Stores `entry` in its cache, dropping any entry of the other kind for the key.
    pub(crate) async fn insert(&self, key: Key, entry: Arc<Entry>) {
        let (own, other) = match entry.kind {
            Kind::Success => (&self.success, &self.denial),
            Kind::Denial => (&self.denial, &self.success),
        };
        other.invalidate(&key).await;
        own.insert(key, entry).await;
    }

    /// Removes `entry` from its cache if it is still the one stored under `key`.
    pub(crate) async fn remove_if_same(&self, key: &Key, entry: &Arc<Entry>) {
        let cache = match entry.kind {
            Kind::Success => &self.success,
            Kind::Denial => &self.denial,
        };
        cache
            .entry_by_ref(key)
            .and_compute_with(|current| {
                let op = match current {
                    Some(c) if Arc::ptr_eq(c.value(), entry) => moka::ops::compute::Op::Remove,
                    _ => moka::ops::compute::Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
    }

    /// Entries held in `kind`'s cache, after moka's pending work.
    #[cfg(test)]
    pub(crate) async fn len(&self, kind: Kind) -> u64 {
        let cache = match kind {
            Kind::Success => &self.success,
            Kind::Denial => &self.denial,
        };
        cache.run_pending_tasks().await;
        cache.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{DNSClass, LowerName, RData, RecordType};

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn answer_for(owner: &str, ttl: u32) -> Answer {
        Answer {
            recursion_available: true,
            authentic_data: true,
            answers: vec![Record::from_rdata(
                name(owner),
                ttl,
                RData::A(A(Ipv4Addr::new(10, 0, 0, 1))),
            )],
            ..Answer::new(ResponseCode::NoError)
        }
    }

    fn key(s: &str) -> Key {
        Key {
            name: LowerName::new(&name(s)),
            qtype: RecordType::A,
            qclass: DNSClass::IN,
            flags: 0,
        }
    }

    #[test]
    fn remaining_ages_in_whole_seconds() {
        let e = Entry::new(Kind::Success, &answer_for("a.", 30), 30, 10_000);
        assert_eq!(e.remaining(10_000), 30);
        assert_eq!(e.remaining(10_999), 30);
        assert_eq!(e.remaining(11_000), 29);
        assert_eq!(e.remaining(40_000), 0);
        assert_eq!(e.remaining(45_500), -5);
        // A clock before the store time never makes an entry younger than new.
        assert_eq!(e.remaining(0), 30);
    }

    #[test]
    fn answer_sets_ttl_case_and_flags() {
        let e = Entry::new(Kind::Success, &answer_for("web.example.org.", 30), 30, 0);
        let a = e.answer(&name("WeB.Example.ORG."), 12, false);
        assert!(a.authoritative);
        assert!(a.recursion_available);
        assert!(!a.authentic_data, "AD only for DO queries");
        assert_eq!(a.answers[0].ttl, 12);
        assert!(a.answers[0].name.eq_case(&name("WeB.Example.ORG.")));
        assert!(e.answer(&name("web.example.org."), 1, true).authentic_data);
        // Other owner names keep their own case.
        let other = e.answer(&name("other.example.org."), 1, false);
        assert!(other.answers[0].name.eq_case(&name("web.example.org.")));
    }

    #[test]
    fn hits_count_within_the_window() {
        let e = Entry::new(Kind::Success, &answer_for("a.", 30), 30, 0);
        let w = Duration::from_secs(60);
        assert_eq!(e.hit(1_000, w), 1);
        assert_eq!(e.hit(2_000, w), 2);
        assert_eq!(e.hit(60_000, w), 3);
        // The window is over: counting starts again.
        assert_eq!(e.hit(61_000, w), 1);
        assert_eq!(e.hit(62_000, w), 2);
    }

    #[test]
    fn one_refresh_at_a_time() {
        let e = Entry::new(Kind::Success, &answer_for("a.", 30), 30, 0);
        assert!(e.begin_refresh());
        assert!(!e.begin_refresh());
        e.end_refresh();
        assert!(e.begin_refresh());
    }

    #[test]
    fn weight_is_at_least_the_minimum_and_grows_with_records() {
        let small = Entry::new(Kind::Success, &answer_for("a.", 30), 30, 0);
        assert_eq!(small.weight, MIN_ENTRY_WEIGHT);
        let mut big = answer_for("a.", 30);
        big.answers = (0..100)
            .map(|i| Record::from_rdata(name("a."), 30, RData::A(A(Ipv4Addr::new(10, 0, 0, i)))))
            .collect();
        let big = Entry::new(Kind::Success, &big, 30, 0);
        assert!(big.weight > 100 * 16, "{}", big.weight);
    }

    fn counting() -> (OnRemove, Arc<AtomicU64>) {
        let evicted = Arc::new(AtomicU64::new(0));
        let e = Arc::clone(&evicted);
        let f: OnRemove = Arc::new(move |_kind, by_size| {
            if by_size {
                e.fetch_add(1, Ordering::SeqCst);
            }
        });
        (f, evicted)
    }

    #[tokio::test]
    async fn capacity_bounds_the_entry_count() {
        let (on_remove, evicted) = counting();
        let store = Store::new(1024, 1024, Duration::ZERO, on_remove);
        for i in 0..3000 {
            let e = Arc::new(Entry::new(Kind::Success, &answer_for("a.", 60), 60, 0));
            store.insert(key(&format!("n{i}.example.org.")), e).await;
        }
        let held = store.len(Kind::Success).await;
        assert!(held <= 1024, "held {held}");
        assert!(held > 0);
        assert!(evicted.load(Ordering::SeqCst) >= 3000 - 1024);
    }

    #[tokio::test]
    async fn large_entries_lower_the_count_so_memory_stays_bounded() {
        let (on_remove, _) = counting();
        let store = Store::new(1024, 1024, Duration::ZERO, on_remove);
        let mut big = answer_for("a.", 60);
        big.answers = (0..=255)
            .map(|i| {
                Record::from_rdata(
                    name("a-long-owner-name.example.org."),
                    60,
                    RData::A(A(Ipv4Addr::new(10, 0, 1, i))),
                )
            })
            .collect();
        let entry = Entry::new(Kind::Success, &big, 60, 0);
        let weight = u64::from(entry.weight);
        assert!(weight > 8 * u64::from(MIN_ENTRY_WEIGHT), "{weight}");
        for i in 0..1024 {
            let e = Arc::new(Entry::new(Kind::Success, &big, 60, 0));
            store.insert(key(&format!("n{i}.example.org.")), e).await;
        }
        let held = store.len(Kind::Success).await;
        // The budget is 1024 KiB of weight: far fewer than 1024 such entries fit.
        assert!(
            held * weight <= 1024 * u64::from(MIN_ENTRY_WEIGHT),
            "held {held} of weight {weight}"
        );
        assert!(held > 0);
    }

    #[tokio::test]
    async fn insert_replaces_the_other_kind_and_remove_if_same_spares_newer_entries() {
        let (on_remove, _) = counting();
        let store = Store::new(1024, 1024, Duration::ZERO, on_remove);
        let k = key("x.example.org.");
        let denial = Arc::new(Entry::new(
            Kind::Denial,
            &Answer::new(ResponseCode::NXDomain),
            5,
            0,
        ));
        store.insert(k.clone(), Arc::clone(&denial)).await;
        let kr = KeyRef {
            name: &k.name,
            qtype: k.qtype,
            qclass: k.qclass,
            flags: k.flags,
        };
        assert_eq!(store.get(&kr).await.map(|e| e.kind), Some(Kind::Denial));
        let success = Arc::new(Entry::new(
            Kind::Success,
            &answer_for("x.example.org.", 60),
            60,
            0,
        ));
        store.insert(k.clone(), Arc::clone(&success)).await;
        assert_eq!(store.len(Kind::Denial).await, 0);
        let got = store.get(&kr).await.expect("stored");
        assert!(Arc::ptr_eq(&got, &success));
        // Removing the old (denial) entry does nothing; removing the current one works.
        store.remove_if_same(&k, &denial).await;
        assert!(store.get(&kr).await.is_some());
        let newer = Arc::new(Entry::new(
            Kind::Success,
            &answer_for("x.example.org.", 60),
            60,
            0,
        ));
        store.insert(k.clone(), Arc::clone(&newer)).await;
        store.remove_if_same(&k, &success).await;
        assert!(store.get(&kr).await.is_some(), "a newer entry stays");
        store.remove_if_same(&k, &newer).await;
        assert!(store.get(&kr).await.is_none());
    }
}
