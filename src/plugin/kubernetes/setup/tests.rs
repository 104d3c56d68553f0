//! Setup parser tables: CoreDNS's setup test vectors (spec §5) plus our own negatives.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::Name;

use super::*;
use crate::corefile::{Directive, Location, Token};
use crate::plugin::kubernetes::config::ApiConfig;

/// A tiny stand-in for the Corefile parser: `name args... [{` then block lines, then `}`.
/// Tokens are split on whitespace, with their line and column.
fn directive(text: &str) -> Directive {
    let file: Arc<str> = Arc::from("Corefile");
    let tokens = |line_no: usize, line: &str| -> Vec<Token> {
        let mut out = Vec::new();
        let mut col = 0;
        for word in line.split_whitespace() {
            let start = line[col..].find(word).map_or(col, |p| p + col);
            col = start + word.len();
            out.push(Token {
                text: word.to_owned(),
                location: Location {
                    file: file.clone(),
                    line: u32::try_from(line_no + 1).unwrap(),
                    column: u32::try_from(start + 1).unwrap(),
                },
            });
        }
        out
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (no, first) = lines.next().unwrap();
    let mut head = tokens(no, first);
    let has_block = head.last().is_some_and(|t| t.text == "{");
    if has_block {
        head.pop();
    }
    let name = head.remove(0);
    let mut block = Vec::new();
    if has_block {
        for (no, line) in lines {
            let mut toks = tokens(no, line);
            if toks.first().is_some_and(|t| t.text == "}") {
                break;
            }
            let name = toks.remove(0);
            block.push(Directive {
                name,
                args: toks,
                block: None,
            });
        }
    }
    Directive {
        name,
        args: head,
        block: has_block.then_some(block),
    }
}

fn block_zones() -> Vec<Name> {
    vec![Name::from_ascii("cluster.local.").unwrap()]
}

fn parse_text(text: &str) -> Result<Config, SetupError> {
    let d = directive(text);
    parse(
        &mut Dispenser::new(&d),
        &block_zones(),
        Path::new("/etc/coredns"),
    )
}

fn ok(text: &str) -> Config {
    match parse_text(text) {
        Ok(c) => c,
        Err(e) => panic!("{text}: {e}"),
    }
}

#[track_caller]
fn fails(text: &str, want: &str) {
    match parse_text(text) {
        Ok(c) => panic!("{text} parsed: {c:?}"),
        Err(e) => assert!(
            e.to_string().contains(want),
            "{text}: got '{e}', want '{want}'"
        ),
    }
}

fn names(zones: &[Name]) -> Vec<String> {
    zones.iter().map(Name::to_ascii).collect()
}

#[test]
fn zones_from_arguments_or_the_block() {
    assert_eq!(
        names(&ok("kubernetes coredns.local test.local").opts.zones),
        ["coredns.local.", "test.local."]
    );
    assert_eq!(names(&ok("kubernetes").opts.zones), ["cluster.local."]);
    assert_eq!(
        names(&ok("kubernetes Cluster.Local.").opts.zones),
        ["cluster.local."]
    );
    let c = ok("kubernetes cluster.local 10.0.0.0/15 ip6.arpa");
    assert_eq!(
        names(&c.opts.zones),
        [
            "cluster.local.",
            "0.10.in-addr.arpa.",
            "1.10.in-addr.arpa.",
            "ip6.arpa."
        ]
    );
    assert_eq!(c.opts.primary.to_ascii(), "cluster.local.");
    let c = ok("kubernetes in-addr.arpa cluster.local");
    assert_eq!(c.opts.primary.to_ascii(), "cluster.local.");
}

#[test]
fn at_least_one_forward_zone() {
    fails(
        "kubernetes in-addr.arpa ip6.arpa",
        "non-reverse zone name must be used",
    );
    fails(
        "kubernetes 10.0.0.0/8",
        "non-reverse zone name must be used",
    );
    fails("kubernetes 10.0.0.0/33", "is not a CIDR");
}

#[test]
fn defaults() {
    let c = ok("kubernetes");
    assert_eq!(c.opts.ttl, 5);
    assert_eq!(c.opts.pods, PodMode::Disabled);
    assert!(!c.opts.endpoint_pod_names && !c.opts.noendpoints && !c.opts.ignore_empty_service);
    assert_eq!(c.opts.namespaces, None);
    assert_eq!(c.fallthrough, None);
    assert_eq!(c.startup_timeout, Duration::from_secs(5));
    assert_eq!(c.manifests, None);
    assert_eq!(c.api, ApiConfig::default());
}

#[test]
fn namespaces_option() {
    let c = ok("kubernetes coredns.local {\n namespaces demo test\n}");
    let set = c.opts.namespaces.unwrap();
    assert_eq!(set.len(), 2);
    assert!(set.contains("demo") && set.contains("test"));
    fails(
        "kubernetes {\n namespaces\n}",
        "Corefile:2:13: plugin/kubernetes: missing argument, expected one or more namespaces",
    );
    fails(
        "kubernetes {\n namespaces demo\n namespace_labels istio-injection=enabled\n}",
        "namespaces and namespace_labels cannot both be set",
    );
}

#[test]
fn labels_option_takes_the_rest_of_the_line() {
    let c =
        ok("kubernetes {\n labels environment in (production, staging, qa),application=nginx\n}");
    assert_eq!(
        c.labels.unwrap().to_string(),
        "application=nginx,environment in (production,qa,staging)"
    );
    fails(
        "kubernetes {\n labels environment in production\n}",
        "unable to parse label selector",
    );
    fails(
        "kubernetes {\n labels\n}",
        "Corefile:2:9: plugin/kubernetes: missing argument, expected a label selector",
    );
    let c = ok("kubernetes {\n namespace_labels istio-injection=enabled\n}");
    assert_eq!(
        c.namespace_labels.unwrap().to_string(),
        "istio-injection=enabled"
    );
}

#[test]
fn pods_option() {
    assert_eq!(
        ok("kubernetes {\n pods insecure\n}").opts.pods,
        PodMode::Insecure
    );
    assert_eq!(
        ok("kubernetes {\n pods verified\n}").opts.pods,
        PodMode::Verified
    );
    assert_eq!(
        ok("kubernetes {\n pods disabled\n}").opts.pods,
        PodMode::Disabled
    );
    fails("kubernetes {\n pods giant_seed\n}", "wrong value for pods");
    fails(
        "kubernetes {\n pods\n}",
        "2:7: plugin/kubernetes: missing argument",
    );
    fails(
        "kubernetes {\n pods insecure verified\n}",
        "2:16: plugin/kubernetes: unexpected argument 'verified' after 'pods'",
    );
}

#[test]
fn flag_options_take_no_arguments() {
    let c = ok("kubernetes {\n endpoint_pod_names\n noendpoints\n}");
    assert!(c.opts.endpoint_pod_names && c.opts.noendpoints);
    fails(
        "kubernetes {\n noendpoints ixnay on the endpointsay\n}",
        "2:14: plugin/kubernetes: unexpected argument 'ixnay' after 'noendpoints'",
    );
    fails(
        "kubernetes {\n endpoint_pod_names yes\n}",
        "unexpected argument 'yes' after 'endpoint_pod_names'",
    );
}

#[test]
fn ttl_option_range() {
    assert_eq!(ok("kubernetes {\n ttl 56\n}").opts.ttl, 56);
    assert_eq!(ok("kubernetes {\n ttl 0\n}").opts.ttl, 0);
    assert_eq!(ok("kubernetes {\n ttl 3600\n}").opts.ttl, 3600);
    fails("kubernetes {\n ttl -1\n}", "ttl must be in range [0, 3600]");
    fails(
        "kubernetes {\n ttl 3601\n}",
        "ttl must be in range [0, 3600]",
    );
    fails("kubernetes {\n ttl five\n}", "ttl must be in range");
    fails(
        "kubernetes {\n ttl\n}",
        "2:6: plugin/kubernetes: missing argument",
    );
}

#[test]
fn fallthrough_option() {
    let c = ok("kubernetes {\n fallthrough ip6.arpa inaddr.arpa foo.com\n}");
    assert_eq!(
        names(&c.fallthrough.unwrap()),
        ["ip6.arpa.", "inaddr.arpa.", "foo.com."]
    );
    assert_eq!(
        ok("kubernetes {\n fallthrough\n}").fallthrough,
        Some(vec![])
    );
}

#[test]
fn ignore_option() {
    assert!(
        ok("kubernetes {\n ignore empty_service\n}")
            .opts
            .ignore_empty_service
    );
    assert!(
        ok("kubernetes {\n ignore empty_service extra args\n}")
            .opts
            .ignore_empty_service
    );
    assert!(!ok("kubernetes {\n ignore\n}").opts.ignore_empty_service);
    fails(
        "kubernetes {\n ignore full_service\n}",
        "unable to parse ignore value: 'full_service'",
    );
}

#[test]
fn startup_timeout_option() {
    assert_eq!(
        ok("kubernetes {\n startup_timeout 1s\n}").startup_timeout,
        Duration::from_secs(1)
    );
    assert_eq!(
        ok("kubernetes {\n startup_timeout 1m30s\n}").startup_timeout,
        Duration::from_secs(90)
    );
    assert_eq!(
        ok("kubernetes {\n startup_timeout 500ms\n}").startup_timeout,
        Duration::from_millis(500)
    );
    fails("kubernetes {\n startup_timeout 1\n}", "invalid duration");
    fails("kubernetes {\n startup_timeout soon\n}", "invalid duration");
}

#[test]
fn api_client_options_are_validated() {
    let c = ok(
        "kubernetes {\n endpoint http://localhost:9090 http://other:9090\n tls cert key cacert\n kubeconfig kc ctx\n apiserver_qps 12.5\n apiserver_burst 20\n apiserver_max_inflight 0\n}",
    );
    assert_eq!(c.api.endpoint.as_deref(), Some("http://localhost:9090"));
    assert_eq!(c.api.tls.unwrap().0, Path::new("/etc/coredns/cert"));
    assert_eq!(
        c.api.kubeconfig.unwrap(),
        (
            Path::new("/etc/coredns/kc").to_path_buf(),
            Some("ctx".to_owned())
        )
    );
    assert_eq!(
        (c.api.qps, c.api.burst, c.api.max_inflight),
        (Some(12.5), Some(20), Some(0))
    );
    fails(
        "kubernetes {\n endpoint\n}",
        "2:11: plugin/kubernetes: missing argument",
    );
    fails(
        "kubernetes {\n tls cert key\n}",
        "tls needs exactly three arguments",
    );
    fails(
        "kubernetes {\n kubeconfig\n}",
        "kubeconfig needs FILE [CONTEXT]",
    );
    fails(
        "kubernetes {\n kubeconfig a b c\n}",
        "kubeconfig needs FILE [CONTEXT]",
    );
    fails(
        "kubernetes {\n apiserver_qps -1\n}",
        "apiserver_qps must be a number >= 0",
    );
    fails(
        "kubernetes {\n apiserver_burst -5\n}",
        "apiserver_burst must be an integer >= 0",
    );
    fails(
        "kubernetes {\n apiserver_max_inflight x\n}",
        "apiserver_max_inflight must be an integer >= 0",
    );
}

#[test]
fn manifests_paths_are_relative_to_the_corefile() {
    let c = ok("kubernetes {\n manifests cluster.yaml /abs/dir\n}");
    let (location, paths) = c.manifests.unwrap();
    assert_eq!(
        paths,
        [
            Path::new("/etc/coredns/cluster.yaml"),
            Path::new("/abs/dir")
        ]
    );
    assert_eq!((location.line, location.column), (2, 2));
    fails(
        "kubernetes {\n manifests\n}",
        "2:12: plugin/kubernetes: missing argument",
    );
}

#[test]
fn unsupported_and_unknown_options_fail_with_location() {
    fails(
        "kubernetes {\n multicluster clusterset.local\n}",
        "'multicluster' is not supported",
    );
    fails("kubernetes {\n zonal\n}", "'zonal' is not supported");
    let e = parse_text("kubernetes {\n ttl 5\n   upstream 8.8.8.8\n}").unwrap_err();
    assert_eq!(e.message, "unknown property 'upstream'");
    assert_eq!(
        e.to_string(),
        "Corefile:3:4: plugin/kubernetes: unknown property 'upstream'"
    );
}

fn block() -> BlockSetup {
    BlockSetup {
        zones: block_zones(),
        base_dir: "/nonexistent".into(),
        ..BlockSetup::default()
    }
}

#[test]
fn setup_without_manifests_uses_the_api_source_unsynced() {
    let d = directive("kubernetes");
    let mut b = block();
    setup(&mut Dispenser::new(&d), &mut b).unwrap();
    assert_eq!(b.plugins.len(), 1);
    assert_eq!(b.plugins[0].name(), "kubernetes");
    // Not ready until the API has been listed; the plugin is active (nothing reported).
    assert_eq!(b.plugins[0].ready(), Some(false));
    assert!(b.inactive.is_empty(), "{:?}", b.inactive);
}

#[test]
fn api_client_options_are_checked_at_setup() {
    let d = directive("kubernetes {\n    kubeconfig missing.yaml\n}");
    let e = setup(&mut Dispenser::new(&d), &mut block()).err().unwrap();
    assert!(
        e.message.contains("kubeconfig /nonexistent/missing.yaml"),
        "{}",
        e.message
    );
    let d = directive("kubernetes {\n    endpoint 127.0.0.1\n}");
    let e = setup(&mut Dispenser::new(&d), &mut block()).err().unwrap();
    assert!(e.message.contains("endpoint"), "{}", e.message);
    // kubeconfig wins over endpoint (CoreDNS), and its errors are the ones reported.
    let d = directive("kubernetes {\n    endpoint http://127.0.0.1:1\n    kubeconfig k.yaml\n}");
    let e = setup(&mut Dispenser::new(&d), &mut block()).err().unwrap();
    assert!(e.message.contains("kubeconfig"), "{}", e.message);
    let d = directive("kubernetes {\n    endpoint http://127.0.0.1:1\n}");
    assert!(setup(&mut Dispenser::new(&d), &mut block()).is_ok());
}

#[test]
fn once_per_block_is_the_registry_s_rule() {
    // The registry rejects a second `kubernetes` in a block before this setup runs.
    let cf = crate::corefile::parse_str_with_env(
        "cluster.local {\n  kubernetes\n  kubernetes\n}\n",
        "Corefile",
        Path::new("/nonexistent"),
        &|_| None,
    )
    .unwrap();
    let e = crate::config::Config::build(&cf, "Corefile", Path::new("/nonexistent"), 53)
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "Corefile:3:3: plugin/kubernetes: this plugin can only be used once per Server Block"
    );
}

/// Every property, through the real Corefile parser (nested blocks included): the snippet is
/// the body of `.:53 { ... }`, line 2 onwards.
#[test]
fn every_property_and_every_misplaced_token() {
    let cases: &[(&str, Result<(), &str>)] = &[
        ("kubernetes cluster.local 10.0.0.0/24", Ok(())),
        ("kubernetes {\n namespaces a b\n}", Ok(())),
        ("kubernetes {\n namespace_labels a=b\n}", Ok(())),
        ("kubernetes {\n labels a=b\n}", Ok(())),
        ("kubernetes {\n pods verified\n}", Ok(())),
        ("kubernetes {\n endpoint_pod_names\n}", Ok(())),
        ("kubernetes {\n ttl 30\n}", Ok(())),
        ("kubernetes {\n noendpoints\n}", Ok(())),
        ("kubernetes {\n fallthrough in-addr.arpa\n}", Ok(())),
        ("kubernetes {\n ignore empty_service\n}", Ok(())),
        ("kubernetes {\n startup_timeout 2s\n}", Ok(())),
        ("kubernetes {\n endpoint https://k:6443\n}", Ok(())),
        ("kubernetes {\n tls c k ca\n}", Ok(())),
        ("kubernetes {\n kubeconfig kc ctx\n}", Ok(())),
        ("kubernetes {\n apiserver_qps 5\n}", Ok(())),
        ("kubernetes {\n apiserver_burst 10\n}", Ok(())),
        ("kubernetes {\n apiserver_max_inflight 10\n}", Ok(())),
        ("kubernetes {\n manifests a.yaml\n}", Ok(())),
        (
            "kubernetes {\n ttl 30 {\n  bogus\n }\n}",
            Err("Corefile:4:3: plugin/kubernetes: unexpected option block, 'ttl' takes none"),
        ),
        (
            "kubernetes {\n noendpoints {\n }\n}",
            Err(
                "Corefile:3:2: plugin/kubernetes: unexpected option block, 'noendpoints' takes none",
            ),
        ),
        (
            "kubernetes {\n fallthrough {\n  x\n }\n}",
            Err(
                "Corefile:4:3: plugin/kubernetes: unexpected option block, 'fallthrough' takes none",
            ),
        ),
        (
            "kubernetes {\n startup_timeout 1s 2s\n}",
            Err(
                "Corefile:3:21: plugin/kubernetes: unexpected argument '2s' after 'startup_timeout'",
            ),
        ),
        (
            "kubernetes {\n startup_timeout\n}",
            Err("Corefile:3:18: plugin/kubernetes: missing argument, expected a duration"),
        ),
        (
            "kubernetes {\n apiserver_burst 1 2\n}",
            Err("Corefile:3:20: plugin/kubernetes: unexpected argument '2'"),
        ),
        (
            "kubernetes {\n bogus\n}",
            Err("Corefile:3:2: plugin/kubernetes: unknown property 'bogus'"),
        ),
    ];
    for (text, want) in cases {
        let got = crate::plugin::test_support::parse_first(text, |d| {
            parse(d, &block_zones(), Path::new("/etc/coredns"))
        });
        match (got, want) {
            (Ok(_), Ok(())) => {}
            (Err(e), Err(w)) => assert!(e.starts_with(w), "{text:?}: got '{e}', want '{w}'"),
            (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn setup_manifest_load_error_points_at_the_manifests_token() {
    let d = directive("kubernetes {\n  manifests missing.yaml\n}");
    let mut b = block();
    let e = setup(&mut Dispenser::new(&d), &mut b).err().unwrap();
    assert_eq!((e.location.line, e.location.column), (2, 3));
    assert!(e.message.starts_with("manifests: "), "{e}");
    assert!(b.plugins.is_empty());
}
