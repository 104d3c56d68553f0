//! `kubernetes [ZONES...] [{ options }]` to a typed [`Config`]: pure parsing, one function per
//! group of properties. Both the wiring (`setup`) and the reload cache (`shared`) read `Config`;
//! it imports neither.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::rr::Name;

use super::lookup::{Options, PodMode};
use super::selector::Selector;
use crate::corefile::{Dispenser, Location, SetupError, Token};
use crate::dns::cidr;
use crate::dns::ip::is_reverse;

/// `ttl` upper bound (CoreDNS).
const MAX_TTL: u32 = 3600;
/// `startup_timeout` default.
const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(5);

/// API client settings of the Kubernetes API source. `apiserver_qps`, `apiserver_burst` and
/// `apiserver_max_inflight` are validated but have no effect (kube-rs has no client rate limiter).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ApiConfig {
    pub(crate) endpoint: Option<String>,
    pub(crate) tls: Option<(PathBuf, PathBuf, PathBuf)>,
    pub(crate) kubeconfig: Option<(PathBuf, Option<String>)>,
    pub(crate) qps: Option<f64>,
    pub(crate) burst: Option<u32>,
    pub(crate) max_inflight: Option<u32>,
}

/// The parsed directive.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Config {
    pub(crate) opts: Options,
    /// `fallthrough`: `None` = off; an empty list = every zone.
    pub(crate) fallthrough: Option<Vec<Name>>,
    pub(crate) labels: Option<Selector>,
    pub(crate) namespace_labels: Option<Selector>,
    pub(crate) startup_timeout: Duration,
    pub(crate) api: ApiConfig,
    /// `manifests PATH...` (our extension), resolved against the Corefile's directory, with the
    /// location of the `manifests` token for load errors.
    pub(crate) manifests: Option<(Location, Vec<PathBuf>)>,
}

/// Parse the directive. `block_zones` are the server block's zones (the default), `base_dir`
/// the Corefile's directory.
pub(crate) fn parse(
    d: &mut Dispenser<'_>,
    block_zones: &[Name],
    base_dir: &Path,
) -> Result<Config, SetupError> {
    let mut config = Config {
        opts: Options::new(zones(d, block_zones)?),
        fallthrough: None,
        labels: None,
        namespace_labels: None,
        startup_timeout: DEFAULT_STARTUP_TIMEOUT,
        api: ApiConfig::default(),
        manifests: None,
    };
    d.options(|line| match line.name().text.as_str() {
        "namespaces" | "namespace_labels" | "labels" => selection(line, &mut config),
        "pods" | "endpoint_pod_names" | "ttl" | "noendpoints" | "fallthrough" | "ignore" => {
            answers(line, &mut config)
        }
        "startup_timeout" | "manifests" => source(line, &mut config, base_dir),
        "endpoint"
        | "tls"
        | "kubeconfig"
        | "apiserver_qps"
        | "apiserver_burst"
        | "apiserver_max_inflight" => api_client(line, &mut config.api, base_dir),
        "multicluster" | "zonal" => Err(line.error_at_name(format!(
            "'{}' is not supported by this build",
            line.name().text
        ))),
        _ => Err(line.unknown_property()),
    })?;
    if config.opts.namespaces.is_some() && config.namespace_labels.is_some() {
        return Err(d.error_at_name("namespaces and namespace_labels cannot both be set"));
    }
    Ok(config)
}

/// The zones served: the arguments (names and CIDRs, deduplicated) or the block's zones; at
/// least one must be a forward zone.
fn zones(d: &mut Dispenser<'_>, block_zones: &[Name]) -> Result<Vec<Name>, SetupError> {
    let mut zones: Vec<Name> = Vec::new();
    for token in d.remaining_args() {
        for zone in zones_of(d, token)? {
            if !zones.contains(&zone) {
                zones.push(zone);
            }
        }
    }
    if zones.is_empty() {
        zones = block_zones.to_vec();
    }
    if !zones.iter().any(|z| !is_reverse(z)) {
        return Err(d.error_at_name("non-reverse zone name must be used"));
    }
    Ok(zones)
}

/// A zone argument: a CIDR (expanded to reverse zones) or a name, made lower-case and fully
/// qualified.
fn zones_of(d: &Dispenser<'_>, token: &Token) -> Result<Vec<Name>, SetupError> {
    match cidr::parse(&token.text) {
        Ok(Some(net)) => return Ok(cidr::reverse_zones(net)),
        Ok(None) => {}
        Err(e) => return Err(d.error_at(token, e.to_string())),
    }
    let mut text = token.text.to_ascii_lowercase();
    if !text.ends_with('.') {
        text.push('.');
    }
    Name::from_ascii(&text)
        .map(|n| vec![n])
        .map_err(|e| d.error_at(token, format!("invalid zone '{}': {e}", token.text)))
}

/// What is selected: `namespaces NS...`, `namespace_labels SELECTOR`, `labels SELECTOR`.
fn selection(line: &mut Dispenser<'_>, config: &mut Config) -> Result<(), SetupError> {
    match line.name().text.as_str() {
        "namespaces" => {
            let set: HashSet<Box<str>> = line
                .at_least_one("one or more namespaces")?
                .iter()
                .map(|t| t.text.as_str().into())
                .collect();
            config.opts.namespaces = Some(set);
        }
        "namespace_labels" => config.namespace_labels = Some(selector(line)?),
        _ => config.labels = Some(selector(line)?),
    }
    Ok(())
}

/// A label selector: the rest of the line, joined by spaces.
fn selector(line: &mut Dispenser<'_>) -> Result<Selector, SetupError> {
    let args = line.at_least_one("a label selector")?;
    let text = args
        .iter()
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let first = args
        .first()
        .map_or_else(|| line.location(), |t| &t.location);
    Selector::parse(&text).map_err(|e| line.error(first, e.to_string()))
}

/// How answers are shaped: `pods`, `endpoint_pod_names`, `ttl`, `noendpoints`, `fallthrough`,
/// `ignore`.
fn answers(line: &mut Dispenser<'_>, config: &mut Config) -> Result<(), SetupError> {
    let opts = &mut config.opts;
    match line.name().text.as_str() {
        "pods" => {
            let arg = line.one_arg("disabled, verified or insecure")?;
            opts.pods = match arg.text.as_str() {
                "disabled" => PodMode::Disabled,
                "insecure" => PodMode::Insecure,
                "verified" => PodMode::Verified,
                other => {
                    return Err(line.error_at(
                        arg,
                        format!(
                            "wrong value for pods: {other},  must be one of: disabled, verified, insecure"
                        ),
                    ));
                }
            };
        }
        "endpoint_pod_names" => opts.endpoint_pod_names = true,
        "noendpoints" => opts.noendpoints = true,
        "ttl" => {
            let arg = line.one_arg("a TTL in seconds")?;
            opts.ttl = arg
                .text
                .parse::<u32>()
                .ok()
                .filter(|t| *t <= MAX_TTL)
                .ok_or_else(|| {
                    line.error_at(
                        arg,
                        format!("ttl must be in range [0, {MAX_TTL}]: {}", arg.text),
                    )
                })?;
        }
        "fallthrough" => {
            let mut fall = Vec::new();
            for token in line.remaining_args() {
                fall.extend(zones_of(line, token)?);
            }
            config.fallthrough = Some(fall);
        }
        _ => {
            // `ignore`: a bare `ignore` is accepted and does nothing; extra words after the
            // value are ignored (CoreDNS).
            if let Some(arg) = line.remaining_args().first() {
                if arg.text != "empty_service" {
                    return Err(
                        line.error_at(arg, format!("unable to parse ignore value: '{}'", arg.text))
                    );
                }
                opts.ignore_empty_service = true;
            }
        }
    }
    Ok(())
}

/// Where the data comes from and how long start-up waits: `startup_timeout`, `manifests`.
fn source(
    line: &mut Dispenser<'_>,
    config: &mut Config,
    base_dir: &Path,
) -> Result<(), SetupError> {
    if line.name().text == "startup_timeout" {
        let arg = line.one_arg("a duration")?;
        config.startup_timeout = line.duration(arg)?;
    } else {
        let paths = line
            .at_least_one("one or more files or directories")?
            .iter()
            .map(|t| base_dir.join(&t.text))
            .collect();
        config.manifests = Some((line.name().location.clone(), paths));
    }
    Ok(())
}

/// How the API server is reached: `endpoint`, `tls`, `kubeconfig`, `apiserver_*`.
fn api_client(
    line: &mut Dispenser<'_>,
    api: &mut ApiConfig,
    base_dir: &Path,
) -> Result<(), SetupError> {
    let name = line.name();
    match name.text.as_str() {
        "endpoint" => {
            let args = line.at_least_one("an API server URL")?;
            if args.len() > 1 {
                tracing::warn!(plugin = "kubernetes", location = %name.location, "multiple endpoints given; only the first is used");
            }
            api.endpoint = args.first().map(|t| t.text.clone());
        }
        "tls" => {
            let [cert, key, ca] = line.remaining_args() else {
                return Err(
                    line.error_at_name("tls needs exactly three arguments: CERT KEY CACERT")
                );
            };
            api.tls = Some((
                base_dir.join(&cert.text),
                base_dir.join(&key.text),
                base_dir.join(&ca.text),
            ));
        }
        "kubeconfig" => {
            api.kubeconfig = match line.remaining_args() {
                [file] => Some((base_dir.join(&file.text), None)),
                [file, context] => Some((base_dir.join(&file.text), Some(context.text.clone()))),
                _ => return Err(line.error_at_name("kubeconfig needs FILE [CONTEXT]")),
            };
        }
        "apiserver_qps" => {
            let arg = line.one_arg("a number")?;
            let qps = arg
                .text
                .parse::<f64>()
                .ok()
                .filter(|q| q.is_finite() && *q >= 0.0)
                .ok_or_else(|| {
                    line.error_at(
                        arg,
                        format!("apiserver_qps must be a number >= 0: {}", arg.text),
                    )
                })?;
            api.qps = Some(qps);
        }
        _ => {
            let arg = line.one_arg("an integer")?;
            let n = arg.text.parse::<u32>().map_err(|_| {
                line.error_at(
                    arg,
                    format!("{} must be an integer >= 0: {}", name.text, arg.text),
                )
            })?;
            if name.text == "apiserver_burst" {
                api.burst = Some(n);
            } else {
                api.max_inflight = Some(n);
            }
        }
    }
    Ok(())
}
