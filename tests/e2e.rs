//! The end-to-end tier: clusterdns (the real binary) against a real kube-apiserver and etcd on
//! loopback (built on first use by `tests/e2e/build-peers.sh`, see tests/support/peers.rs),
//! authorized only by deploy/'s RBAC.
//! Objects are created, changed and deleted through the API; real DNS queries assert that the
//! answers follow within a second. One test stops and restarts the apiserver.
//!
//! Most tests share one stack (apiserver + clusterdns) and each works in namespaces of its own;
//! the restart test has its own apiserver (same etcd, another key prefix).

#[path = "e2e/cluster.rs"]
mod cluster;
#[path = "support/peers.rs"]
mod peers;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cluster::{COREDNS_USER, Stack, ask, rdata, shared};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// How soon a change made through the API must show in the answers (issue 3, part 5).
const FOLLOW: Duration = Duration::from_secs(1);
/// How soon answers catch up after an apiserver restart: the watch reconnects with a backoff
/// capped at 30 s (client-go's and kube's default), so this allows one full backoff step.
const CATCH_UP: Duration = Duration::from_secs(45);

/// What a query is expected to return.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Want {
    /// NOERROR with exactly these answer record data (sorted).
    Answers(Vec<String>),
    /// NOERROR, no answers.
    NoData,
    NxDomain,
}

fn answers(items: &[&str]) -> Want {
    let mut v: Vec<String> = items.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    Want::Answers(v)
}

fn observed(reply: &hickory_proto::op::Message) -> Want {
    match reply.metadata.response_code {
        ResponseCode::NXDomain => Want::NxDomain,
        ResponseCode::NoError if reply.answers.is_empty() => Want::NoData,
        ResponseCode::NoError => Want::Answers(rdata(reply)),
        other => Want::Answers(vec![format!("rcode {other:?}")]),
    }
}

/// Polls `name qtype` until the reply is `want`; panics with what was seen (and the logs) once
/// `within` has passed.
async fn expect_within(
    stack: &Stack,
    within: Duration,
    name: &str,
    qtype: RecordType,
    want: &Want,
) {
    let deadline = Instant::now() + within;
    loop {
        let seen = ask(stack.dns, name, qtype).await.map(|r| observed(&r));
        if seen.as_ref() == Some(want) {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "{name} {qtype}: want {want:?} within {within:?}, last reply {seen:?}\n{}",
                stack.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn expect(stack: &Stack, name: &str, qtype: RecordType, want: Want) {
    expect_within(stack, FOLLOW, name, qtype, &want).await;
}

fn obj<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    match serde_json::from_value(value) {
        Ok(v) => v,
        Err(e) => panic!("test object: {e}"),
    }
}

fn ok<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e}"),
    }
}

async fn create_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = obj(json!({"metadata": {"name": name}}));
    ok(
        "create namespace",
        api.create(&PostParams::default(), &ns).await,
    );
}

/// Deletes a namespace and finalizes it as the namespace controller would (there is no
/// kube-controller-manager): the object is gone afterwards.
async fn delete_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    ok(
        "delete namespace",
        api.delete(name, &DeleteParams::default()).await,
    );
    let mut ns = ok("get namespace", api.get(name).await);
    if let Some(spec) = ns.spec.as_mut() {
        spec.finalizers = Some(Vec::new());
    }
    ok(
        "finalize namespace",
        api.replace_subresource("finalize", name, &PostParams::default(), &ns)
            .await,
    );
    // Finalized and terminating: a second delete removes it (it may already be gone).
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(e) => panic!("delete finalized namespace: {e}"),
    }
}

async fn create_service(client: &Client, ns: &str, spec: serde_json::Value) -> Service {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    ok(
        "create service",
        api.create(&PostParams::default(), &obj(spec)).await,
    )
}

fn cluster_ips(svc: &Service) -> Vec<String> {
    svc.spec
        .as_ref()
        .and_then(|s| s.cluster_ips.clone())
        .unwrap_or_default()
}

fn slice(name: &str, service: &str, endpoints: serde_json::Value) -> EndpointSlice {
    obj(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }))
}

#[test]
fn deploy_configmap_carries_the_kubeadm_corefile() {
    let objects = ok("deploy/ objects", cluster::deploy_objects());
    let cm = objects
        .iter()
        .find(|o| o.types.as_ref().is_some_and(|t| t.kind == "ConfigMap"))
        .expect("deploy/ has a ConfigMap");
    assert_eq!(cm.metadata.name.as_deref(), Some("coredns"));
    assert_eq!(cm.metadata.namespace.as_deref(), Some("kube-system"));
    let corefile = cm.data["data"]["Corefile"].as_str().unwrap_or_default();
    let kubeadm = ok(
        "read corefile/Corefile.kubeadm",
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/corefile/Corefile.kubeadm"
        )),
    );
    assert_eq!(corefile, kubeadm);
    let kinds: Vec<String> = objects
        .iter()
        .filter_map(|o| o.types.as_ref().map(|t| t.kind.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "Service",
            "PodDisruptionBudget"
        ]
    );
}

#[tokio::test]
async fn deploy_manifests_are_applied_and_rbac_allows_exactly_list_and_watch() {
    let stack = shared();
    let client = stack.admin().await;
    // The stack applied every object of deploy/ (dry run, then for real); read them back.
    let cm: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    ok("get configmap coredns", cm.get("coredns").await);
    let svc: Api<Service> = Api::namespaced(client.clone(), "kube-system");
    let dns = ok("get service kube-dns", svc.get("kube-dns").await);
    assert_eq!(cluster_ips(&dns), ["10.96.0.10"]);
    let roles: Api<ClusterRole> = Api::all(client.clone());
    ok("get clusterrole", roles.get("system:coredns").await);
    // The kube-dns Service is in the cluster data clusterdns serves.
    expect(
        stack,
        "kube-dns.kube-system.svc.cluster.local.",
        RecordType::A,
        answers(&["10.96.0.10"]),
    )
    .await;

    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    let cases = [
        ("", "services", "list", true),
        ("", "services", "watch", true),
        ("", "namespaces", "list", true),
        ("", "namespaces", "watch", true),
        ("", "pods", "list", true),
        ("", "pods", "watch", true),
        ("discovery.k8s.io", "endpointslices", "list", true),
        ("discovery.k8s.io", "endpointslices", "watch", true),
        ("", "services", "get", false),
        ("", "services", "create", false),
        ("", "pods", "delete", false),
        ("", "endpoints", "list", false),
        ("", "secrets", "list", false),
        ("", "configmaps", "watch", false),
        ("discovery.k8s.io", "endpointslices", "update", false),
    ];
    for (group, resource, verb, want) in cases {
        let review: SubjectAccessReview = obj(json!({
            "spec": {
                "user": COREDNS_USER,
                "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system"],
                "resourceAttributes": {"group": group, "resource": resource, "verb": verb},
            }
        }));
        let result = ok(
            "create subjectaccessreview",
            reviews.create(&PostParams::default(), &review).await,
        );
        let allowed = result.status.is_some_and(|s| s.allowed);
        assert_eq!(
            allowed, want,
            "{verb} {group}/{resource} for {COREDNS_USER}"
        );
    }
}

/// Each Deployment's Pod template of deploy/ (clusterdns and the dns-autoscaler), as a Pod,
/// passes Pod validation and admission (the priority class exists; the `restricted` Pod Security
/// profile holds) in a server-side dry run.
#[tokio::test]
async fn deploy_pod_templates_are_admitted_under_restricted_pod_security() {
    let stack = shared();
    let client = stack.admin().await;
    let ns = "e2e-pod-security";
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let labeled = obj(json!({"metadata": {"name": ns, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }}}));
    ok(
        "create namespace",
        namespaces.create(&PostParams::default(), &labeled).await,
    );
    let objects = ok("deploy/ objects", cluster::all_deploy_objects());
    let deployments: Vec<_> = objects
        .iter()
        .filter(|o| o.types.as_ref().is_some_and(|t| t.kind == "Deployment"))
        .collect();
    let names: Vec<_> = deployments
        .iter()
        .filter_map(|d| d.metadata.name.as_deref())
        .collect();
    assert_eq!(
        names,
        ["coredns", "dns-autoscaler"],
        "deploy/'s Deployments"
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    for deployment in deployments {
        let name = deployment.metadata.name.as_deref().unwrap_or_default();
        let template = &deployment.data["spec"]["template"];
        let mut metadata = template["metadata"].clone();
        metadata["name"] = json!(format!("{name}-template"));
        let pod: Pod = obj(json!({"metadata": metadata, "spec": template["spec"]}));
        ok(
            &format!("dry-run create of the {name} Deployment's Pod template"),
            pods.create(&dry_run, &pod).await,
        );
        // The check can fail: the same Pod with privilege escalation allowed is rejected.
        let mut bad = template["spec"].clone();
        bad["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = json!(true);
        let bad: Pod = obj(json!({"metadata": {"name": format!("{name}-bad")}, "spec": bad}));
        assert!(
            pods.create(&dry_run, &bad).await.is_err(),
            "restricted Pod Security rejects allowPrivilegeEscalation: true ({name})"
        );
    }
    delete_namespace(&client, ns).await;
}

/// deploy/dns-autoscaler.yaml: the PodDisruptionBudget of clusterdns.yaml covers the Pods the
/// autoscaler scales, and its parameters never leave one replica (PDB maxUnavailable 1).
#[test]
fn deploy_autoscaler_targets_coredns_and_fits_the_disruption_budget() {
    let path = std::path::Path::new(cluster::DEPLOY_DIR).join("dns-autoscaler.yaml");
    let objects = ok("dns-autoscaler.yaml", cluster::manifest_objects(&path));
    let kind = |o: &kube::api::DynamicObject| o.types.as_ref().map(|t| t.kind.clone());
    let kinds: Vec<_> = objects.iter().filter_map(kind).collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "ConfigMap",
            "Deployment"
        ]
    );
    let find = |objects: &[kube::api::DynamicObject], k: &str| {
        objects
            .iter()
            .find(|o| kind(o).as_deref() == Some(k))
            .cloned()
            .unwrap_or_else(|| panic!("no {k}"))
    };
    let cpa = find(&objects, "Deployment");
    let args: Vec<String> = cpa.data["spec"]["template"]["spec"]["containers"][0]["command"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(args[0], "/cluster-proportional-autoscaler");
    for flag in [
        "--namespace=kube-system",
        "--configmap=dns-autoscaler",
        "--target=Deployment/coredns",
    ] {
        assert!(args.iter().any(|a| a == flag), "{flag} in {args:?}");
    }
    let params = find(&objects, "ConfigMap").data["data"]["linear"]
        .as_str()
        .map(String::from)
        .unwrap_or_default();
    let linear: serde_json::Value = ok("linear params", serde_json::from_str(&params));
    assert_eq!(linear["preventSinglePointFailure"], json!(true));
    assert!(linear["min"].as_u64().is_some_and(|m| m >= 2), "{linear}");
    assert!(linear["coresPerReplica"].as_u64().is_some_and(|c| c > 0));
    assert!(linear["nodesPerReplica"].as_u64().is_some_and(|n| n > 0));

    let main = ok("clusterdns.yaml", cluster::deploy_objects());
    let pdb = find(&main, "PodDisruptionBudget");
    assert_eq!(pdb.data["spec"]["maxUnavailable"], json!(1));
    let coredns = find(&main, "Deployment");
    let pod_labels = &coredns.data["spec"]["template"]["metadata"]["labels"];
    let selector = pdb.data["spec"]["selector"]["matchLabels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(!selector.is_empty());
    for (key, value) in selector {
        assert_eq!(
            &pod_labels[&key], &value,
            "PDB selector {key} matches the Pods"
        );
    }
}

/// The autoscaler's own API calls, made with deploy/'s RBAC only: list and watch Nodes, read
/// its ConfigMap, read and write the `coredns` Deployment's scale; nothing else.
#[tokio::test]
async fn deploy_autoscaler_rbac_allows_its_calls_and_no_more() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Node;
    let stack = shared();
    let cpa = stack.autoscaler().await;
    let nodes: Api<Node> = Api::all(cpa.clone());
    ok(
        "list nodes as the autoscaler",
        nodes.list(&Default::default()).await,
    );
    let cms: Api<ConfigMap> = Api::namespaced(cpa.clone(), "kube-system");
    let params = ok("get its ConfigMap", cms.get("dns-autoscaler").await);
    assert!(params.data.is_some_and(|d| d.contains_key("linear")));
    assert!(
        cms.get("coredns").await.is_err(),
        "the autoscaler reads no other ConfigMap"
    );
    let deployments: Api<Deployment> = Api::namespaced(cpa.clone(), "kube-system");
    let scale = ok("get coredns scale", deployments.get_scale("coredns").await);
    let before = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    // As the autoscaler does it: GET the scale, PUT it back with other replicas.
    let mut more = scale.clone();
    more.spec.get_or_insert_default().replicas = Some(before + 1);
    let changed = ok(
        "update coredns scale",
        deployments
            .replace_scale("coredns", &PostParams::default(), &more)
            .await,
    );
    assert_eq!(
        changed.spec.as_ref().and_then(|s| s.replicas),
        Some(before + 1)
    );
    let mut back = changed;
    back.spec.get_or_insert_default().replicas = Some(before);
    ok(
        "restore coredns scale",
        deployments
            .replace_scale("coredns", &PostParams::default(), &back)
            .await,
    );
    assert!(
        deployments.get("coredns").await.is_err(),
        "the autoscaler cannot read the Deployment itself, only its scale"
    );
    assert!(
        deployments.get_scale("dns-autoscaler").await.is_err(),
        "the autoscaler scales coredns only"
    );

    let reviews: Api<SubjectAccessReview> = Api::all(stack.admin().await);
    let cases = [
        ("", "nodes", "", "", "watch", true),
        ("", "nodes", "", "", "update", false),
        ("apps", "deployments", "scale", "coredns", "update", true),
        ("apps", "deployments", "", "coredns", "update", false),
        ("", "configmaps", "", "dns-autoscaler", "update", false),
        ("", "pods", "", "", "list", false),
    ];
    for (group, resource, subresource, name, verb, want) in cases {
        let review: SubjectAccessReview = obj(json!({
            "spec": {
                "user": cluster::AUTOSCALER_USER,
                "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system"],
                "resourceAttributes": {
                    "group": group, "resource": resource, "subresource": subresource,
                    "name": name, "verb": verb, "namespace": "kube-system",
                },
            }
        }));
        let result = ok(
            "create subjectaccessreview",
            reviews.create(&PostParams::default(), &review).await,
        );
        assert_eq!(
            result.status.is_some_and(|s| s.allowed),
            want,
            "{verb} {group}/{resource}/{subresource} {name} for the autoscaler"
        );
    }
}

#[tokio::test]
async fn default_kubernetes_service_answers() {
    let stack = shared();
    expect(
        stack,
        "kubernetes.default.svc.cluster.local.",
        RecordType::A,
        answers(&["10.96.0.1"]),
    )
    .await;
    expect(
        stack,
        "_https._tcp.kubernetes.default.svc.cluster.local.",
        RecordType::SRV,
        answers(&["0 100 443 kubernetes.default.svc.cluster.local."]),
    )
    .await;
    expect(
        stack,
        "1.0.96.10.in-addr.arpa.",
        RecordType::PTR,
        answers(&["kubernetes.default.svc.cluster.local."]),
    )
    .await;
}

#[tokio::test]
async fn namespace_create_and_delete() {
    let stack = shared();
    let client = stack.admin().await;
    let node = "e2e-ns.svc.cluster.local.";
    expect(stack, node, RecordType::A, Want::NxDomain).await;
    create_namespace(&client, "e2e-ns").await;
    expect(stack, node, RecordType::A, Want::NoData).await;
    delete_namespace(&client, "e2e-ns").await;
    expect(stack, node, RecordType::A, Want::NxDomain).await;
}

#[tokio::test]
async fn clusterip_service_create_change_delete() {
    let stack = shared();
    let client = stack.admin().await;
    create_namespace(&client, "e2e-clusterip").await;
    let name = "web.e2e-clusterip.svc.cluster.local.";
    let srv = "_http._tcp.web.e2e-clusterip.svc.cluster.local.";
    let svc = create_service(
        &client,
        "e2e-clusterip",
        json!({
            "metadata": {"name": "web"},
            "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
        }),
    )
    .await;
    let ips = cluster_ips(&svc);
    assert_eq!(ips.len(), 1, "one cluster IP: {ips:?}");
    expect(stack, name, RecordType::A, answers(&[&ips[0]])).await;
    expect(
        stack,
        srv,
        RecordType::SRV,
        answers(&[&format!("0 100 80 {name}")]),
    )
    .await;

    // Change the port: the SRV record follows.
    let api: Api<Service> = Api::namespaced(client.clone(), "e2e-clusterip");
    let patch = json!({"spec": {"ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}});
    ok(
        "patch service",
        api.patch("web", &PatchParams::default(), &Patch::Merge(&patch))
            .await,
    );
    expect(
        stack,
        srv,
        RecordType::SRV,
        answers(&[&format!("0 100 8080 {name}")]),
    )
    .await;

    ok(
        "delete service",
        api.delete("web", &DeleteParams::default()).await,
    );
    expect(stack, name, RecordType::A, Want::NxDomain).await;
    delete_namespace(&client, "e2e-clusterip").await;
}

#[tokio::test]
async fn headless_service_follows_endpointslices() {
    let stack = shared();
    let client = stack.admin().await;
    let ns = "e2e-headless";
    create_namespace(&client, ns).await;
    create_service(
        &client,
        ns,
        json!({
            "metadata": {"name": "db"},
            "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 8080}]},
        }),
    )
    .await;
    let name = "db.e2e-headless.svc.cluster.local.";
    // No endpoints yet: a headless Service without ready endpoints is a name error.
    expect(stack, name, RecordType::A, Want::NxDomain).await;

    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let first = slice(
        "db-1",
        "db",
        json!([
            {"addresses": ["10.244.1.1"], "hostname": "db-0", "conditions": {"ready": true}},
            {"addresses": ["10.244.1.2"], "hostname": "db-1", "conditions": {"ready": false}},
        ]),
    );
    ok(
        "create slice",
        slices.create(&PostParams::default(), &first).await,
    );
    expect(stack, name, RecordType::A, answers(&["10.244.1.1"])).await;
    expect(
        stack,
        "db-0.db.e2e-headless.svc.cluster.local.",
        RecordType::A,
        answers(&["10.244.1.1"]),
    )
    .await;
    expect(
        stack,
        "_http._tcp.db.e2e-headless.svc.cluster.local.",
        RecordType::SRV,
        answers(&["0 100 8080 db-0.db.e2e-headless.svc.cluster.local."]),
    )
    .await;

    // The second endpoint becomes ready; an endpoint without hostname is named by its IP.
    let patch = json!({"endpoints": [
        {"addresses": ["10.244.1.1"], "hostname": "db-0", "conditions": {"ready": true}},
        {"addresses": ["10.244.1.2"], "hostname": "db-1", "conditions": {"ready": true}},
        {"addresses": ["10.244.1.3"]},
    ]});
    ok(
        "patch slice",
        slices
            .patch("db-1", &PatchParams::default(), &Patch::Merge(&patch))
            .await,
    );
    expect(
        stack,
        name,
        RecordType::A,
        answers(&["10.244.1.1", "10.244.1.2", "10.244.1.3"]),
    )
    .await;
    expect(
        stack,
        "db-1.db.e2e-headless.svc.cluster.local.",
        RecordType::A,
        answers(&["10.244.1.2"]),
    )
    .await;
    expect(
        stack,
        "10-244-1-3.db.e2e-headless.svc.cluster.local.",
        RecordType::A,
        answers(&["10.244.1.3"]),
    )
    .await;
    expect(
        stack,
        "3.1.244.10.in-addr.arpa.",
        RecordType::PTR,
        answers(&["10-244-1-3.db.e2e-headless.svc.cluster.local."]),
    )
    .await;

    ok(
        "delete slice",
        slices.delete("db-1", &DeleteParams::default()).await,
    );
    expect(stack, name, RecordType::A, Want::NxDomain).await;
    delete_namespace(&client, ns).await;
}

#[tokio::test]
async fn externalname_service_answers_cname() {
    let stack = shared();
    let client = stack.admin().await;
    let ns = "e2e-external";
    create_namespace(&client, ns).await;
    create_service(
        &client,
        ns,
        json!({
            "metadata": {"name": "ext"},
            "spec": {"type": "ExternalName", "externalName": "db.example.com"},
        }),
    )
    .await;
    let name = "ext.e2e-external.svc.cluster.local.";
    let cname = |reply: &hickory_proto::op::Message| -> Vec<String> {
        reply
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::CNAME)
            .map(|r| r.data.to_string())
            .collect()
    };
    let mut target = "db.example.com.";
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    for step in 0..2 {
        let deadline = Instant::now() + FOLLOW;
        loop {
            let reply = ask(stack.dns, name, RecordType::CNAME).await;
            if let Some(reply) = &reply
                && cname(reply) == [target]
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name} CNAME: want {target} within {FOLLOW:?}, last reply {reply:?}\n{}",
                stack.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if step == 0 {
            let patch = json!({"spec": {"externalName": "other.example.org"}});
            ok(
                "patch service",
                api.patch("ext", &PatchParams::default(), &Patch::Merge(&patch))
                    .await,
            );
            target = "other.example.org.";
        }
    }
    ok(
        "delete service",
        api.delete("ext", &DeleteParams::default()).await,
    );
    expect(stack, name, RecordType::CNAME, Want::NxDomain).await;
    delete_namespace(&client, ns).await;
}

#[tokio::test]
async fn dual_stack_service_answers_a_and_aaaa() {
    let stack = shared();
    let client = stack.admin().await;
    let ns = "e2e-dual";
    create_namespace(&client, ns).await;
    let svc = create_service(
        &client,
        ns,
        json!({
            "metadata": {"name": "dual"},
            "spec": {
                "ipFamilyPolicy": "RequireDualStack",
                "ipFamilies": ["IPv4", "IPv6"],
                "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}],
            },
        }),
    )
    .await;
    let ips = cluster_ips(&svc);
    assert_eq!(ips.len(), 2, "two cluster IPs: {ips:?}");
    let (v4, v6) = (ips[0].clone(), ips[1].clone());
    assert!(v4.contains('.') && v6.contains(':'), "{ips:?}");
    let name = "dual.e2e-dual.svc.cluster.local.";
    expect(stack, name, RecordType::A, answers(&[&v4])).await;
    expect(stack, name, RecordType::AAAA, answers(&[&v6])).await;
    expect(
        stack,
        "_dns._udp.dual.e2e-dual.svc.cluster.local.",
        RecordType::SRV,
        // One entry per cluster IP (weight 50 each), the same target answered once.
        answers(&[&format!("0 50 53 {name}")]),
    )
    .await;

    // Down to single-stack IPv4: AAAA becomes NODATA.
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    let patch = json!({"spec": {
        "ipFamilyPolicy": "SingleStack",
        "ipFamilies": ["IPv4"],
        "clusterIPs": [v4],
    }});
    ok(
        "patch service",
        api.patch("dual", &PatchParams::default(), &Patch::Merge(&patch))
            .await,
    );
    expect(stack, name, RecordType::AAAA, Want::NoData).await;
    expect(stack, name, RecordType::A, answers(&[&v4])).await;
    expect(
        stack,
        "_dns._udp.dual.e2e-dual.svc.cluster.local.",
        RecordType::SRV,
        answers(&[&format!("0 100 53 {name}")]),
    )
    .await;
    delete_namespace(&client, ns).await;
}

#[tokio::test]
async fn verified_pod_records_follow_pod_ips() {
    let stack = shared();
    let client = stack.admin().await;
    let ns = "e2e-pods";
    create_namespace(&client, ns).await;
    let name = "10-244-2-5.e2e-pods.pod.cluster.local.";
    expect(stack, name, RecordType::A, Want::NxDomain).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod: Pod = obj(json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/none:1"}]},
    }));
    ok(
        "create pod",
        pods.create(&PostParams::default(), &pod).await,
    );
    // No IP yet (no scheduler or kubelet): still no record.
    expect(stack, name, RecordType::A, Want::NxDomain).await;
    let status = json!({"status": {
        "phase": "Running",
        "podIP": "10.244.2.5",
        "podIPs": [{"ip": "10.244.2.5"}],
    }});
    ok(
        "patch pod status",
        pods.patch_status("p", &PatchParams::default(), &Patch::Merge(&status))
            .await,
    );
    expect(stack, name, RecordType::A, answers(&["10.244.2.5"])).await;
    ok(
        "delete pod",
        pods.delete("p", &DeleteParams::default().grace_period(0))
            .await,
    );
    expect(stack, name, RecordType::A, Want::NxDomain).await;
    delete_namespace(&client, ns).await;
}

/// Answers are served while the apiserver is down, and catch up once it is back.
#[tokio::test]
async fn answers_survive_an_apiserver_restart() {
    let mut stack = ok("restart stack", Stack::start("restart").await);
    let client = stack.admin().await;
    let ns = "e2e-restart";
    create_namespace(&client, ns).await;
    let before = create_service(
        &client,
        ns,
        json!({"metadata": {"name": "before"}, "spec": {"ports": [{"port": 80}]}}),
    )
    .await;
    let before_ip = cluster_ips(&before).first().cloned().unwrap_or_default();
    let before_name = "before.e2e-restart.svc.cluster.local.";
    expect(&stack, before_name, RecordType::A, answers(&[&before_ip])).await;

    stack.kill_apiserver();
    // Served from what clusterdns has, for a while, with the apiserver gone.
    let down_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < down_until {
        serves(&stack, stack.dns, before_name, &before_ip).await;
        serves(
            &stack,
            stack.dns,
            "kubernetes.default.svc.cluster.local.",
            "10.96.0.1",
        )
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    stack.restart_apiserver().await;
    let client = stack.admin().await;
    let after = create_service(
        &client,
        ns,
        json!({"metadata": {"name": "after"}, "spec": {"ports": [{"port": 80}]}}),
    )
    .await;
    let after_ip = cluster_ips(&after).first().cloned().unwrap_or_default();
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    ok(
        "delete service",
        api.delete("before", &DeleteParams::default()).await,
    );
    // Still answered while the watch reconnects; then the changes arrive.
    serves(
        &stack,
        stack.dns,
        "kubernetes.default.svc.cluster.local.",
        "10.96.0.1",
    )
    .await;
    let changed = Instant::now();
    expect_within(
        &stack,
        CATCH_UP,
        "after.e2e-restart.svc.cluster.local.",
        RecordType::A,
        &answers(&[&after_ip]),
    )
    .await;
    expect(&stack, before_name, RecordType::A, Want::NxDomain).await;
    // A figure for the report (`--nocapture`), not an assertion.
    eprintln!(
        "apiserver restart: changes made after it were answered {:?} later",
        changed.elapsed()
    );

    // And, caught up, changes follow within a second again.
    ok(
        "delete service",
        api.delete("after", &DeleteParams::default()).await,
    );
    expect(
        &stack,
        "after.e2e-restart.svc.cluster.local.",
        RecordType::A,
        Want::NxDomain,
    )
    .await;
}

/// One query must be answered at once with `ip`.
async fn serves(stack: &Stack, dns: SocketAddr, name: &str, ip: &str) {
    let reply = ask(dns, name, RecordType::A).await;
    let seen = reply.as_ref().map(observed);
    assert_eq!(
        seen,
        Some(answers(&[ip])),
        "{name} A while the apiserver is down or reconnecting\n{}",
        stack.logs()
    );
}
