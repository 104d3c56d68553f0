//! The `api` and `kube-dns` checks, against the Kubernetes API: reachable, authenticated, the
//! RBAC verbs the kubernetes plugin needs, what it would index, namespaces whose names shadow
//! real domains, and the cluster DNS Service (exists, ready endpoints, ports).
//!
//! Only `list` (and `create` of the two self-review kinds every authenticated user may create)
//! is used, so the checks run with the server's own ClusterRole.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Resource};

use super::corefile::Setup;
use super::{Check, Options};
use crate::plugin::kubernetes::lookup::PodMode;
use crate::plugin::kubernetes::model::Object;
use crate::plugin::kubernetes::source::convert;

const GROUP: &str = "api";

/// Timeouts of the doctor's API requests: a stuck apiserver fails the check, not the command.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// CoreDNS's pod field selector: the pods the plugin lists.
const POD_FIELD_SELECTOR: &str =
    "status.phase!=Succeeded,status.phase!=Failed,status.phase!=Unknown";

/// Top-level domains a namespace should not be named after: with the pods' search path, a
/// Service `NAME` in namespace `com` answers the pods' lookups of `NAME.com`.
const TLDS: &[&str] = &[
    "com",
    "net",
    "org",
    "io",
    "dev",
    "app",
    "local",
    "internal",
    "lan",
    "home",
    "corp",
    "test",
    "example",
    "localhost",
    "arpa",
    "int",
    "edu",
    "gov",
    "mil",
    "info",
    "biz",
    "co",
    "me",
    "ai",
    "cloud",
    "tech",
    "xyz",
    "site",
    "online",
    "us",
    "uk",
    "de",
    "eu",
    "fr",
    "nl",
    "cn",
    "jp",
    "ru",
    "in",
    "br",
    "au",
    "ca",
    "ch",
    "se",
    "tv",
    "cc",
    "sh",
    "so",
    "to",
    "ly",
    "gg",
    "run",
    "page",
    "zone",
    "network",
    "systems",
    "services",
    "digital",
    "global",
    "website",
    "store",
];

/// Labels of the cluster DNS schema: a namespace named like one makes names ambiguous.
const SCHEMA_LABELS: &[&str] = &["svc", "pod", "cluster", "dns", "dns-version"];

/// A Kubernetes API client and where its configuration came from.
pub struct ApiClient {
    pub client: Result<Client, Check>,
    /// Where the credentials came from, for messages.
    pub source: String,
    /// A kubeconfig file the doctor found by itself (`--kubeconfig`, `$KUBECONFIG`,
    /// `~/.kube/config`): `doctor query` gives it to the kubernetes plugin, which would
    /// otherwise use the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
}

fn config_error(source: &str, error: impl std::fmt::Display) -> Check {
    Check::fail(
        GROUP,
        "api.config",
        format!("no usable Kubernetes API configuration ({source}): {error}"),
        "run the doctor inside the clusterdns pod (in-cluster service account), or pass \
         `--kubeconfig PATH` (or set $KUBECONFIG)",
    )
}

async fn from_kubeconfig(path: &Path, context: Option<&str>) -> Result<kube::Config, String> {
    let kubeconfig = Kubeconfig::read_from(path).map_err(|e| e.to_string())?;
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| e.to_string())
}

/// `$KUBECONFIG`'s first existing file, else `~/.kube/config` if it exists.
fn default_kubeconfig() -> Option<PathBuf> {
    if let Some(list) = std::env::var_os("KUBECONFIG")
        && let Some(path) = std::env::split_paths(&list).find(|p| p.is_file())
    {
        return Some(path);
    }
    let home = PathBuf::from(std::env::var_os("HOME")?);
    Some(home.join(".kube/config")).filter(|p| p.is_file())
}

/// The API client: `--kubeconfig`, else the Corefile's `kubeconfig` or `endpoint`, else the
/// in-cluster service account, else `$KUBECONFIG` or `~/.kube/config`.
pub async fn connect(flag: Option<&Path>, setup: &Setup) -> ApiClient {
    let api = setup.kubernetes.as_ref().map(|k| &k.config.api);
    let (source, config, kubeconfig) = if let Some(path) = flag {
        let source = format!("--kubeconfig {}", path.display());
        (
            source,
            from_kubeconfig(path, None).await,
            Some(path.to_path_buf()),
        )
    } else if let Some((path, context)) = api.and_then(|a| a.kubeconfig.as_ref()) {
        let source = format!("the Corefile's kubeconfig {}", path.display());
        (
            source,
            from_kubeconfig(path, context.as_deref()).await,
            None,
        )
    } else if let Some(url) = api.and_then(|a| a.endpoint.as_ref()) {
        let source = format!("the Corefile's endpoint {url}");
        let config = url
            .parse::<hyper::http::Uri>()
            .map_err(|e| e.to_string())
            .map(|uri| {
                let mut config = kube::Config::new(uri);
                if let Some((cert, key, ca)) = api.and_then(|a| a.tls.as_ref()) {
                    config.auth_info.client_certificate = Some(cert.display().to_string());
                    config.auth_info.client_key = Some(key.display().to_string());
                    config.root_cert_file = Some(ca.clone());
                }
                config
            });
        (source, config, None)
    } else if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        let source = "the in-cluster service account".to_owned();
        (
            source,
            kube::Config::incluster().map_err(|e| e.to_string()),
            None,
        )
    } else if let Some(path) = default_kubeconfig() {
        let source = format!("kubeconfig {}", path.display());
        (source, from_kubeconfig(&path, None).await, Some(path))
    } else {
        let source = "none found".to_owned();
        let error = Err(
            "not in a pod (KUBERNETES_SERVICE_HOST unset), no --kubeconfig, \
                         $KUBECONFIG or ~/.kube/config"
                .to_owned(),
        );
        (source, error, None)
    };
    let client = config
        .map_err(|e| config_error(&source, e))
        .and_then(|mut config| {
            config.connect_timeout = Some(REQUEST_TIMEOUT);
            config.read_timeout = Some(REQUEST_TIMEOUT);
            Client::try_from(config).map_err(|e| config_error(&source, e))
        });
    ApiClient {
        client,
        source,
        kubeconfig,
    }
}

/// What the API checks learnt that other checks need.
#[derive(Debug, Default)]
pub struct Facts {
    /// ClusterIPs of the cluster DNS Service.
    pub kube_dns_ips: Vec<IpAddr>,
    /// Addresses of its endpoints: the clusterdns pods.
    pub kube_dns_endpoints: Vec<IpAddr>,
}

/// The objects the kubernetes plugin would list, converted as it converts them.
#[derive(Debug, Default)]
pub struct Lists {
    pub services: Vec<core::Service>,
    pub slices: Vec<discovery::EndpointSlice>,
    pub namespaces: Vec<core::Namespace>,
    /// `None` when the configuration does not watch pods.
    pub pods: Option<Vec<core::Pod>>,
}

impl Lists {
    /// The model objects, as the plugin would index them.
    pub(crate) fn objects(&self) -> Vec<Object> {
        let mut out = Vec::new();
        out.extend(
            self.services
                .iter()
                .filter_map(|s| convert::service(s).ok())
                .map(Object::Service),
        );
        out.extend(
            self.slices
                .iter()
                .filter_map(|s| convert::endpoint_slice(s).ok())
                .map(Object::EndpointSlice),
        );
        out.extend(
            self.namespaces
                .iter()
                .filter_map(|n| convert::namespace(n).ok())
                .map(Object::Namespace),
        );
        for pod in self.pods.iter().flatten() {
            if let Ok(Some(p)) = convert::pod(pod) {
                out.push(Object::Pod(p));
            }
        }
        out
    }
}

fn api_error(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            format!("{} ({} {})", status.message, status.code, status.reason)
        }
        other => other.to_string(),
    }
}

async fn list_all<K>(api: Api<K>, params: &ListParams) -> Result<Vec<K>, String>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(params)
        .await
        .map(|list| list.items)
        .map_err(|e| api_error(&e))
}

/// Lists what the kubernetes plugin of `setup` would watch, with its label selectors.
pub async fn list(client: &Client, setup: &Setup) -> Result<Lists, String> {
    let k8s = setup.kubernetes.as_ref().map(|k| &k.config);
    let labels = k8s.and_then(|k| k.labels.as_ref()).map(ToString::to_string);
    let ns_labels = k8s
        .and_then(|k| k.namespace_labels.as_ref())
        .map(ToString::to_string);
    let with = |selector: &Option<String>| match selector {
        Some(s) => ListParams::default().labels(s),
        None => ListParams::default(),
    };
    let services = list_all(Api::<core::Service>::all(client.clone()), &with(&labels))
        .await
        .map_err(|e| format!("services: {e}"))?;
    let endpoints = k8s.is_none_or(|k| !k.opts.noendpoints);
    let slices = if endpoints {
        list_all(
            Api::<discovery::EndpointSlice>::all(client.clone()),
            &with(&labels),
        )
        .await
        .map_err(|e| format!("endpointslices: {e}"))?
    } else {
        Vec::new()
    };
    let namespaces = list_all(
        Api::<core::Namespace>::all(client.clone()),
        &with(&ns_labels),
    )
    .await
    .map_err(|e| format!("namespaces: {e}"))?;
    let pods = if k8s.is_some_and(|k| k.opts.pods == PodMode::Verified) {
        let params = with(&labels).fields(POD_FIELD_SELECTOR);
        Some(
            list_all(Api::<core::Pod>::all(client.clone()), &params)
                .await
                .map_err(|e| format!("pods: {e}"))?,
        )
    } else {
        None
    };
    Ok(Lists {
        services,
        slices,
        namespaces,
        pods,
    })
}

/// The `api` and `kube-dns` checks.
pub async fn check(api: &ApiClient, setup: &Setup, opts: &Options) -> (Vec<Check>, Facts) {
    let mut checks = Vec::new();
    let mut facts = Facts::default();
    let client = match &api.client {
        Ok(client) => client,
        Err(check) => return (vec![check.clone()], facts),
    };
    match client.apiserver_version().await {
        Ok(info) => checks.push(Check::ok(
            GROUP,
            "api.reachable",
            format!(
                "the API server is reachable (Kubernetes {}, credentials from {})",
                info.git_version, api.source
            ),
        )),
        Err(error) => {
            checks.push(Check::fail(
                GROUP,
                "api.reachable",
                format!(
                    "the API server does not answer (credentials from {}): {}",
                    api.source,
                    api_error(&error)
                ),
                "check the API server address and the network path to it (in a pod: \
                 KUBERNETES_SERVICE_HOST/PORT and NetworkPolicy egress)",
            ));
            return (checks, facts);
        }
    }
    checks.push(whoami(client).await);
    checks.extend(rbac(client, setup).await);
    match list(client, setup).await {
        Ok(lists) => {
            checks.push(counts(&lists));
            checks.extend(namespaces(&lists, setup));
            let (kube_dns, found) = kube_dns(&lists, client, opts).await;
            checks.extend(kube_dns);
            facts = found;
        }
        Err(error) => checks.push(Check::fail(
            GROUP,
            "api.index",
            format!("cannot list what the kubernetes plugin watches: {error}"),
            "grant the ClusterRole of deploy/clusterdns.yaml (list and watch on services, \
             endpointslices, namespaces and pods)",
        )),
    }
    (checks, facts)
}

/// Authentication: who the API server says we are.
async fn whoami(client: &Client) -> Check {
    let review = SelfSubjectReview::default();
    match Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
    {
        Ok(review) => {
            let user = review.status.and_then(|s| s.user_info).unwrap_or_default();
            let name = user.username.unwrap_or_default();
            if name.is_empty() || name == "system:anonymous" {
                Check::fail(
                    GROUP,
                    "api.auth",
                    format!("the API server treats these credentials as anonymous ({name:?})"),
                    "give the pod its service account token (automountServiceAccountToken: true) \
                     or use a kubeconfig with valid credentials",
                )
            } else {
                let groups = user.groups.unwrap_or_default().join(", ");
                Check::ok(
                    GROUP,
                    "api.auth",
                    format!("authenticated as {name} (groups: {groups})"),
                )
            }
        }
        Err(kube::Error::Api(status)) if status.code == 401 => Check::fail(
            GROUP,
            "api.auth",
            format!(
                "the API server rejects these credentials: {}",
                status.message
            ),
            "renew the token or certificate (an expired service account token: restart the pod)",
        ),
        Err(error) => Check::warn(
            GROUP,
            "api.auth",
            format!(
                "cannot ask who we are (SelfSubjectReview): {}",
                api_error(&error)
            ),
            "SelfSubjectReview is GA since Kubernetes 1.28; on older API servers only the RBAC \
             checks below tell whether the credentials work",
        ),
    }
}

/// One kind the plugin may watch: (resource, API group, needed by this configuration, why not).
fn kinds(setup: &Setup) -> Vec<(&'static str, &'static str, Option<&'static str>)> {
    let k8s = setup.kubernetes.as_ref().map(|k| &k.config.opts);
    let slices = if k8s.is_some_and(|o| o.noendpoints) {
        Some("`noendpoints` is set")
    } else {
        None
    };
    let pods = if k8s.is_some_and(|o| o.pods == PodMode::Verified) {
        None
    } else {
        Some("only `pods verified` watches pods")
    };
    vec![
        ("services", "", None),
        ("endpointslices", "discovery.k8s.io", slices),
        ("namespaces", "", None),
        ("pods", "", pods),
    ]
}

/// SelfSubjectAccessReview of `list` and `watch` on every kind.
async fn rbac(client: &Client, setup: &Setup) -> Vec<Check> {
    let api = Api::<SelfSubjectAccessReview>::all(client.clone());
    let mut checks = Vec::new();
    for (resource, group, unneeded) in kinds(setup) {
        for verb in ["list", "watch"] {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        group: Some(group.to_owned()),
                        resource: Some(resource.to_owned()),
                        verb: Some(verb.to_owned()),
                        ..ResourceAttributes::default()
                    }),
                    ..SelfSubjectAccessReviewSpec::default()
                },
                ..SelfSubjectAccessReview::default()
            };
            let id = format!("api.rbac.{verb}.{resource}");
            let what = if group.is_empty() {
                format!("{verb} {resource}")
            } else {
                format!("{verb} {resource}.{group}")
            };
            let allowed = api
                .create(&PostParams::default(), &review)
                .await
                .map(|r| r.status.map(|s| (s.allowed, s.reason.unwrap_or_default())));
            checks.push(match (allowed, unneeded) {
                (Ok(Some((true, _))), _) => Check::ok(GROUP, id, format!("RBAC allows {what}")),
                (Ok(_), Some(why)) => Check::ok(
                    GROUP,
                    id,
                    format!("RBAC denies {what}: not needed ({why})"),
                ),
                (Ok(status), None) => Check::fail(
                    GROUP,
                    id,
                    format!(
                        "RBAC denies {what}{}: the kubernetes plugin cannot sync, and answers SERVFAIL until it does",
                        status
                            .map(|(_, reason)| reason)
                            .filter(|r| !r.is_empty())
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    ),
                    format!(
                        "add `{verb}` on `{resource}` (apiGroup \"{group}\") to the ClusterRole bound to clusterdns's service account (deploy/clusterdns.yaml: system:coredns)"
                    ),
                ),
                (Err(error), _) => Check::fail(
                    GROUP,
                    id,
                    format!("cannot review {what}: {}", api_error(&error)),
                    "SelfSubjectAccessReview is allowed to every authenticated user by default; check the authentication above",
                ),
            });
        }
    }
    checks
}

fn ready_endpoints(slices: &[&discovery::EndpointSlice]) -> usize {
    slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
        .map(|e| e.addresses.len())
        .sum()
}

fn counts(lists: &Lists) -> Check {
    let objects = lists.objects();
    let count = |kind: fn(&Object) -> bool| objects.iter().filter(|o| kind(o)).count();
    let services = count(|o| matches!(o, Object::Service(_)));
    let slices = count(|o| matches!(o, Object::EndpointSlice(_)));
    let namespaces = count(|o| matches!(o, Object::Namespace(_)));
    let ready: usize = objects
        .iter()
        .filter_map(|o| match o {
            Object::EndpointSlice(s) => {
                Some(s.endpoints.iter().map(|e| e.addresses.len()).sum::<usize>())
            }
            _ => None,
        })
        .sum();
    let pods = match &lists.pods {
        Some(_) => format!("{} Pods", count(|o| matches!(o, Object::Pod(_)))),
        None => "no Pods (not watched without `pods verified`)".to_owned(),
    };
    let listed = lists.services.len()
        + lists.slices.len()
        + lists.namespaces.len()
        + lists.pods.as_ref().map_or(0, Vec::len);
    let skipped = listed.saturating_sub(objects.len());
    let skipped = if skipped > 0 {
        format!("; {skipped} listed object(s) are not indexed (invalid, or pods without an IP)")
    } else {
        String::new()
    };
    Check::ok(
        GROUP,
        "api.index",
        format!(
            "the kubernetes plugin would index {services} Services, {slices} EndpointSlices ({ready} ready addresses), {namespaces} Namespaces, {pods}{skipped}"
        ),
    )
}

/// Namespaces named like a TLD or like a label of the cluster DNS schema.
fn namespaces(lists: &Lists, setup: &Setup) -> Vec<Check> {
    let zone_labels: Vec<String> = setup
        .kubernetes
        .as_ref()
        .map(|k| {
            k.zones()
                .iter()
                .flat_map(|z| z.iter().map(|l| String::from_utf8_lossy(l).to_lowercase()))
                .collect()
        })
        .unwrap_or_default();
    let zone = setup
        .kubernetes
        .as_ref()
        .and_then(|k| k.zones().first())
        .map_or_else(|| "cluster.local.".to_owned(), ToString::to_string);
    let mut services: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for svc in &lists.services {
        if let (Some(ns), Some(name)) = (&svc.metadata.namespace, &svc.metadata.name) {
            services.entry(ns.as_str()).or_default().push(name.as_str());
        }
    }
    let mut checks = Vec::new();
    for ns in &lists.namespaces {
        let Some(name) = ns.metadata.name.as_deref() else {
            continue;
        };
        let lower = name.to_ascii_lowercase();
        let in_ns = services.get(name).cloned().unwrap_or_default();
        if TLDS.contains(&lower.as_str()) {
            let shadowed = in_ns
                .iter()
                .map(|s| format!("{s}.{name}"))
                .collect::<Vec<_>>();
            let effect = if shadowed.is_empty() {
                format!(
                    "a Service created there (NAME) will answer pods' lookups of NAME.{name} through the search path (NAME.{name}.svc.{zone})"
                )
            } else {
                format!(
                    "its Services answer pods' lookups of {} instead of the real domains (search path: NAME.{name}.svc.{zone})",
                    shadowed.join(", ")
                )
            };
            checks.push(Check::warn(
                GROUP,
                format!("api.namespace.tld.{name}"),
                format!("namespace {name} is named like a top-level domain: {effect}"),
                format!("rename the namespace (e.g. {name}-apps); meanwhile pods should query external names as FQDNs with a trailing dot"),
            ));
        } else if SCHEMA_LABELS.contains(&lower.as_str()) || zone_labels.contains(&lower) {
            checks.push(Check::warn(
                GROUP,
                format!("api.namespace.zone.{name}"),
                format!(
                    "namespace {name} is named like a label of the cluster DNS names ({zone}): names such as NAME.{name}.svc.{zone} and NAME.svc.{zone} are easy to confuse, and short names resolve unexpectedly through the search path"
                ),
                format!("rename the namespace (e.g. {name}-apps)"),
            ));
        }
    }
    if checks.is_empty() {
        checks.push(Check::ok(
            GROUP,
            "api.namespaces",
            format!(
                "no namespace (of {}) is named like a top-level domain or a cluster DNS label",
                lists.namespaces.len()
            ),
        ));
    }
    checks
}

/// The cluster DNS Service: exists, ready endpoints, ports. Returns its ClusterIPs.
async fn kube_dns(lists: &Lists, client: &Client, opts: &Options) -> (Vec<Check>, Facts) {
    const G: &str = "kube-dns";
    let (ns, name) = (&opts.kube_dns_namespace, &opts.kube_dns_service);
    let mut checks = Vec::new();
    let found = lists.services.iter().find(|s| {
        s.metadata.namespace.as_deref() == Some(ns) && s.metadata.name.as_deref() == Some(name)
    });
    // The plugin's `labels` selector may hide the Service from `lists`; look it up by name.
    let listed;
    let service = match found {
        Some(s) => Some(s),
        None => {
            let params = ListParams::default().fields(&format!("metadata.name={name}"));
            listed = list_all(
                Api::<core::Service>::namespaced(client.clone(), ns),
                &params,
            )
            .await
            .unwrap_or_default();
            listed.first()
        }
    };
    let Some(service) = service else {
        checks.push(Check::fail(
            G,
            "kube-dns.service",
            format!("Service {ns}/{name} does not exist: pods' resolv.conf names its ClusterIP, so no pod can resolve anything"),
            "create it (deploy/clusterdns.yaml has one) with the ClusterIP the kubelets' --cluster-dns names",
        ));
        return (checks, Facts::default());
    };
    let spec = service.spec.clone().unwrap_or_default();
    let mut ips: Vec<IpAddr> = Vec::new();
    for ip in spec
        .cluster_ips
        .iter()
        .flatten()
        .chain(spec.cluster_ip.iter())
        .filter_map(|ip| ip.parse().ok())
    {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    let ips_text: Vec<String> = ips.iter().map(ToString::to_string).collect();
    checks.push(Check::ok(
        G,
        "kube-dns.service",
        format!(
            "Service {ns}/{name} exists (ClusterIP {})",
            if ips_text.is_empty() {
                "none".to_owned()
            } else {
                ips_text.join(", ")
            }
        ),
    ));
    // EndpointSlices of the Service, listed in its namespace by the service-name label.
    let params = ListParams::default().labels(&format!("{}={name}", convert::SERVICE_NAME_LABEL));
    let slices = list_all(
        Api::<discovery::EndpointSlice>::namespaced(client.clone(), ns),
        &params,
    )
    .await;
    let selector = spec
        .selector
        .as_ref()
        .map(|s| {
            s.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let mut endpoint_ips = Vec::new();
    checks.push(match slices {
        Ok(slices) => {
            endpoint_ips = slices
                .iter()
                .flat_map(|s| s.endpoints.iter())
                .flat_map(|e| e.addresses.iter())
                .filter_map(|a| a.parse().ok())
                .collect();
            let refs: Vec<&discovery::EndpointSlice> = slices.iter().collect();
            let ready = ready_endpoints(&refs);
            if ready > 0 {
                Check::ok(
                    G,
                    "kube-dns.endpoints",
                    format!(
                        "Service {ns}/{name} selects {ready} ready endpoint(s) in {} EndpointSlice(s)",
                        slices.len()
                    ),
                )
            } else {
                Check::fail(
                    G,
                    "kube-dns.endpoints",
                    format!(
                        "Service {ns}/{name} selects no ready pod ({} EndpointSlice(s), selector `{selector}`): queries to its ClusterIP time out",
                        slices.len()
                    ),
                    format!(
                        "check that clusterdns pods run and are ready (`kubectl -n {ns} get pods -l {selector}`; readiness is /ready on :8181) and that their labels match the Service's selector"
                    ),
                )
            }
        }
        Err(error) => Check::fail(
            G,
            "kube-dns.endpoints",
            format!("cannot list the EndpointSlices of {ns}/{name}: {error}"),
            "grant list on endpointslices.discovery.k8s.io (deploy/clusterdns.yaml)",
        ),
    });
    let ports = spec.ports.unwrap_or_default();
    let has = |port: i32, proto: &str| {
        ports
            .iter()
            .any(|p| p.port == port && p.protocol.as_deref().unwrap_or("TCP") == proto)
    };
    for (port, proto, needed) in [(53, "UDP", true), (53, "TCP", true), (9153, "TCP", false)] {
        let id = format!("kube-dns.port.{port}.{}", proto.to_ascii_lowercase());
        checks.push(if has(port, proto) {
            Check::ok(G, id, format!("Service {ns}/{name} exposes {port}/{proto}"))
        } else if needed {
            Check::fail(
                G,
                id,
                format!(
                    "Service {ns}/{name} does not expose {port}/{proto}: {} queries to it fail",
                    if proto == "UDP" { "most" } else { "truncated answers' TCP retries and TCP-only" }
                ),
                format!("add `- {{name: dns{}, port: 53, protocol: {proto}, targetPort: 53}}` to its ports", if proto == "TCP" { "-tcp" } else { "" }),
            )
        } else {
            Check::warn(
                G,
                id,
                format!("Service {ns}/{name} does not expose the metrics port {port}/{proto}"),
                "add `- {name: metrics, port: 9153, protocol: TCP}` so Prometheus can scrape it (as CoreDNS's Service does)",
            )
        });
    }
    let facts = Facts {
        kube_dns_ips: ips,
        kube_dns_endpoints: endpoint_ips,
    };
    (checks, facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tld_and_schema_namespaces_are_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Corefile");
        std::fs::write(&path, ".:53 {\n    kubernetes cluster.local\n}\n").unwrap();
        let Ok(setup) = super::super::corefile::load(&path, 53) else {
            panic!("Corefile does not load")
        };
        let ns = |name: &str| core::Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            ..Default::default()
        };
        let svc = core::Service {
            metadata: kube::api::ObjectMeta {
                name: Some("github".to_owned()),
                namespace: Some("com".to_owned()),
                ..Default::default()
            },
            ..Default::default()
        };
        let lists = Lists {
            services: vec![svc],
            namespaces: vec![ns("default"), ns("com"), ns("svc"), ns("cluster")],
            ..Lists::default()
        };
        let checks = namespaces(&lists, &setup);
        let ids: Vec<&str> = checks.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "api.namespace.tld.com",
                "api.namespace.zone.svc",
                "api.namespace.zone.cluster"
            ]
        );
        assert!(
            checks[0].message.contains("github.com"),
            "{}",
            checks[0].message
        );
        let clean = Lists {
            namespaces: vec![ns("default")],
            ..Lists::default()
        };
        assert_eq!(namespaces(&clean, &setup)[0].id, "api.namespaces");
    }
}
