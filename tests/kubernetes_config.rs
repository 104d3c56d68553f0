//! Corefiles shipped with clusterdns load: the kubeadm default unchanged (its not-yet-active
//! plugins reported), every file `corefile/Corefile*`, and every ```corefile block of the README
//! files (in a tempdir holding the manifests they name).

mod common;

use std::path::{Path, PathBuf};

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
    // Every directive that parses but does not act yet is reported, with its location.
    let mut inactive: Vec<&str> = server.inactive.iter().map(|i| i.plugin).collect();
    inactive.sort_unstable();
    inactive.dedup();
    for plugin in [
        "forward",
        "cache",
        "health",
        "prometheus",
        "loop",
        "reload",
        "loadbalance",
    ] {
        assert!(
            inactive.contains(&plugin),
            "{plugin} not reported: {inactive:?}"
        );
    }
    // kubernetes is active: without `endpoint` or `kubeconfig` it uses the in-cluster service
    // account, resolved when the server starts (so the file loads anywhere).
    assert!(
        !inactive.contains(&"kubernetes"),
        "kubernetes reported inactive: {inactive:?}"
    );
}

/// ```corefile blocks of a Markdown text.
fn corefile_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        let fence = line.trim_start();
        match current.as_mut() {
            None if fence.starts_with("```corefile") => current = Some(String::new()),
            None => {}
            Some(_) if fence.starts_with("```") => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}

fn readmes() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.file_name().is_some_and(|n| n == "README.md") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    let top = Path::new(ROOT).join("README.md");
    if top.exists() {
        out.push(top);
    }
    walk(&Path::new(ROOT).join("src"), &mut out);
    out.sort();
    out
}

/// Creates, in `dir`, every manifest path a Corefile names (`manifests A B/ ...`): files get a
/// copy of the demo cluster, paths ending in `/` become directories holding one. Files named by
/// `kubeconfig PATH [CONTEXT]` get a minimal kubeconfig, those of `tls CERT KEY CACERT` a
/// placeholder (setup only checks they can be read).
fn provide_manifests(corefile: &str, dir: &Path) {
    let demo = std::fs::read_to_string(common::demo_cluster_path()).expect("demo cluster");
    for line in corefile.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("kubeconfig") => {
                if let Some(path) = words.next() {
                    let context = words.next().unwrap_or("default");
                    let kubeconfig = format!(
                        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n\
                         users:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: {context}\n  context:\n    cluster: c\n    user: u\n\
                         current-context: {context}\n"
                    );
                    common::write_file(dir, path, &kubeconfig);
                }
                continue;
            }
            Some("tls") => {
                for path in words {
                    common::write_file(dir, path, "placeholder\n");
                }
                continue;
            }
            Some("manifests") => {}
            _ => continue,
        }
        for path in words {
            if let Some(sub) = path.strip_suffix('/') {
                common::write_file(dir, &format!("{sub}/cluster.yaml"), &demo);
            } else {
                common::write_file(dir, path, &demo);
            }
        }
    }
}

#[test]
fn readme_corefile_blocks_validate() {
    let mut checked = 0;
    for readme in readmes() {
        let text = std::fs::read_to_string(&readme).expect("README readable");
        for (i, block) in corefile_blocks(&text).iter().enumerate() {
            let dir = tempfile::tempdir().expect("tempdir");
            provide_manifests(block, dir.path());
            let name = format!("{}#{}", readme.display(), i + 1);
            if let Err(e) = clusterdns::config_from_str(block, &name, dir.path(), 53) {
                panic!("{name} does not validate: {e}\n{block}");
            }
            checked += 1;
        }
    }
    // The kubernetes README alone has two examples.
    assert!(checked >= 2, "only {checked} corefile blocks found");
}

#[test]
fn shipped_corefiles_load() {
    let mut checked = 0;
    let entries = std::fs::read_dir(Path::new(ROOT).join("corefile")).expect("corefile/");
    for entry in entries.flatten() {
        let path = entry.path();
        if !path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("Corefile"))
        {
            continue;
        }
        if let Err(e) = clusterdns::load_config(&path, 53) {
            panic!("{}: {e}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 2, "only {checked} Corefiles found");
}

#[test]
fn corefile_block_extraction() {
    let md = "text\n```corefile\na {\n}\n```\n```text\nno\n```\n  ```corefile\nb\n  ```\n";
    assert_eq!(
        corefile_blocks(md),
        vec!["a {\n}\n".to_owned(), "b\n".to_owned()]
    );
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
