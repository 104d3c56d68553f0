//! The registry's `kubernetes` setup: parse the directive ([`super::config`]) and wire the
//! configured plugin (store, source) into the server block.

use std::sync::Arc;
use std::time::Duration;

use super::Kubernetes;
use super::config::{Config, parse};
use super::index::Store;
use super::lookup::PodMode;
use super::source::api::{ApiSettings, ApiSource, ClientSource};
use super::source::manifests::{Filter, ManifestSource};
use crate::corefile::Dispenser;
use crate::plugin::{BlockSetup, SetupError};

/// How often the manifests source looks for changed files.
const MANIFEST_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The registry's setup function: parse, build the store and source, add the plugin.
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    let config = parse(d, &block.zones, &block.base_dir)?;
    // A reload with the same data source keeps the index (and source) in use: see `shared`.
    let key = super::shared::Key::new(&block.zones, &config);
    let reused = super::shared::find(&key);
    let reused_source = reused.as_ref().and_then(|(_, source)| source.clone());
    let store = reused.map_or_else(|| Arc::new(Store::new()), |(store, _)| store);
    let source = match &config.manifests {
        Some(_) if reused_source.is_some() => reused_source,
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
                .map_err(|e| d.error(location, format!("manifests: {e}")))?;
            store.replace(objects);
            store.set_synced(true);
            Some(Arc::new(source))
        }
        None => None,
    };
    super::shared::remember(key, &(Arc::clone(&store), source.clone()));
    let api = match source {
        Some(_) => None,
        None => Some(Arc::new(ApiSource::new(
            api_settings(&config, d)?,
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
fn api_settings(config: &Config, d: &Dispenser<'_>) -> Result<ApiSettings, SetupError> {
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
    let client = client.map_err(|e| d.error_at_name(e.to_string()))?;
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
