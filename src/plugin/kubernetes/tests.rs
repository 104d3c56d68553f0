//! Plugin glue: zone matching, fallthrough, the not-synced rule, ExternalName resolution through
//! the server, readiness and own addresses.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{DNSClass, LowerName, RData, Record, RecordType};

use super::*;
use crate::plugin::kubernetes::config::ApiConfig;
use crate::plugin::kubernetes::lookup::PodMode;
use crate::plugin::kubernetes::model::{Namespace, Object, Service, ServiceKind};
use crate::plugin::{Chain, Resolve, Transport};

/// The next plugin: answers NOTIMP so tests can tell it ran.
struct Marker;

#[async_trait]
impl Plugin for Marker {
    fn name(&self) -> &'static str {
        "forward"
    }
    async fn serve(&self, _query: &Query<'_>, _next: Next<'_>) -> Result<Answer, PluginError> {
        Ok(Answer::new(ResponseCode::NotImp))
    }
}

/// What the server answers for an ExternalName target; records the questions asked.
struct FakeResolver {
    reply: fn() -> Result<Answer, PluginError>,
    asked: Mutex<Vec<(Name, RecordType)>>,
}

#[async_trait]
impl Resolve for FakeResolver {
    async fn resolve(&self, name: Name, qtype: RecordType) -> Result<Answer, PluginError> {
        self.asked.lock().unwrap().push((name, qtype));
        (self.reply)()
    }
}

fn upstream_a() -> Result<Answer, PluginError> {
    let mut a = Answer::new(ResponseCode::NoError);
    a.answers.push(Record::from_rdata(
        Name::from_ascii("example.org.").unwrap(),
        300,
        RData::A(A("93.184.216.34".parse().unwrap())),
    ));
    Ok(a)
}

fn upstream_nxdomain() -> Result<Answer, PluginError> {
    Ok(Answer::new(ResponseCode::NXDomain))
}

fn upstream_error() -> Result<Answer, PluginError> {
    Err(PluginError::NoNextPlugin)
}

fn config(fallthrough: Option<Vec<&str>>) -> Config {
    let zones = ["cluster.local.", "in-addr.arpa."]
        .iter()
        .map(|z| Name::from_ascii(z).unwrap())
        .collect();
    let mut opts = Options::new(zones);
    opts.pods = PodMode::Disabled;
    Config {
        opts,
        fallthrough: fallthrough
            .map(|zs| zs.iter().map(|z| Name::from_ascii(z).unwrap()).collect()),
        labels: None,
        namespace_labels: None,
        startup_timeout: Duration::from_secs(5),
        api: ApiConfig::default(),
        manifests: None,
    }
}

fn objects() -> Vec<Object> {
    vec![
        Object::Namespace(Namespace { name: "ns".into() }),
        Object::Service(Service {
            namespace: "ns".into(),
            name: "svc".into(),
            kind: ServiceKind::ClusterIp(vec!["10.0.0.1".parse().unwrap()]),
            ports: vec![],
        }),
        Object::Service(Service {
            namespace: "ns".into(),
            name: "ext".into(),
            kind: ServiceKind::ExternalName(Some(Name::from_ascii("example.org.").unwrap())),
            ports: vec![],
        }),
    ]
}

struct Setup {
    chain: Chain,
    store: Arc<Store>,
    plugin: Arc<Kubernetes>,
}

fn setup(fallthrough: Option<Vec<&str>>, synced: bool) -> Setup {
    let store = Arc::new(Store::new());
    store.replace_at(objects(), 1000);
    store.set_synced(synced);
    let plugin = Arc::new(Kubernetes::new(
        config(fallthrough),
        Arc::clone(&store),
        None,
        Duration::from_secs(1),
    ));
    let chain = Chain::new(vec![Arc::new(Marker), plugin.clone() as Arc<dyn Plugin>]);
    Setup {
        chain,
        store,
        plugin,
    }
}

async fn ask(chain: &Chain, resolver: &FakeResolver, name: &str, qtype: RecordType) -> Answer {
    let name = Name::from_ascii(name).unwrap();
    let lower = LowerName::new(&name);
    let query = Query {
        lower: &lower,
        name: &name,
        qtype,
        qclass: DNSClass::IN,
        id: 1,
        recursion_desired: true,
        checking_disabled: false,
        edns: None,
        src: SocketAddr::from(([127, 0, 0, 1], 5353)),
        transport: Transport::Udp,
        request_size: 0,
        reply_size: crate::plugin::ReplySize::unsent(),
        resolver,
    };
    chain.run(&query).await.unwrap()
}

fn resolver(reply: fn() -> Result<Answer, PluginError>) -> FakeResolver {
    FakeResolver {
        reply,
        asked: Mutex::new(Vec::new()),
    }
}

fn soa_only(answer: &Answer) -> bool {
    answer.answers.is_empty()
        && answer.authorities.len() == 1
        && answer.authorities[0].record_type() == RecordType::SOA
        && answer.authoritative
        && !answer.recursion_available
}

#[tokio::test]
async fn names_outside_the_zones_go_to_the_next_plugin() {
    let s = setup(None, true);
    let r = resolver(upstream_a);
    assert_eq!(
        ask(&s.chain, &r, "example.org.", RecordType::A).await.rcode,
        ResponseCode::NotImp
    );
}

#[tokio::test]
async fn synced_name_error_is_nxdomain() {
    let s = setup(None, true);
    let r = resolver(upstream_a);
    let a = ask(&s.chain, &r, "nope.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(a.rcode, ResponseCode::NXDomain);
    assert!(soa_only(&a));
}

#[tokio::test]
async fn not_synced_turns_name_errors_into_servfail_but_answers_known_data() {
    let s = setup(None, false);
    let r = resolver(upstream_a);
    let a = ask(&s.chain, &r, "nope.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(a.rcode, ResponseCode::ServFail);
    assert!(soa_only(&a), "{a:?}");
    let a = ask(&s.chain, &r, "svc.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(a.rcode, ResponseCode::NoError);
    assert_eq!(a.answers.len(), 1);
    // NODATA stays NODATA.
    let a = ask(&s.chain, &r, "svc.ns.svc.cluster.local.", RecordType::AAAA).await;
    assert_eq!(a.rcode, ResponseCode::NoError);
    assert!(soa_only(&a));
    s.store.set_synced(true);
    let a = ask(&s.chain, &r, "nope.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(a.rcode, ResponseCode::NXDomain);
}

#[tokio::test]
async fn fallthrough_wins_over_not_synced_and_only_for_its_zones() {
    let s = setup(Some(vec!["in-addr.arpa."]), false);
    let r = resolver(upstream_a);
    let a = ask(&s.chain, &r, "9.9.9.9.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(a.rcode, ResponseCode::NotImp, "handed to the next plugin");
    let a = ask(&s.chain, &r, "nope.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(a.rcode, ResponseCode::ServFail);
    // Found data never falls through.
    let a = ask(&s.chain, &r, "1.0.0.10.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(a.rcode, ResponseCode::NoError);
    assert_eq!(a.answers.len(), 1);
}

#[tokio::test]
async fn fallthrough_without_zones_covers_everything_but_not_nodata() {
    let s = setup(Some(vec![]), true);
    let r = resolver(upstream_a);
    let a = ask(&s.chain, &r, "nope.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(a.rcode, ResponseCode::NotImp);
    let a = ask(&s.chain, &r, "svc.ns.svc.cluster.local.", RecordType::AAAA).await;
    assert_eq!(a.rcode, ResponseCode::NoError);
}

#[tokio::test]
async fn external_name_target_is_resolved_through_the_server() {
    let s = setup(None, true);
    let r = resolver(upstream_a);
    let a = ask(&s.chain, &r, "EXT.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(a.rcode, ResponseCode::NoError);
    assert!(a.authoritative);
    let lines: Vec<String> = a.answers.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "EXT.ns.svc.cluster.local. 5 IN CNAME example.org.",
            "example.org. 300 IN A 93.184.216.34"
        ]
    );
    assert_eq!(
        *r.asked.lock().unwrap(),
        [(Name::from_ascii("example.org.").unwrap(), RecordType::A)]
    );
}

#[tokio::test]
async fn external_name_upstream_nxdomain_is_noerror_with_cname() {
    let s = setup(None, true);
    let r = resolver(upstream_nxdomain);
    let a = ask(&s.chain, &r, "ext.ns.svc.cluster.local.", RecordType::AAAA).await;
    assert_eq!(a.rcode, ResponseCode::NoError);
    let lines: Vec<String> = a.answers.iter().map(ToString::to_string).collect();
    assert_eq!(lines, ["ext.ns.svc.cluster.local. 5 IN CNAME example.org."]);
}

#[tokio::test]
async fn external_name_upstream_error_is_the_cname_alone() {
    let s = setup(None, true);
    let r = resolver(upstream_error);
    let a = ask(&s.chain, &r, "ext.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(a.rcode, ResponseCode::NoError);
    let lines: Vec<String> = a.answers.iter().map(ToString::to_string).collect();
    assert_eq!(lines, ["ext.ns.svc.cluster.local. 5 IN CNAME example.org."]);
    assert!(a.authorities.is_empty(), "{a:?}");
}

#[test]
fn ready_follows_the_store() {
    let s = setup(None, false);
    assert_eq!(s.plugin.ready(), Some(false));
    s.store.set_synced(true);
    assert_eq!(s.plugin.ready(), Some(true));
}

#[tokio::test]
async fn start_learns_own_non_loopback_addresses_for_ns() {
    let s = setup(None, true);
    let ips: Vec<IpAddr> = ["127.0.0.1", "::1", "0.0.0.0", "192.0.2.53"]
        .iter()
        .map(|i| i.parse().unwrap())
        .collect();
    let tasks = s.plugin.start(&StartContext {
        listen_ips: ips,
        self_addrs: Vec::new(),
        ..StartContext::default()
    });
    assert!(tasks.is_empty(), "no source, no background task");
    let r = resolver(upstream_a);
    let a = ask(&s.chain, &r, "cluster.local.", RecordType::NS).await;
    let lines: Vec<String> = a
        .answers
        .iter()
        .chain(&a.additionals)
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            "cluster.local. 5 IN NS ns.dns.cluster.local.",
            "ns.dns.cluster.local. 5 IN A 192.0.2.53"
        ]
    );
}
