//! The cache plugin in a chain with a counting fake backend and a fake clock.

use std::net::Ipv4Addr;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{RData, Record};

use super::store::FakeClock;
use super::*;
use crate::plugin::test_support::{NoResolve, parse_first, query_for};

type Respond = Box<dyn Fn(&Query<'_>, usize) -> Result<Answer, PluginError> + Send + Sync>;

/// A backend that counts its calls and answers with `respond(query, call number)`.
struct Fake {
    calls: AtomicUsize,
    respond: Respond,
    delay: Duration,
}

#[async_trait]
impl Plugin for Fake {
    fn name(&self) -> &'static str {
        "forward"
    }

    async fn serve(&self, query: &Query<'_>, _next: Next<'_>) -> Result<Answer, PluginError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        (self.respond)(query, n)
    }
}

struct Setup {
    chain: Vec<Arc<dyn Plugin>>,
    fake: Arc<Fake>,
    clock: Arc<FakeClock>,
    cache: Arc<CachePlugin>,
}

impl Setup {
    fn new(corefile: &str, respond: Respond) -> Self {
        Self::with_delay(corefile, respond, Duration::ZERO)
    }

    fn with_delay(corefile: &str, respond: Respond, delay: Duration) -> Self {
        let config = parse_first(corefile, |d| setup::parse(d, &[Name::root()])).expect("valid");
        let clock = Arc::new(FakeClock::default());
        let cache = Arc::new(CachePlugin::new(
            config,
            Arc::clone(&clock) as Arc<dyn Clock>,
        ));
        let fake = Arc::new(Fake {
            calls: AtomicUsize::new(0),
            respond,
            delay,
        });
        Setup {
            chain: vec![
                Arc::clone(&cache) as Arc<dyn Plugin>,
                Arc::clone(&fake) as Arc<dyn Plugin>,
            ],
            fake,
            clock,
            cache,
        }
    }

    async fn ask(&self, query: &Query<'_>) -> Result<Answer, PluginError> {
        Next {
            rest: &self.chain,
            writer: None,
        }
        .run(query)
        .await
    }

    async fn ok(&self, query: &Query<'_>) -> Answer {
        self.ask(query).await.expect("an answer")
    }

    fn calls(&self) -> usize {
        self.fake.calls.load(Ordering::SeqCst)
    }

    fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    /// Waits (bounded) until the backend has been called `n` times.
    async fn wait_calls(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while self.calls() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "backend called {} times, expected {n}",
                self.calls()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("name")
}

fn q(text: &str) -> Query<'static> {
    query_for(text, "127.0.0.1:40000", Transport::Udp, &NoResolve)
}

fn a_record(owner: &Name, ttl: u32, last: u8) -> Record {
    Record::from_rdata(
        owner.clone(),
        ttl,
        RData::A(A(Ipv4Addr::new(10, 0, 0, last))),
    )
}

/// NOERROR with one A record (owner in the query's case, as backends answer), address
/// 10.0.0.<call number>, not authoritative.
fn a_answer(ttl: u32) -> Respond {
    Box::new(move |query, n| {
        Ok(Answer {
            recursion_available: true,
            answers: vec![a_record(query.name, ttl, u8::try_from(n).unwrap_or(255))],
            ..Answer::new(ResponseCode::NoError)
        })
    })
}

fn soa(ttl: u32, minimum: u32) -> Record {
    Record::from_rdata(
        name("example.org."),
        ttl,
        RData::SOA(SOA::new(
            name("ns.example.org."),
            name("hostmaster.example.org."),
            1,
            7200,
            1800,
            86400,
            minimum,
        )),
    )
}

fn last_octet(answer: &Answer) -> u8 {
    match answer.answers.first().map(|r| &r.data) {
        Some(RData::A(a)) => a.0.octets()[3],
        other => panic!("not an A answer: {other:?}"),
    }
}

fn ttls(answer: &Answer) -> Vec<u32> {
    answer
        .answers
        .iter()
        .chain(&answer.authorities)
        .chain(&answer.additionals)
        .map(|r| r.ttl)
        .collect()
}

#[tokio::test]
async fn ttl_decays_on_hits_and_the_entry_expires() {
    let s = Setup::new("cache", a_answer(30));
    let query = q("web.example.org.");
    let first = s.ok(&query).await;
    assert_eq!((ttls(&first), last_octet(&first)), (vec![30], 1));
    assert!(
        !first.authoritative,
        "a fresh answer keeps the backend's AA"
    );
    s.advance(10);
    let hit = s.ok(&query).await;
    assert_eq!((ttls(&hit), last_octet(&hit)), (vec![20], 1));
    assert!(hit.authoritative, "cached answers have AA=1");
    assert!(hit.recursion_available);
    s.advance(19);
    assert_eq!(ttls(&s.ok(&query).await), vec![1]);
    assert_eq!(s.calls(), 1);
    s.advance(1);
    let refetched = s.ok(&query).await;
    assert_eq!((ttls(&refetched), last_octet(&refetched)), (vec![30], 2));
    assert_eq!(s.calls(), 2);
}

#[tokio::test]
async fn keepttl_serves_the_stored_ttl() {
    let s = Setup::new("cache {\n keepttl\n}", a_answer(30));
    let query = q("web.example.org.");
    s.ok(&query).await;
    s.advance(25);
    assert_eq!(ttls(&s.ok(&query).await), vec![30]);
    assert_eq!(s.calls(), 1);
}

#[tokio::test]
async fn every_record_gets_the_single_clamped_ttl() {
    let respond: Respond = Box::new(|query, _| {
        Ok(Answer {
            answers: vec![a_record(query.name, 300, 1), a_record(query.name, 2, 2)],
            additionals: vec![a_record(&name("glue.example.org."), 100, 3)],
            ..Answer::new(ResponseCode::NoError)
        })
    });
    let s = Setup::new("cache 60", respond);
    // 2 s is below the 5 s minimum.
    assert_eq!(ttls(&s.ok(&q("a.example.org.")).await), vec![5, 5, 5]);
    let capped: Respond = Box::new(|query, _| {
        Ok(Answer {
            answers: vec![a_record(query.name, 3000, 1)],
            ..Answer::new(ResponseCode::NoError)
        })
    });
    let s = Setup::new("cache 60", capped);
    assert_eq!(ttls(&s.ok(&q("a.example.org.")).await), vec![60]);
}

#[tokio::test]
async fn nxdomain_is_cached_for_the_soa_minimum() {
    let respond: Respond = Box::new(|_, _| {
        Ok(Answer {
            authorities: vec![soa(60, 10)],
            ..Answer::authoritative(ResponseCode::NXDomain)
        })
    });
    let s = Setup::new("cache", respond);
    let query = q("nosuch.example.org.");
    let first = s.ok(&query).await;
    assert_eq!(
        (first.rcode, ttls(&first)),
        (ResponseCode::NXDomain, vec![10])
    );
    s.advance(4);
    let hit = s.ok(&query).await;
    assert_eq!((hit.rcode, ttls(&hit)), (ResponseCode::NXDomain, vec![6]));
    assert_eq!(hit.authorities[0].record_type(), RecordType::SOA);
    assert_eq!(s.calls(), 1);
    s.advance(6);
    s.ok(&query).await;
    assert_eq!(s.calls(), 2);
}

#[tokio::test]
async fn other_errors_are_not_cached() {
    let respond: Respond = Box::new(|_, _| Ok(Answer::new(ResponseCode::Refused)));
    let s = Setup::new("cache", respond);
    let query = q("x.example.org.");
    assert_eq!(s.ok(&query).await.rcode, ResponseCode::Refused);
    assert_eq!(s.ok(&query).await.rcode, ResponseCode::Refused);
    assert_eq!(s.calls(), 2);
    let failing: Respond = Box::new(|_, _| Err(PluginError::NoNextPlugin));
    let s = Setup::new("cache", failing);
    assert!(s.ask(&query).await.is_err());
    assert!(s.ask(&query).await.is_err());
    assert_eq!(s.calls(), 2);
}

#[tokio::test]
async fn servfail_is_cached_for_the_servfail_duration() {
    let respond: Respond = Box::new(|_, _| Ok(Answer::new(ResponseCode::ServFail)));
    let s = Setup::new("cache {\n servfail 2s\n}", respond);
    let query = q("x.example.org.");
    s.ok(&query).await;
    s.advance(1);
    assert_eq!(s.ok(&query).await.rcode, ResponseCode::ServFail);
    assert_eq!(s.calls(), 1);
    s.advance(1);
    s.ok(&query).await;
    assert_eq!(s.calls(), 2);
}

#[tokio::test]
async fn a_hit_answers_in_the_askers_letter_case() {
    let s = Setup::new("cache", a_answer(30));
    s.ok(&q("Web.Example.ORG.")).await;
    let asker = name("wEB.eXAMPLE.org.");
    let hit = s.ok(&q("wEB.eXAMPLE.org.")).await;
    assert_eq!(s.calls(), 1);
    assert!(
        hit.answers[0].name.eq_case(&asker),
        "{}",
        hit.answers[0].name
    );
}

#[tokio::test]
async fn do_and_cd_bits_are_part_of_the_key() {
    let s = Setup::new("cache", a_answer(30));
    let plain = q("web.example.org.");
    let mut dnssec = q("web.example.org.");
    dnssec.edns = Some(EdnsInfo {
        udp_size: 1232,
        dnssec_ok: true,
    });
    let mut cd = q("web.example.org.");
    cd.checking_disabled = true;
    let mut edns_no_do = q("web.example.org.");
    edns_no_do.edns = Some(EdnsInfo {
        udp_size: 4096,
        dnssec_ok: false,
    });
    assert_eq!(last_octet(&s.ok(&plain).await), 1);
    assert_eq!(last_octet(&s.ok(&dnssec).await), 2);
    assert_eq!(last_octet(&s.ok(&cd).await), 3);
    // EDNS without DO shares the plain entry.
    assert_eq!(last_octet(&s.ok(&edns_no_do).await), 1);
    assert_eq!(last_octet(&s.ok(&dnssec).await), 2);
    assert_eq!(s.calls(), 3);
}

#[tokio::test]
async fn names_outside_the_zones_pass_through_untouched() {
    let s = Setup::new("cache 60 example.org", a_answer(0));
    let outside = q("web.example.net.");
    assert_eq!(ttls(&s.ok(&outside).await), vec![0]);
    s.ok(&outside).await;
    assert_eq!(s.calls(), 2);
    // Inside: TTL 0 becomes the 5 s minimum, and the answer is cached.
    let inside = q("web.example.org.");
    assert_eq!(ttls(&s.ok(&inside).await), vec![5]);
    s.ok(&inside).await;
    assert_eq!(s.calls(), 3);
}

#[tokio::test]
async fn disabled_zones_are_rewritten_but_not_stored() {
    let s = Setup::new(
        "cache 30 {\n disable success cluster.local\n disable denial cluster.local\n}",
        a_answer(0),
    );
    let cluster = q("web.ns.svc.cluster.local.");
    assert_eq!(ttls(&s.ok(&cluster).await), vec![5]);
    s.ok(&cluster).await;
    assert_eq!(s.calls(), 2);
    let other = q("web.example.org.");
    s.ok(&other).await;
    s.ok(&other).await;
    assert_eq!(s.calls(), 3);
}

#[tokio::test]
async fn concurrent_misses_make_one_backend_call() {
    let s = Setup::with_delay("cache", a_answer(30), Duration::from_millis(50));
    let query = q("web.example.org.");
    let answers = futures_util::future::join_all((0..50).map(|_| s.ask(&query))).await;
    assert_eq!(s.calls(), 1);
    for a in answers {
        assert_eq!(last_octet(&a.expect("answer")), 1);
    }
}

#[tokio::test]
async fn concurrent_misses_share_denials_and_uncacheable_answers_too() {
    let nx: Respond = Box::new(|_, _| {
        Ok(Answer {
            authorities: vec![soa(60, 60)],
            ..Answer::new(ResponseCode::NXDomain)
        })
    });
    let s = Setup::with_delay("cache", nx, Duration::from_millis(50));
    let query = q("nosuch.example.org.");
    let answers = futures_util::future::join_all((0..20).map(|_| s.ask(&query))).await;
    assert_eq!(s.calls(), 1);
    assert!(
        answers
            .iter()
            .all(|a| a.as_ref().is_ok_and(|a| a.rcode == ResponseCode::NXDomain))
    );
    // Errors reach every waiter, each with its own copy.
    let failing: Respond = Box::new(|_, _| {
        Err(PluginError::Failed {
            plugin: "forward",
            origin: Origin::Upstream,
            rcode: ResponseCode::ServFail,
            message: "no upstream".to_owned(),
        })
    });
    let s = Setup::with_delay("cache", failing, Duration::from_millis(50));
    let answers = futures_util::future::join_all((0..20).map(|_| s.ask(&query))).await;
    assert_eq!(s.calls(), 1);
    assert!(
        answers
            .iter()
            .all(|a| a.as_ref().is_err_and(|e| e.origin() == Origin::Upstream))
    );
}

#[tokio::test]
async fn popular_entries_are_prefetched_before_they_expire() {
    let s = Setup::new("cache {\n prefetch 2 1m 50%\n}", a_answer(10));
    let query = q("web.example.org.");
    s.ok(&query).await;
    // 5 s left of 10: at the threshold, but only one hit so far.
    s.advance(5);
    assert_eq!(last_octet(&s.ok(&query).await), 1);
    tokio::task::yield_now().await;
    assert_eq!(s.calls(), 1);
    // The second hit makes it popular: refreshed in the background, the stale copy answered.
    let hit = s.ok(&query).await;
    assert_eq!((last_octet(&hit), ttls(&hit)), (1, vec![5]));
    s.wait_calls(2).await;
    // The refreshed entry answers from now on, with a full TTL.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let a = s.ok(&query).await;
        if last_octet(&a) == 2 {
            assert_eq!(ttls(&a), vec![10]);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never refreshed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(s.calls(), 2);
}

#[tokio::test]
async fn unpopular_entries_are_not_prefetched() {
    let s = Setup::new("cache {\n prefetch 3 1m 50%\n}", a_answer(10));
    let query = q("web.example.org.");
    s.ok(&query).await;
    s.advance(6);
    s.ok(&query).await;
    s.ok(&query).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(s.calls(), 1);
}

#[tokio::test]
async fn serve_stale_immediate_answers_ttl_0_and_refreshes_in_the_background() {
    let s = Setup::new("cache {\n serve_stale 1m\n}", a_answer(10));
    let query = q("web.example.org.");
    s.ok(&query).await;
    s.advance(15);
    let stale = s.ok(&query).await;
    assert_eq!((last_octet(&stale), ttls(&stale)), (1, vec![0]));
    assert!(stale.authoritative);
    s.wait_calls(2).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while last_octet(&s.ok(&query).await) != 2 {
        assert!(tokio::time::Instant::now() < deadline, "never refreshed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(s.calls(), 2);
}

#[tokio::test]
async fn serve_stale_ends_after_its_duration() {
    let s = Setup::new("cache {\n serve_stale 1m\n}", a_answer(10));
    let query = q("web.example.org.");
    s.ok(&query).await;
    s.advance(10 + 61);
    let fresh = s.ok(&query).await;
    assert_eq!((last_octet(&fresh), ttls(&fresh)), (2, vec![10]));
}

#[tokio::test]
async fn serve_stale_verify_asks_first_and_serves_stale_only_on_failure() {
    // Call 1 answers, call 2 fails (SERVFAIL), call 3 answers.
    let respond: Respond = Box::new(|query, n| {
        if n == 2 {
            return Ok(Answer::new(ResponseCode::ServFail));
        }
        Ok(Answer {
            answers: vec![a_record(query.name, 10, u8::try_from(n).unwrap_or(255))],
            ..Answer::new(ResponseCode::NoError)
        })
    });
    let s = Setup::new("cache {\n serve_stale 1m verify\n}", respond);
    let query = q("web.example.org.");
    s.ok(&query).await;
    s.advance(12);
    let stale = s.ok(&query).await;
    assert_eq!((last_octet(&stale), ttls(&stale)), (1, vec![0]));
    assert_eq!(s.calls(), 2);
    let fresh = s.ok(&query).await;
    assert_eq!((last_octet(&fresh), ttls(&fresh)), (3, vec![10]));
    assert_eq!(s.calls(), 3);
    // Stored: the next query is a hit.
    assert_eq!(last_octet(&s.ok(&query).await), 3);
    assert_eq!(s.calls(), 3);
}

#[tokio::test]
async fn capacity_bounds_the_entries() {
    let s = Setup::new("cache {\n success 1024\n}", a_answer(60));
    for i in 0..2000 {
        s.ok(&q(&format!("n{i}.example.org."))).await;
    }
    let held = s.cache.inner.store.len(Kind::Success).await;
    assert!((1..=1024).contains(&held), "held {held}");
}

#[tokio::test]
async fn metrics_count_requests_hits_misses_and_entries() {
    let s = Setup::new("cache 30 metrics.test", a_answer(30));
    s.cache.start(&StartContext {
        listen_ips: vec![],
        self_addrs: vec!["127.0.0.1:5391".parse().expect("addr")],
        ..StartContext::default()
    });
    let query = q("web.metrics.test.");
    s.ok(&query).await;
    s.ok(&query).await;
    s.ok(&query).await;
    s.cache.inner.store.success.run_pending_tasks().await;
    let text = crate::metrics::render();
    for line in [
        "coredns_cache_requests_total{server=\"dns://:5391\",view=\"\",zones=\"metrics.test.\"} 3",
        "coredns_cache_misses_total{server=\"dns://:5391\",view=\"\",zones=\"metrics.test.\"} 1",
        "coredns_cache_hits_total{server=\"dns://:5391\",type=\"success\",view=\"\",zones=\"metrics.test.\"} 2",
        "coredns_cache_entries{server=\"dns://:5391\",type=\"success\",view=\"\",zones=\"metrics.test.\"} 1",
        "coredns_cache_entries{server=\"dns://:5391\",type=\"denial\",view=\"\",zones=\"metrics.test.\"} 0",
    ] {
        assert!(text.contains(line), "missing {line}\n{text}");
    }
    // A retired cache (reload, shutdown) takes its entries out of the gauge.
    drop(s);
    let text = crate::metrics::render();
    let line = "coredns_cache_entries{server=\"dns://:5391\",type=\"success\",view=\"\",zones=\"metrics.test.\"} 0";
    assert!(text.contains(line), "missing {line}\n{text}");
}

#[tokio::test]
async fn stale_answers_are_counted_and_verified_fresh_ones_are_misses() {
    // Call 2 fails (SERVFAIL); the others answer.
    let respond: Respond = Box::new(|query, n| {
        if n == 2 {
            return Ok(Answer::new(ResponseCode::ServFail));
        }
        Ok(Answer {
            answers: vec![a_record(query.name, 10, 1)],
            ..Answer::new(ResponseCode::NoError)
        })
    });
    let s = Setup::new("cache stale.test {\n serve_stale 1m verify\n}", respond);
    s.cache.start(&StartContext {
        listen_ips: vec![],
        self_addrs: vec!["127.0.0.1:5392".parse().expect("addr")],
        ..StartContext::default()
    });
    let query = q("web.stale.test.");
    s.ok(&query).await;
    s.advance(11);
    assert_eq!(ttls(&s.ok(&query).await), vec![0]);
    assert_eq!(ttls(&s.ok(&query).await), vec![10]);
    let text = crate::metrics::render();
    for line in [
        "coredns_cache_served_stale_total{server=\"dns://:5392\",view=\"\",zones=\"stale.test.\"} 1",
        "coredns_cache_misses_total{server=\"dns://:5392\",view=\"\",zones=\"stale.test.\"} 2",
        "coredns_cache_hits_total{server=\"dns://:5392\",type=\"success\",view=\"\",zones=\"stale.test.\"} 1",
        "coredns_cache_requests_total{server=\"dns://:5392\",view=\"\",zones=\"stale.test.\"} 3",
    ] {
        assert!(text.contains(line), "missing {line}\n{text}");
    }
}

/// Re-enters a chain the way the server does for internal queries (request size 0).
struct Reenter {
    chain: std::sync::OnceLock<Vec<Arc<dyn Plugin>>>,
}

#[async_trait]
impl Resolve for Reenter {
    async fn resolve(&self, name: Name, qtype: RecordType) -> Result<Answer, PluginError> {
        let Some(chain) = self.chain.get() else {
            return Err(PluginError::NoNextPlugin);
        };
        let mut query = query_for("unused.", "127.0.0.1:53", Transport::Udp, self);
        let lower = LowerName::new(&name);
        query.lower = &lower;
        query.name = &name;
        query.qtype = qtype;
        query.request_size = 0;
        Next {
            rest: chain,
            writer: None,
        }
        .run(&query)
        .await
    }
}

#[tokio::test]
async fn an_internal_query_nested_in_a_miss_on_the_same_key_does_not_wait_for_itself() {
    // The backend's first call asks the server (again through the cache) for the very same
    // question, as an ExternalName loop across server blocks would.
    let respond: Respond = Box::new(|query, n| {
        Ok(Answer {
            answers: vec![a_record(query.name, 30, u8::try_from(n).unwrap_or(255))],
            ..Answer::new(ResponseCode::NoError)
        })
    });
    struct Nesting {
        inner: Fake,
    }
    #[async_trait]
    impl Plugin for Nesting {
        fn name(&self) -> &'static str {
            "forward"
        }
        async fn serve(&self, query: &Query<'_>, next: Next<'_>) -> Result<Answer, PluginError> {
            if query.request_size != 0 {
                let _ = query
                    .resolver
                    .resolve(query.name.clone(), query.qtype)
                    .await;
            }
            self.inner.serve(query, next).await
        }
    }
    let config = parse_first("cache", |d| setup::parse(d, &[Name::root()])).expect("valid");
    let cache: Arc<dyn Plugin> = Arc::new(CachePlugin::new(config, Arc::new(FakeClock::default())));
    let backend = Arc::new(Nesting {
        inner: Fake {
            calls: AtomicUsize::new(0),
            respond,
            delay: Duration::ZERO,
        },
    });
    let chain: Vec<Arc<dyn Plugin>> = vec![cache, backend.clone()];
    let reenter = Reenter {
        chain: std::sync::OnceLock::new(),
    };
    let _ = reenter.chain.set(chain.clone());
    let query = query_for(
        "loop.example.org.",
        "127.0.0.1:40000",
        Transport::Udp,
        &reenter,
    );
    let answer = tokio::time::timeout(
        Duration::from_secs(3),
        Next {
            rest: &chain,
            writer: None,
        }
        .run(&query),
    )
    .await
    .expect("no self-wait")
    .expect("an answer");
    assert_eq!(answer.rcode, ResponseCode::NoError);
    assert_eq!(backend.inner.calls.load(Ordering::SeqCst), 2);
}
