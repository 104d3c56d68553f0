//! What deploy/*.yaml promises about privileges, checked on the files themselves (issue 13): the
//! pod runs as a non-root user without privilege escalation, on a read-only root filesystem,
//! with every capability dropped but NET_BIND_SERVICE; the ServiceAccount it runs as may only
//! list and watch what the kubernetes plugin reads (never Secrets, never a write verb); the
//! image's user is not root either.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml_ng::Value;

/// Every document of every YAML file directly in deploy/, with its file name.
fn documents() -> Vec<(PathBuf, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("deploy/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML file in {}", dir.display());
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        for document in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = Value::deserialize(document)
                .unwrap_or_else(|e| panic!("{}: not YAML: {e}", file.display()));
            if !value.is_null() {
                docs.push((file.clone(), value));
            }
        }
    }
    docs
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or("")
}

fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or("")
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_sequence()
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The workloads (kind, name, pod spec) that run clusterdns.
fn workloads(docs: &[(PathBuf, Value)]) -> Vec<(String, &Value)> {
    docs.iter()
        .filter(|(_, d)| matches!(kind(d), "Deployment" | "DaemonSet" | "StatefulSet"))
        .map(|(f, d)| {
            (
                format!("{} {}/{}", f.display(), kind(d), name(d)),
                &d["spec"]["template"]["spec"],
            )
        })
        .collect()
}

#[test]
fn deployment_runs_as_non_root_without_privileges() {
    let docs = documents();
    let workloads = workloads(&docs);
    assert!(
        workloads
            .iter()
            .any(|(w, _)| w.contains("Deployment/coredns")),
        "the coredns Deployment is missing from deploy/: {:?}",
        workloads.iter().map(|(w, _)| w).collect::<Vec<_>>()
    );
    for (what, pod) in workloads {
        let pod_sc = &pod["securityContext"];
        assert_eq!(
            pod_sc["runAsNonRoot"].as_bool(),
            Some(true),
            "{what}: pod securityContext.runAsNonRoot"
        );
        let uid = pod_sc["runAsUser"].as_u64();
        assert!(
            uid.is_some_and(|u| u != 0),
            "{what}: pod securityContext.runAsUser must be a non-zero uid, is {uid:?}"
        );
        for host in ["hostNetwork", "hostPID", "hostIPC"] {
            assert_ne!(pod[host].as_bool(), Some(true), "{what}: {host}");
        }
        let containers: Vec<&Value> = ["containers", "initContainers"]
            .iter()
            .filter_map(|k| pod[*k].as_sequence())
            .flatten()
            .collect();
        assert!(!containers.is_empty(), "{what}: no containers");
        for c in containers {
            let cname = c["name"].as_str().unwrap_or("?");
            let sc = &c["securityContext"];
            assert_eq!(
                sc["allowPrivilegeEscalation"].as_bool(),
                Some(false),
                "{what} container {cname}: allowPrivilegeEscalation"
            );
            assert_eq!(
                sc["readOnlyRootFilesystem"].as_bool(),
                Some(true),
                "{what} container {cname}: readOnlyRootFilesystem"
            );
            assert_ne!(
                sc["privileged"].as_bool(),
                Some(true),
                "{what} container {cname}: privileged"
            );
            if let Some(uid) = sc["runAsUser"].as_u64() {
                assert_ne!(uid, 0, "{what} container {cname}: runAsUser");
            }
            assert_ne!(
                sc["runAsNonRoot"].as_bool(),
                Some(false),
                "{what} container {cname}: runAsNonRoot overridden"
            );
            let caps = &sc["capabilities"];
            assert_eq!(
                strings(&caps["drop"]),
                ["ALL"],
                "{what} container {cname}: capabilities.drop"
            );
            let added = strings(&caps["add"]);
            assert!(
                added.iter().all(|c| *c == "NET_BIND_SERVICE"),
                "{what} container {cname}: capabilities.add may hold only NET_BIND_SERVICE: \
                 {added:?}"
            );
        }
    }
}

/// The roles bound to the ServiceAccount the coredns Deployment runs as, by kind and name.
fn bound_roles<'a>(docs: &'a [(PathBuf, Value)], account: &str, namespace: &str) -> Vec<&'a Value> {
    let mut refs = BTreeSet::new();
    for (_, d) in docs {
        if !matches!(kind(d), "ClusterRoleBinding" | "RoleBinding") {
            continue;
        }
        let binds_account = d["subjects"].as_sequence().is_some_and(|subjects| {
            subjects.iter().any(|s| {
                s["kind"].as_str() == Some("ServiceAccount")
                    && s["name"].as_str() == Some(account)
                    && s["namespace"]
                        .as_str()
                        .or(d["metadata"]["namespace"].as_str())
                        == Some(namespace)
            })
        });
        if binds_account {
            refs.insert((
                d["roleRef"]["kind"].as_str().unwrap_or("").to_owned(),
                d["roleRef"]["name"].as_str().unwrap_or("").to_owned(),
            ));
        }
    }
    refs.iter()
        .map(|(k, n)| {
            docs.iter()
                .map(|(_, d)| d)
                .find(|d| kind(d) == k && name(d) == n)
                .unwrap_or_else(|| panic!("{k} {n} is bound but not defined in deploy/"))
        })
        .collect()
}

#[test]
fn service_account_may_only_list_and_watch_what_dns_reads() {
    let docs = documents();
    let (_, deployment) = docs
        .iter()
        .find(|(_, d)| kind(d) == "Deployment" && name(d) == "coredns")
        .expect("the coredns Deployment in deploy/");
    let pod = &deployment["spec"]["template"]["spec"];
    let account = pod["serviceAccountName"].as_str().unwrap_or("default");
    let namespace = deployment["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    let roles = bound_roles(&docs, account, namespace);
    assert!(
        !roles.is_empty(),
        "no role is bound to ServiceAccount {namespace}/{account}: the plugin could not list"
    );
    let allowed: BTreeSet<(&str, &str)> = [
        ("", "services"),
        ("", "namespaces"),
        ("", "pods"),
        ("discovery.k8s.io", "endpointslices"),
    ]
    .into_iter()
    .collect();
    let mut granted = BTreeSet::new();
    for role in roles {
        let what = format!("{} {}", kind(role), name(role));
        let rules = role["rules"].as_sequence().map_or(&[][..], |r| r);
        for rule in rules {
            assert!(
                rule["nonResourceURLs"].is_null(),
                "{what}: nonResourceURLs granted: {rule:?}"
            );
            assert!(
                rule["resourceNames"].is_null(),
                "{what}: resourceNames (list/watch ignore them): {rule:?}"
            );
            let verbs = strings(&rule["verbs"]);
            assert!(
                !verbs.is_empty() && verbs.iter().all(|v| matches!(*v, "list" | "watch")),
                "{what}: verbs must be list/watch only, are {verbs:?}"
            );
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    assert_ne!(resource, "secrets", "{what}: Secrets granted");
                    assert!(
                        allowed.contains(&(group, resource)),
                        "{what}: {group:?}/{resource} is not something DNS reads"
                    );
                    granted.insert((group, resource));
                }
            }
        }
    }
    // And enough: every kind the plugin watches by default.
    for needed in [
        ("", "services"),
        ("", "namespaces"),
        ("discovery.k8s.io", "endpointslices"),
    ] {
        assert!(granted.contains(&needed), "{needed:?} not granted");
    }
}

#[test]
fn image_runs_as_a_non_root_user() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("Containerfile");
    let text = std::fs::read_to_string(&path).expect("read Containerfile");
    // The last USER of the file is the final stage's user.
    let user = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("USER "))
        .expect("the Containerfile sets a USER");
    let uid = user.trim().split(':').next().unwrap_or("");
    assert!(
        uid.parse::<u32>().is_ok_and(|u| u != 0),
        "the image's USER must be a numeric non-zero uid (runAsNonRoot needs it), is {user:?}"
    );
}
