#![doc = include_str!("README.md")]
//! The `kubernetes` plugin: answers cluster.local-style names from the cluster index.

pub(crate) mod config;
pub(crate) mod index;
pub(crate) mod lookup;
pub(crate) mod model;
pub(crate) mod selector;
pub(crate) mod setup;
pub(crate) mod shared;
pub(crate) mod source;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::Name;

use self::config::Config;
use self::index::Store;
use self::lookup::{Ctx, Options, Outcome, Question};
use self::source::api::ApiSource;
use self::source::manifests::ManifestSource;
use crate::plugin::{Answer, Next, Origin, Plugin, PluginError, Query, StartContext};

/// The plugin instance of one server block.
pub(crate) struct Kubernetes {
    opts: Options,
    /// `fallthrough`: `None` = off; empty = all names.
    fallthrough: Option<Vec<Name>>,
    store: Arc<Store>,
    /// The server's own non-loopback addresses, learnt in `start` (read per NS query only).
    self_ips: ArcSwap<Vec<IpAddr>>,
    source: Option<Arc<ManifestSource>>,
    poll: Duration,
    /// The Kubernetes API source (when no `manifests` are given).
    api: Option<Arc<ApiSource>>,
}

impl Kubernetes {
    pub(crate) fn new(
        config: Config,
        store: Arc<Store>,
        source: Option<Arc<ManifestSource>>,
        poll: Duration,
    ) -> Self {
        Kubernetes {
            opts: config.opts,
            fallthrough: config.fallthrough,
            store,
            self_ips: ArcSwap::from_pointee(Vec::new()),
            source,
            poll,
            api: None,
        }
    }

    /// Feed this instance from the Kubernetes API.
    pub(crate) fn with_api(mut self, api: Arc<ApiSource>) -> Self {
        self.api = Some(api);
        self
    }

    /// Whether a name error for `name` goes to the next plugin.
    fn falls_through(&self, name: &Name) -> bool {
        match &self.fallthrough {
            None => false,
            Some(zones) => zones.is_empty() || zones.iter().any(|z| z.zone_of(name)),
        }
    }

    /// Remember the server's own addresses (loopback and unspecified ones are not useful as NS).
    fn learn_self_ips(&self, ips: &[IpAddr]) {
        let mut all: Vec<IpAddr> = self.self_ips.load().as_ref().clone();
        for ip in ips {
            if !ip.is_loopback() && !ip.is_unspecified() && !all.contains(ip) {
                all.push(*ip);
            }
        }
        self.self_ips.store(Arc::new(all));
    }

    /// The answer for a name in the zone `zone` (index into the zones), before the chain.
    fn answer(&self, query: &Query<'_>, zone: usize) -> Outcome {
        let index = self.store.guard();
        let self_ips = self.self_ips.load();
        let ctx = Ctx {
            index: &index,
            opts: &self.opts,
            self_ips: &self_ips,
        };
        let question = Question {
            name: query.name,
            lower: query.lower,
            qtype: query.qtype,
        };
        lookup::lookup(&ctx, &question, zone)
    }
}

#[async_trait]
impl Plugin for Kubernetes {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    async fn serve(&self, query: &Query<'_>, next: Next<'_>) -> Result<Answer, PluginError> {
        let Some(zone) = self.opts.match_zone(query.lower) else {
            return next.run(query).await;
        };
        match self.answer(query, zone) {
            Outcome::Answer(answer) => Ok(answer),
            Outcome::NameError { soa } => {
                // Fallthrough is decided before the not-synced rule (spec §3).
                if self.falls_through(query.lower) {
                    return next.run(query).await;
                }
                let rcode = if self.store.synced() {
                    ResponseCode::NXDomain
                } else {
                    ResponseCode::ServFail
                };
                Ok(lookup::name_error(rcode, soa))
            }
            Outcome::External {
                cnames,
                target,
                soa,
            } => {
                let upstream = query.resolver.resolve(target, query.qtype).await;
                if let Err(error) = &upstream {
                    tracing::debug!(plugin = "kubernetes", %error, "ExternalName target lookup failed");
                }
                Ok(lookup::compose_external(cnames, soa, upstream))
            }
        }
    }

    fn ready(&self) -> Option<bool> {
        Some(self.store.synced())
    }

    fn start(&self, ctx: &StartContext) -> Vec<tokio::task::JoinHandle<()>> {
        self.learn_self_ips(&ctx.listen_ips);
        let mut tasks = Vec::new();
        if let Some(source) = &self.source {
            tasks.push(Arc::clone(source).spawn_watch(self.poll));
        }
        if let Some(api) = &self.api {
            tasks.extend(api.spawn());
        }
        tasks
    }

    async fn wait_started(&self) -> Result<(), PluginError> {
        match &self.api {
            Some(api) => api
                .wait_started()
                .await
                .map_err(|message| PluginError::Failed {
                    plugin: "kubernetes",
                    origin: Origin::ClusterApi,
                    rcode: ResponseCode::ServFail,
                    message,
                }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
