//! `kubernetes [ZONES...] [{ options }]`: the Corefile directive to a typed configuration, and
//! the wiring of a configured plugin (store, source) into the server block.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::Name;

use super::Kubernetes;
use super::index::Store;
use super::lookup::{Options, PodMode};
use super::selector::Selector;
use super::source::api::{ApiSettings, ApiSource, ClientSource};
use super::source::manifests::{Filter, ManifestSource};
use crate::corefile::{Dispenser, Location, Token};
use crate::dns::cidr;
use crate::dns::ip::is_reverse;
use crate::plugin::{BlockSetup, SetupError};

const PLUGIN: &str = "kubernetes";
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

fn err(location: &Location, message: impl Into<String>) -> SetupError {
    SetupError::new(PLUGIN, location, message)
}

/// A zone argument: a CIDR (expanded to reverse zones) or a name, made lower-case and fully
/// qualified.
fn zones_of(token: &Token) -> Result<Vec<Name>, SetupError> {
    match cidr::parse(&token.text) {
        Ok(Some(net)) => return Ok(cidr::reverse_zones(net)),
        Ok(None) => {}
        Err(e) => return Err(err(&token.location, e.to_string())),
    }
    let mut text = token.text.to_ascii_lowercase();
    if !text.ends_with('.') {
        text.push('.');
    }
    Name::from_ascii(&text).map(|n| vec![n]).map_err(|e| {
        err(
            &token.location,
            format!("invalid zone '{}': {e}", token.text),
        )
    })
}

fn no_args(line: &mut Dispenser<'_>) -> Result<(), SetupError> {
    match line.next_arg() {
        None => Ok(()),
        Some(extra) => Err(err(
            &extra.location,
            format!(
                "'{}' takes no arguments, got '{}'",
                line.name().text,
                extra.text
            ),
        )),
    }
}

fn need_args<'a>(line: &mut Dispenser<'a>) -> Result<&'a [Token], SetupError> {
    let args = line.remaining_args();
    if args.is_empty() {
        return Err(err(
            &line.location_after(),
            format!("'{}' needs an argument", line.name().text),
        ));
    }
    Ok(args)
}

fn one_arg<'a>(line: &mut Dispenser<'a>) -> Result<&'a Token, SetupError> {
    let args = need_args(line)?;
    match args {
        [one] => Ok(one),
        [_, extra, ..] => Err(err(
            &extra.location,
            format!("'{}' takes one argument", line.name().text),
        )),
        [] => Err(err(&line.location_after(), "missing argument")),
    }
}

fn selector(line: &mut Dispenser<'_>) -> Result<Selector, SetupError> {
    let args = need_args(line)?;
    let text = args
        .iter()
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let first = args
        .first()
        .map_or_else(|| line.location().clone(), |t| t.location.clone());
    Selector::parse(&text).map_err(|e| err(&first, e.to_string()))
}

/// Parse the directive. `block_zones` are the server block's zones (the default), `base_dir`
/// the Corefile's directory.
pub(crate) fn parse(
    d: &mut Dispenser<'_>,
    block_zones: &[Name],
    base_dir: &Path,
) -> Result<Config, SetupError> {
    let mut zones: Vec<Name> = Vec::new();
    for token in d.remaining_args() {
        for zone in zones_of(token)? {
            if !zones.contains(&zone) {
                zones.push(zone);
            }
        }
    }
    if zones.is_empty() {
        zones = block_zones.to_vec();
    }
    if !zones.iter().any(|z| !is_reverse(z)) {
        return Err(err(
            &d.name().location,
            "non-reverse zone name must be used",
        ));
    }
    let mut opts = Options::new(zones);
    let mut config = Config {
        opts: opts.clone(),
        fallthrough: None,
        labels: None,
        namespace_labels: None,
        startup_timeout: DEFAULT_STARTUP_TIMEOUT,
        api: ApiConfig::default(),
        manifests: None,
    };

    for mut line in d.block() {
        let name = line.name();
        match name.text.as_str() {
            "namespaces" => {
                let set: HashSet<Box<str>> = need_args(&mut line)?
                    .iter()
                    .map(|t| t.text.as_str().into())
                    .collect();
                opts.namespaces = Some(set);
            }
            "namespace_labels" => config.namespace_labels = Some(selector(&mut line)?),
            "labels" => config.labels = Some(selector(&mut line)?),
            "pods" => {
                let arg = one_arg(&mut line)?;
                opts.pods = match arg.text.as_str() {
                    "disabled" => PodMode::Disabled,
                    "insecure" => PodMode::Insecure,
                    "verified" => PodMode::Verified,
                    other => {
                        return Err(err(
                            &arg.location,
                            format!(
                                "wrong value for pods: {other},  must be one of: disabled, verified, insecure"
                            ),
                        ));
                    }
                };
            }
            "endpoint_pod_names" => {
                no_args(&mut line)?;
                opts.endpoint_pod_names = true;
            }
            "ttl" => {
                let arg = one_arg(&mut line)?;
                opts.ttl = arg
                    .text
                    .parse::<u32>()
                    .ok()
                    .filter(|t| *t <= MAX_TTL)
                    .ok_or_else(|| {
                        err(
                            &arg.location,
                            format!("ttl must be in range [0, {MAX_TTL}]: {}", arg.text),
                        )
                    })?;
            }
            "noendpoints" => {
                no_args(&mut line)?;
                opts.noendpoints = true;
            }
            "fallthrough" => {
                let mut fall = Vec::new();
                for token in line.remaining_args() {
                    fall.extend(zones_of(token)?);
                }
                config.fallthrough = Some(fall);
            }
            "ignore" => {
                // A bare `ignore` is accepted and does nothing; extra words after the value are
                // ignored (CoreDNS).
                if let Some(arg) = line.remaining_args().first() {
                    if arg.text != "empty_service" {
                        return Err(err(
                            &arg.location,
                            format!("unable to parse ignore value: '{}'", arg.text),
                        ));
                    }
                    opts.ignore_empty_service = true;
                }
            }
            "startup_timeout" => {
                let arg = one_arg(&mut line)?;
                config.startup_timeout = crate::corefile::parse_duration(&arg.text)
                    .map_err(|_| err(&arg.location, format!("invalid duration '{}'", arg.text)))?;
            }
            "endpoint" => {
                let args = need_args(&mut line)?;
                if args.len() > 1 {
                    tracing::warn!(plugin = PLUGIN, location = %name.location, "multiple endpoints given; only the first is used");
                }
                config.api.endpoint = args.first().map(|t| t.text.clone());
            }
            "tls" => {
                let args = line.remaining_args();
                let [cert, key, ca] = args else {
                    return Err(err(
                        &name.location,
                        "tls needs exactly three arguments: CERT KEY CACERT",
                    ));
                };
                config.api.tls = Some((
                    base_dir.join(&cert.text),
                    base_dir.join(&key.text),
                    base_dir.join(&ca.text),
                ));
            }
            "kubeconfig" => {
                let args = line.remaining_args();
                config.api.kubeconfig = match args {
                    [file] => Some((base_dir.join(&file.text), None)),
                    [file, context] => {
                        Some((base_dir.join(&file.text), Some(context.text.clone())))
                    }
                    _ => return Err(err(&name.location, "kubeconfig needs FILE [CONTEXT]")),
                };
            }
            "apiserver_qps" => {
                let arg = one_arg(&mut line)?;
                let qps = arg
                    .text
                    .parse::<f64>()
                    .ok()
                    .filter(|q| q.is_finite() && *q >= 0.0)
                    .ok_or_else(|| {
                        err(
                            &arg.location,
                            format!("apiserver_qps must be a number >= 0: {}", arg.text),
                        )
                    })?;
                config.api.qps = Some(qps);
            }
            "apiserver_burst" | "apiserver_max_inflight" => {
                let arg = one_arg(&mut line)?;
                let n = arg.text.parse::<u32>().map_err(|_| {
                    err(
                        &arg.location,
                        format!("{} must be an integer >= 0: {}", name.text, arg.text),
                    )
                })?;
                if name.text == "apiserver_burst" {
                    config.api.burst = Some(n);
                } else {
                    config.api.max_inflight = Some(n);
                }
            }
            "manifests" => {
                let paths = need_args(&mut line)?
                    .iter()
                    .map(|t| base_dir.join(&t.text))
                    .collect();
                config.manifests = Some((name.location.clone(), paths));
            }
            "multicluster" | "zonal" => {
                return Err(err(
                    &name.location,
                    format!("'{}' is not supported by this build", name.text),
                ));
            }
            other => return Err(err(&name.location, format!("unknown property '{other}'"))),
        }
    }
    if opts.namespaces.is_some() && config.namespace_labels.is_some() {
        return Err(err(
            &d.name().location,
            "namespaces and namespace_labels cannot both be set",
        ));
    }
    config.opts = opts;
    Ok(config)
}

/// How often the manifests source looks for changed files.
const MANIFEST_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The registry's setup function: parse, build the store and source, add the plugin.
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    if block.plugins.iter().any(|p| p.name() == PLUGIN) {
        return Err(err(
            &d.name().location,
            "this plugin can only be used once per Server Block",
        ));
    }
    let config = parse(d, &block.zones, &block.base_dir)?;
    let store = Arc::new(Store::new());
    let source = match &config.manifests {
        Some((location, paths)) => {
            let labels = config.labels.clone();
            let namespace_labels = config.namespace_labels.clone();
            type Pred =
                Box<dyn Fn(&std::collections::BTreeMap<String, String>) -> bool + Send + Sync>;
            let filter = Filter {
                labels: labels.map(|s| Box::new(move |l: &_| s.matches(l)) as Pred),
                namespace_labels: namespace_labels
                    .map(|s| Box::new(move |l: &_| s.matches(l)) as Pred),
            };
            let sink_store = Arc::clone(&store);
            let source = ManifestSource::new(
                paths.clone(),
                filter,
                Box::new(move |objects| sink_store.replace(objects)),
            );
            let objects = source
                .load()
                .map_err(|e| err(location, format!("manifests: {e}")))?;
            store.replace(objects);
            store.set_synced(true);
            Some(Arc::new(source))
        }
        None => None,
    };
    let api = match source {
        Some(_) => None,
        None => Some(Arc::new(ApiSource::new(
            api_settings(&config, d.name())?,
            Arc::clone(&store),
        ))),
    };
    let plugin = Kubernetes::new(config, store, source, MANIFEST_POLL_INTERVAL);
    block.plugins.push(Arc::new(match api {
        Some(api) => plugin.with_api(api),
        None => plugin,
    }));
    Ok(())
}

/// The API source's settings: the client from `kubeconfig` (wins), `endpoint` (+ `tls`), or the
/// in-cluster service account; selectors; which kinds to watch.
fn api_settings(config: &Config, directive: &Token) -> Result<ApiSettings, SetupError> {
    let api = &config.api;
    let client = if let Some((path, context)) = &api.kubeconfig {
        ClientSource::kubeconfig(path, context.as_deref())
    } else if let Some(url) = &api.endpoint {
        let tls = api
            .tls
            .as_ref()
            .map(|(c, k, a)| (c.as_path(), k.as_path(), a.as_path()));
        ClientSource::endpoint(url, tls)
    } else {
        Ok(ClientSource::InCluster)
    };
    let client = client.map_err(|e| err(&directive.location, e.to_string()))?;
    Ok(ApiSettings {
        client,
        labels: config.labels.as_ref().map(ToString::to_string),
        namespace_labels: config.namespace_labels.as_ref().map(ToString::to_string),
        endpoints: !config.opts.noendpoints,
        pods: config.opts.pods == PodMode::Verified,
        startup_timeout: config.startup_timeout,
    })
}

#[cfg(test)]
mod tests;
