//! The kubeadm default Corefile loads unchanged, and kubernetes setup errors carry their Corefile
//! location. (Every other shipped Corefile and README example: tests/doc_examples.rs.)

mod common;

use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The spec's kubeadm Corefile (§11.1), used if `corefile/Corefile.kubeadm` is missing.
const KUBEADM: &str = ".:53 {\n    errors\n    health {\n       lameduck 5s\n    }\n    ready\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n       pods insecure\n       fallthrough in-addr.arpa ip6.arpa\n       ttl 30\n    }\n    prometheus :9153\n    forward . /etc/resolv.conf {\n       max_concurrent 1000\n    }\n    cache 30 {\n       disable success cluster.local\n       disable denial cluster.local\n    }\n    loop\n    reload\n    loadbalance\n}\n";

#[test]
fn kubeadm_corefile_loads_unchanged_and_reports_inactive_plugins() {
    let shipped = Path::new(ROOT).join("corefile/Corefile.kubeadm");
    let (dir, path) = if shipped.exists() {
        (None, shipped)
    } else {
        let dir = common::corefile_dir(KUBEADM);
        let path = dir.path().join("Corefile");
        (Some(dir), path)
    };
    let config = match clusterdns::load_config(&path, 53) {
        Ok(c) => c,
        Err(e) => panic!("{}: {e}", path.display()),
    };
    drop(dir);
    assert_eq!(config.servers.len(), 1);
    let server = &config.servers[0];
    assert_eq!(server.keys.len(), 1);
    assert_eq!(server.keys[0].zone.to_string(), ".");
    assert_eq!(server.keys[0].port, 53);
    let chain: Vec<&str> = server.chain.names().collect();
    assert!(chain.contains(&"kubernetes"), "{chain:?}");
    for active in ["loop", "forward"] {
        assert!(
            chain.contains(&active),
            "{active} not in the chain: {chain:?}"
        );
    }
    // Every directive that parses but does not act yet is reported, with its location.
    let mut inactive: Vec<&str> = server.inactive.iter().map(|i| i.plugin).collect();
    inactive.sort_unstable();
    inactive.dedup();
    // Every directive of the kubeadm Corefile works in this build: none is reported inactive
    // (kubernetes uses the in-cluster service account, resolved when the server starts).
    assert!(inactive.is_empty(), "{inactive:?}");
    // `reload`: the kubeadm Corefile's bare `reload` polls every 30s ± 15s.
    let reload = clusterdns::lifecycle::reload::schedule(&config).expect("reload configured");
    assert_eq!(reload.interval, std::time::Duration::from_secs(30));
    assert_eq!(reload.jitter, std::time::Duration::from_secs(15));
}

#[test]
fn kubernetes_setup_errors_name_the_corefile_location() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            ". {\n    kubernetes cluster.local\n    kubernetes example.org\n}\n",
            "Corefile:3:",
            "only be used once per Server Block",
        ),
        (
            ". {\n    kubernetes cluster.local {\n        bogus 1\n    }\n}\n",
            "Corefile:3:",
            "unknown property 'bogus'",
        ),
        (
            ". {\n    kubernetes in-addr.arpa\n}\n",
            "Corefile:2:",
            "non-reverse zone name must be used",
        ),
        (
            ". {\n    kubernetes cluster.local {\n        ttl 3601\n    }\n}\n",
            "Corefile:3:",
            "ttl",
        ),
        (
            ". {\n    kubernetes cluster.local {\n        pods giant_seed\n    }\n}\n",
            "Corefile:3:",
            "wrong value for pods",
        ),
        (
            ". {\n    kubernetes cluster.local {\n        namespaces a\n        namespace_labels x=y\n    }\n}\n",
            "Corefile:2:",
            "namespaces and namespace_labels cannot both be set",
        ),
        (
            ". {\n    kubernetes cluster.local {\n        ignore everything\n    }\n}\n",
            "Corefile:3:",
            "unable to parse ignore value",
        ),
        (
            ". {\n    kubernetes cluster.local {\n        labels a in (b\n    }\n}\n",
            "Corefile:3:",
            "plugin/kubernetes",
        ),
    ];
    for (text, at, message) in cases {
        match clusterdns::config_from_str(text, "Corefile", dir.path(), 53) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => {
                let e = e.to_string();
                assert!(e.contains(at) && e.contains(message), "{e}\n{text}");
            }
        }
    }
}
