//! `clusterdns doctor`, the real binary, against the e2e tier's real kube-apiserver (deploy/'s
//! RBAC, the server's own credentials) and a loopback fake upstream: a healthy setup, then
//! broken ones (a forwarding loop, an unreachable upstream, a verb removed from the
//! ClusterRole; a namespace named like a TLD warns), each finding asserted in the JSON report and the
//! exit code; and `doctor query` tracing questions through the configuration.

#[path = "e2e/cluster.rs"]
#[allow(dead_code)]
mod cluster;
#[path = "support/peers.rs"]
mod peers;
#[path = "common/upstream.rs"]
mod upstream;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use upstream::{Mode, Upstream};

/// Tests that change the cluster (RBAC, namespaces) run one at a time, and never while another
/// test expects a healthy report.
static CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long one doctor run may take (API round trips and 2 s upstream timeouts).
const DOCTOR_LIMIT: Duration = Duration::from_secs(60);

/// The doctor's exit code and its JSON report.
struct Run {
    code: Option<i32>,
    report: Value,
    stdout: String,
}

impl Run {
    fn checks(&self) -> &[Value] {
        self.report["checks"].as_array().map_or(&[], Vec::as_slice)
    }

    /// The check with `id` (the first one); panics with the report when there is none.
    fn check(&self, id: &str) -> &Value {
        self.checks()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no check {id} in the report:\n{}", self.stdout))
    }

    fn status(&self, id: &str) -> &str {
        self.check(id)["status"].as_str().unwrap_or_default()
    }

    fn with_status(&self, status: &str) -> Vec<String> {
        self.checks()
            .iter()
            .filter(|c| c["status"] == status)
            .map(|c| format!("{}: {}", c["id"], c["message"]))
            .collect()
    }
}

/// Runs `clusterdns doctor --json ARGS` in `dir`.
async fn doctor(dir: &Path, args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_clusterdns"));
    command
        .arg("doctor")
        .arg("--json")
        .args(args)
        .current_dir(dir)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBECONFIG")
        .env("HOME", dir)
        .kill_on_drop(true);
    let output = match tokio::time::timeout(DOCTOR_LIMIT, command.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => panic!("cannot run clusterdns doctor: {e}"),
        Err(_) => panic!("clusterdns doctor {args:?} did not finish within {DOCTOR_LIMIT:?}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "doctor output is not JSON ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    Run {
        code: output.status.code(),
        report,
        stdout,
    }
}

/// A directory of its own with `Corefile` holding `text`.
fn corefile(name: &str, text: &str) -> PathBuf {
    let dir = cluster::shared().dir.join(format!("doctor-{name}"));
    std::fs::create_dir_all(&dir).expect("create the doctor test directory");
    std::fs::write(dir.join("Corefile"), text).expect("write the Corefile");
    dir
}

/// The kubeadm-style block: served on `port`, the API read as deploy/'s service account.
fn block(port: u16, forward: &str) -> String {
    let kubeconfig = cluster::shared().dir.join("coredns.kubeconfig");
    format!(
        ".:{port} {{\n    bind 127.0.0.1\n    errors\n    health\n    ready\n    loop\n    cache 30\n    \
         kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        kubeconfig {}\n        \
         pods verified\n    }}\n    forward . {forward}\n}}\n",
        kubeconfig.display()
    )
}

/// An EndpointSlice with one ready endpoint for deploy/'s kube-dns Service (no controller
/// manager runs in the e2e tier, so nothing else creates one).
async fn kube_dns_endpoints() {
    let admin = cluster::shared().admin().await;
    let slices: Api<EndpointSlice> = Api::namespaced(admin, "kube-system");
    let slice: EndpointSlice = serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kube-dns-doctor",
            "namespace": "kube-system",
            "labels": {"kubernetes.io/service-name": "kube-dns"}
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.0.10"], "conditions": {"ready": true}}],
        "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"}
        ]
    }))
    .expect("EndpointSlice JSON");
    let params = PatchParams::apply("clusterdns-doctor-test").force();
    if let Err(e) = slices
        .patch("kube-dns-doctor", &params, &Patch::Apply(&slice))
        .await
    {
        panic!("cannot create the kube-dns EndpointSlice: {e}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_setup_passes_every_check() {
    let _cluster = CLUSTER.lock().await;
    kube_dns_endpoints().await;
    let up = Upstream::start(Mode::Normal).await;
    let port = cluster::free_port(true);
    let dir = corefile("healthy", &block(port, &up.addr.to_string()));
    let run = doctor(&dir, &["-conf", "Corefile"]).await;
    assert_eq!(
        run.with_status("fail"),
        Vec::<String>::new(),
        "{}",
        run.stdout
    );
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert_eq!(run.report["failures"], 0);
    assert_eq!(
        run.with_status("warn"),
        Vec::<String>::new(),
        "{}",
        run.stdout
    );
    for id in [
        "corefile.parse",
        "corefile.directive.kubernetes",
        "corefile.directive.forward",
        "corefile.forward.targets",
        "corefile.ndots",
        "api.reachable",
        "api.auth",
        "api.index",
        "api.namespaces",
        "kube-dns.service",
        "kube-dns.endpoints",
        "kube-dns.port.53.udp",
        "kube-dns.port.53.tcp",
        "kube-dns.port.9153.tcp",
    ] {
        assert_eq!(run.status(id), "ok", "{id}: {}", run.stdout);
    }
    for verb in ["list", "watch"] {
        for kind in ["services", "endpointslices", "namespaces", "pods"] {
            let id = format!("api.rbac.{verb}.{kind}");
            assert_eq!(run.status(&id), "ok", "{id}: {}", run.stdout);
        }
    }
    let auth = run.check("api.auth")["message"]
        .as_str()
        .unwrap_or_default();
    assert!(auth.contains(cluster::COREDNS_USER), "{auth}");
    let index = run.check("api.index")["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        index.contains("Services") && index.contains("Pods"),
        "{index}"
    );
    let endpoints = run.check("kube-dns.endpoints")["message"]
        .as_str()
        .unwrap_or_default();
    assert!(endpoints.contains("1 ready endpoint"), "{endpoints}");
    let kube_dns = run.check("kube-dns.service")["message"]
        .as_str()
        .unwrap_or_default();
    assert!(kube_dns.contains("10.96.0.10"), "{kube_dns}");
    for transport in ["udp", "tcp"] {
        let id = format!("upstream.{transport}.{}", up.addr);
        assert_eq!(run.status(&id), "ok", "{id}: {}", run.stdout);
    }
    // The health-check question reached the upstream over both transports.
    let seen = up.seen();
    assert!(seen.iter().any(|s| s.name == "." && !s.tcp), "{seen:?}");
    assert!(seen.iter().any(|s| s.name == "." && s.tcp), "{seen:?}");

    // The text report: one tagged line per check.
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_clusterdns"));
    command
        .args(["doctor", "-conf", "Corefile"])
        .current_dir(&dir)
        .env_remove("KUBERNETES_SERVICE_HOST");
    let output = command.output().await.expect("run clusterdns doctor");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("[ OK ] RBAC allows watch endpointslices.discovery.k8s.io"),
        "{text}"
    );
    assert!(!text.contains("[FAIL]"), "{text}");

    // A namespace named like a TLD, with a Service that shadows a real domain: a warning, not
    // a failure. (Without a controller manager a namespace is never deleted, so this comes
    // last, and other tests do not assert on namespaces.)
    let admin = cluster::shared().admin().await;
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "com"}})).expect("ns");
    if let Err(e) = namespaces.create(&PostParams::default(), &ns).await {
        panic!("create namespace com: {e}");
    }
    let services: Api<Service> = Api::namespaced(admin, "com");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "github"},
        "spec": {"ports": [{"port": 443}]}
    }))
    .expect("service");
    if let Err(e) = services.create(&PostParams::default(), &svc).await {
        panic!("create service com/github: {e}");
    }
    let run = doctor(&dir, &["-conf", "Corefile"]).await;
    assert_eq!(
        run.code,
        Some(0),
        "a warning is not a failure: {}",
        run.stdout
    );
    assert_eq!(
        run.status("api.namespace.tld.com"),
        "warn",
        "{}",
        run.stdout
    );
    let msg = run.check("api.namespace.tld.com")["message"]
        .as_str()
        .unwrap_or_default();
    assert!(msg.contains("github.com"), "{msg}");
    assert!(run.check("api.namespace.tld.com")["remedy"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarding_loops_fail() {
    let port = cluster::free_port(true);
    // Its own address, the systemd-resolved stub (directly and through a resolv.conf file), and
    // the kube-dns Service's ClusterIP.
    let dir = corefile(
        "loop",
        &block(
            port,
            &format!("127.0.0.1:{port} 127.0.0.53 resolv.conf 10.96.0.10 10.244.0.10"),
        ),
    );
    std::fs::write(dir.join("resolv.conf"), "nameserver ::1\n").expect("write resolv.conf");
    let _cluster = CLUSTER.lock().await;
    kube_dns_endpoints().await;
    let run = doctor(&dir, &["-conf", "Corefile"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let loops: Vec<&str> = run
        .checks()
        .iter()
        .filter(|c| c["id"] == "corefile.forward.loop")
        .map(|c| {
            assert_eq!(c["status"], "fail");
            assert!(c["remedy"].is_string(), "{c}");
            c["message"].as_str().unwrap_or_default()
        })
        .collect();
    assert_eq!(loops.len(), 3, "{loops:#?}");
    assert!(
        loops[0].contains(&format!("127.0.0.1:{port} is this server's own address")),
        "{}",
        loops[0]
    );
    assert!(
        loops[1].contains("127.0.0.53:53 is a local stub resolver"),
        "{}",
        loops[1]
    );
    assert!(loops[2].contains("[::1]:53 (nameserver in"), "{}", loops[2]);
    assert_eq!(
        run.status("kube-dns.forward.loop"),
        "fail",
        "{}",
        run.stdout
    );
    let msg = run.check("kube-dns.forward.loop")["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        msg.contains("10.96.0.10:53 is the kube-dns Service's ClusterIP"),
        "{msg}"
    );
    let pod_loop = run
        .checks()
        .iter()
        .filter(|c| c["id"] == "kube-dns.forward.loop")
        .filter_map(|c| c["message"].as_str())
        .find(|m| m.contains("10.244.0.10:53"))
        .unwrap_or_else(|| panic!("no loop through the kube-dns endpoint: {}", run.stdout));
    assert!(pod_loop.contains("a clusterdns pod"), "{pod_loop}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_upstream_fails() {
    let up = Upstream::start(Mode::Normal).await;
    // A loopback port nobody listens on (taken, then released).
    let dead = SocketAddr::from(([127, 0, 0, 1], cluster::free_port(true)));
    let port = cluster::free_port(true);
    let dir = corefile("unreachable", &block(port, &format!("{} {dead}", up.addr)));
    let _cluster = CLUSTER.lock().await;
    let run = doctor(&dir, &["-conf", "Corefile"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    for transport in ["udp", "tcp"] {
        let id = format!("upstream.{transport}.{dead}");
        assert_eq!(run.status(&id), "fail", "{id}: {}", run.stdout);
        assert!(run.check(&id)["remedy"].is_string());
        let id = format!("upstream.{transport}.{}", up.addr);
        assert_eq!(run.status(&id), "ok", "{id}: {}", run.stdout);
    }
    // Only the dead upstream fails.
    assert_eq!(run.report["failures"], 2, "{}", run.stdout);
}

/// Sets the verbs of the ClusterRole's endpointslices rule.
async fn slice_verbs(verbs: &[&str]) {
    let admin = cluster::shared().admin().await;
    let roles: Api<ClusterRole> = Api::all(admin);
    let patch = json!({
        "rules": [
            {"apiGroups": [""], "resources": ["services", "namespaces", "pods"], "verbs": ["list", "watch"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": verbs}
        ]
    });
    if let Err(e) = roles
        .patch(
            "system:coredns",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        panic!("cannot patch ClusterRole system:coredns: {e}");
    }
    // The RBAC authorizer reads roles through an informer: wait until the change shows.
    let reviews: Api<SubjectAccessReview> = Api::all(cluster::shared().admin().await);
    let want = verbs.contains(&"watch");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let review: SubjectAccessReview = serde_json::from_value(json!({
            "spec": {
                "user": cluster::COREDNS_USER,
                "resourceAttributes": {
                    "group": "discovery.k8s.io", "resource": "endpointslices", "verb": "watch"
                }
            }
        }))
        .expect("review");
        let allowed = reviews
            .create(&PostParams::default(), &review)
            .await
            .ok()
            .and_then(|r| r.status)
            .is_some_and(|s| s.allowed);
        if allowed == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "watch endpointslices is still {} after 30 s",
            if allowed { "allowed" } else { "denied" }
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rbac_verb_removed_fails() {
    let up = Upstream::start(Mode::Normal).await;
    let port = cluster::free_port(true);
    let dir = corefile("rbac", &block(port, &up.addr.to_string()));
    let _cluster = CLUSTER.lock().await;
    kube_dns_endpoints().await;
    slice_verbs(&["list"]).await;
    let run = doctor(&dir, &["-conf", "Corefile"]).await;
    slice_verbs(&["list", "watch"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert_eq!(
        run.status("api.rbac.watch.endpointslices"),
        "fail",
        "{}",
        run.stdout
    );
    assert_eq!(
        run.status("api.rbac.list.endpointslices"),
        "ok",
        "{}",
        run.stdout
    );
    let remedy = run.check("api.rbac.watch.endpointslices")["remedy"]
        .as_str()
        .unwrap_or_default();
    assert!(remedy.contains("`watch` on `endpointslices`"), "{remedy}");
    assert_eq!(
        run.with_status("fail").len(),
        1,
        "only the removed verb fails: {}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn query_traces_and_explains() {
    let up = Upstream::start(Mode::Normal).await;
    let port = cluster::free_port(true);
    let dir = corefile("query", &block(port, &up.addr.to_string()));
    let _cluster = CLUSTER.lock().await;
    let run = doctor(
        &dir,
        &[
            "-conf",
            "Corefile",
            "query",
            "kubernetes.default.svc.cluster.local",
        ],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    let q = &run.report["query"];
    assert_eq!(q["answered_by"], "kubernetes", "{}", run.stdout);
    assert_eq!(q["rcode"], "NOERROR");
    assert_eq!(q["block"]["index"], 0);
    let answers = q["answers"].to_string();
    assert!(answers.contains("IN A 10.96.0.1"), "{answers}");
    let plugins: Vec<&str> = q["steps"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter(|s| s["event"] == "enter")
                .filter_map(|s| s["plugin"].as_str())
                .collect()
        })
        .unwrap_or_default();
    // (Plugins that never answer, health and ready, may sit in front.)
    assert!(
        plugins.ends_with(&["errors", "cache", "kubernetes"]),
        "{plugins:?}: {}",
        run.stdout
    );
    let why = q["why"].to_string();
    assert!(
        why.contains("Service default/kubernetes has ClusterIP 10.96.0.1"),
        "{why}"
    );

    // A name outside the cluster: forwarded to the upstream.
    let run = doctor(&dir, &["-conf", "Corefile", "query", "external.test", "A"]).await;
    let q = &run.report["query"];
    assert_eq!(q["answered_by"], "forward", "{}", run.stdout);
    assert!(
        q["answers"].to_string().contains("192.0.2.10"),
        "{}",
        run.stdout
    );
    assert!(
        q["why"]
            .to_string()
            .contains(&format!("relays it to {}", up.addr)),
        "{}",
        run.stdout
    );

    // A missing Service: NXDOMAIN, and the reason names the missing object.
    let run = doctor(
        &dir,
        &[
            "-conf",
            "Corefile",
            "query",
            "nope.default.svc.cluster.local",
            "AAAA",
        ],
    )
    .await;
    let q = &run.report["query"];
    assert_eq!(q["rcode"], "NXDOMAIN", "{}", run.stdout);
    assert!(
        q["why"].to_string().contains("no Service default/nope"),
        "{}",
        run.stdout
    );

    // The pod's Corefile names no kubeconfig: `--kubeconfig` gives the plugin its credentials.
    let plain = corefile(
        "query-plain",
        &format!(".:{port} {{\n    kubernetes cluster.local in-addr.arpa ip6.arpa\n}}\n"),
    );
    let kubeconfig = cluster::shared().dir.join("coredns.kubeconfig");
    let kubeconfig = kubeconfig.display().to_string();
    let run = doctor(
        &plain,
        &[
            "-conf",
            "Corefile",
            "--kubeconfig",
            &kubeconfig,
            "query",
            "1.0.96.10.in-addr.arpa",
            "PTR",
        ],
    )
    .await;
    let q = &run.report["query"];
    assert_eq!(q["answered_by"], "kubernetes", "{}", run.stdout);
    assert!(
        q["answers"]
            .to_string()
            .contains("kubernetes.default.svc.cluster.local."),
        "{}",
        run.stdout
    );
    assert!(
        q["why"]
            .to_string()
            .contains("ClusterIP of Service default/kubernetes"),
        "{}",
        run.stdout
    );
}

/// A Corefile in a temporary directory of its own (for tests without the e2e stack).
fn scratch_corefile(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("Corefile"), text).expect("write the Corefile");
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn corefile_errors_fail_with_their_location() {
    let dir = scratch_corefile(".:53 {\n    forward . 192.0.2.1 {\n        bogus\n    }\n}\n");
    let run = doctor(dir.path(), &["-conf", "Corefile"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert_eq!(run.status("corefile.parse"), "fail");
    let msg = run.check("corefile.parse")["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        msg.contains("Corefile:3:9") && msg.contains("bogus"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_api_fails() {
    let dead = cluster::free_port(false);
    let dir = scratch_corefile(&format!(
        ".:53 {{\n    kubernetes cluster.local {{\n        endpoint https://127.0.0.1:{dead}\n    }}\n}}\n"
    ));
    let run = doctor(dir.path(), &["-conf", "Corefile"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert_eq!(run.status("api.reachable"), "fail", "{}", run.stdout);
    let msg = run.check("api.reachable")["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        msg.contains(&format!("endpoint https://127.0.0.1:{dead}")),
        "{msg}"
    );
    // Nothing is checked against an API that does not answer.
    assert!(
        run.checks().iter().all(|c| c["id"] != "api.auth"),
        "{}",
        run.stdout
    );
}
