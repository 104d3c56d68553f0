//! Body of the `manifests` fuzz target, shared with `tests/fuzz_regressions.rs`: arbitrary bytes
//! as a `manifests` file through the loader (YAML/JSON documents, `List`s, conversion into the
//! DNS model) and into the cluster index: must never panic, whatever the text.

use std::path::{Path, PathBuf};

/// One execution: the number of objects loaded, or the loader's error.
pub fn run(data: &[u8]) -> Result<usize, String> {
    clusterdns::kubernetes_manifests_fuzz::load(data)
}

/// The repository root: this file is built from `fuzz/` (the fuzz crate) and from the root (the
/// regression tests).
fn repo() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    if here.join("corefile").is_dir() {
        here.to_path_buf()
    } else {
        here.join("..")
    }
}

/// The seed corpus, named `seed-*`, with whether each must load: the repository's YAML files
/// (the demo cluster, the deploy manifests, whose kinds are ignored), the demo cluster's sections
/// one by one, and small files in the loader's other shapes (JSON, `List`, and files it rejects).
pub fn seeds() -> Vec<(String, Vec<u8>, bool)> {
    let root = repo();
    let read = |p: &str| std::fs::read(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let mut out = vec![
        (
            "seed-demo-cluster".to_owned(),
            read("corefile/demo-cluster.yaml"),
            true,
        ),
        (
            "seed-deploy-clusterdns".to_owned(),
            read("deploy/clusterdns.yaml"),
            true,
        ),
        (
            "seed-deploy-autoscaler".to_owned(),
            read("deploy/dns-autoscaler.yaml"),
            true,
        ),
    ];
    let demo = String::from_utf8(read("corefile/demo-cluster.yaml")).expect("UTF-8");
    let mut parts = demo.split("\n# -----");
    let namespaces = parts.next().unwrap_or_default().to_owned();
    for (i, part) in parts.enumerate() {
        out.push((
            format!("seed-demo-part{i}"),
            format!("# -----{part}").into_bytes(),
            true,
        ));
    }
    out.push(("seed-namespaces".to_owned(), namespaces.into_bytes(), true));
    let small: [(&str, &str, bool); 6] = [
        (
            "json-service",
            r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"a","namespace":"n"},"spec":{"clusterIP":"10.96.0.5","ports":[{"port":53,"protocol":"UDP"}]}}"#,
            true,
        ),
        (
            "service-list",
            "apiVersion: v1\nkind: ServiceList\nitems:\n- apiVersion: v1\n  kind: Service\n  \
             metadata: {name: b, namespace: n}\n  spec:\n    type: ExternalName\n    \
             externalName: example.com\n",
            true,
        ),
        (
            "pod-dual",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: n}\nspec: {}\nstatus:\n  \
             phase: Running\n  podIP: 10.244.0.4\n  podIPs: [{ip: 10.244.0.4}, {ip: 'fd00::4'}]\n",
            true,
        ),
        (
            "duplicate",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n---\napiVersion: v1\n\
             kind: Namespace\nmetadata: {name: n}\n",
            false,
        ),
        ("not-an-object", "- just\n- a list\n", false),
        ("empty-documents", "---\n---\n# nothing\n", true),
    ];
    for (name, text, loads) in small {
        out.push((format!("seed-{name}"), text.as_bytes().to_vec(), loads));
    }
    out
}
