//! `doctor query NAME [TYPE]`: one question through the loaded configuration, in process, with a
//! trace of the server block and plugins it passed and an explanation of the answer.
//!
//! The trace hook lives here, not on the query path: the doctor builds its own copy of the
//! configuration and wraps every plugin of every chain in `Traced`, a plugin that records
//! entering and leaving the plugin it wraps. The question goes through [`crate::Harness`]
//! (the server's real handler, router and reply code, without sockets), so the answer is exactly
//! what the server would send. A running server never holds a `Traced` plugin, so its queries
//! pay nothing for this.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as WireQuery};
use hickory_proto::rr::{Name, RecordType};
use serde::Serialize;

use super::Check;
use super::cluster::{self, ApiClient};
use super::corefile::Setup;
use super::explain;
use crate::config::Config;
use crate::corefile::{Directive, Token};
use crate::plugin::kubernetes::index::Index;
use crate::plugin::{Answer, Chain, Next, Plugin, PluginError, Query, StartContext};

/// One step of the trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Nesting in the chain (0 = the block's first plugin).
    pub depth: usize,
    /// `enter`, `answer` (returned an answer) or `error`.
    pub event: &'static str,
    pub plugin: &'static str,
    /// Index of the server block.
    pub block: usize,
    /// The question, when it is not the one asked (an internal query, e.g. an ExternalName
    /// target).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal: Option<String>,
    /// The rcode returned, or the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

/// The server block that served the question.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Block {
    pub index: usize,
    pub keys: Vec<String>,
    pub location: String,
    pub plugins: Vec<&'static str>,
}

/// The traced question and its answer.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Trace {
    pub name: String,
    #[serde(rename = "type")]
    pub qtype: String,
    pub block: Option<Block>,
    pub steps: Vec<Step>,
    /// The innermost plugin that returned the answer to the question asked.
    pub answered_by: Option<&'static str>,
    pub rcode: String,
    pub authoritative: bool,
    pub answers: Vec<String>,
    pub authority: Vec<String>,
    pub additional: Vec<String>,
    /// Why this answer: which object, which rule.
    pub why: Vec<String>,
}

impl Trace {
    /// The trace as text.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(out, "query {} {}", self.name, self.qtype);
        match &self.block {
            Some(b) => {
                let _ = writeln!(
                    out,
                    "server block {} ({}) at {}: {}",
                    b.index + 1,
                    b.keys.join(" "),
                    b.location,
                    b.plugins.join(" -> ")
                );
            }
            None => {
                let _ = writeln!(out, "no server block serves this name");
            }
        }
        for step in &self.steps {
            let indent = "  ".repeat(step.depth + 1);
            let internal = step
                .internal
                .as_ref()
                .map(|q| format!(" [internal query {q}]"))
                .unwrap_or_default();
            match step.event {
                "enter" => {
                    let _ = writeln!(out, "{indent}-> {}{internal}", step.plugin);
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "{indent}<- {}: {}{internal}",
                        step.plugin,
                        step.result.as_deref().unwrap_or_default()
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "answered by: {}",
            self.answered_by.unwrap_or("(no plugin: the server itself)")
        );
        let _ = writeln!(
            out,
            "answer: {}{}",
            self.rcode,
            if self.authoritative {
                " (authoritative)"
            } else {
                ""
            }
        );
        for (section, records) in [
            ("answer", &self.answers),
            ("authority", &self.authority),
            ("additional", &self.additional),
        ] {
            for record in records {
                let _ = writeln!(out, "  {section}: {record}");
            }
        }
        let _ = writeln!(out, "why:");
        for line in &self.why {
            let _ = writeln!(out, "  {line}");
        }
        out
    }
}

/// The recording shared by every [`Traced`] plugin of one run.
#[derive(Debug, Default)]
struct Log {
    steps: Mutex<Vec<Step>>,
    depth: Mutex<usize>,
}

impl Log {
    fn record(&self, step: Step) {
        self.steps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(step);
    }

    fn enter(&self) -> usize {
        let mut depth = self.depth.lock().unwrap_or_else(PoisonError::into_inner);
        *depth += 1;
        *depth - 1
    }

    fn leave(&self) {
        let mut depth = self.depth.lock().unwrap_or_else(PoisonError::into_inner);
        *depth = depth.saturating_sub(1);
    }

    fn steps(&self) -> Vec<Step> {
        self.steps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A plugin that records entering and leaving the plugin it wraps (doctor only).
struct Traced {
    inner: Arc<dyn Plugin>,
    block: usize,
    asked: (Name, RecordType),
    log: Arc<Log>,
}

#[async_trait]
impl Plugin for Traced {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn serve(&self, query: &Query<'_>, next: Next<'_>) -> Result<Answer, PluginError> {
        let plugin = self.inner.name();
        // Internal queries (ExternalName targets) carry no request bytes.
        let internal =
            (query.request_size == 0 || *query.name != self.asked.0 || query.qtype != self.asked.1)
                .then(|| format!("{} {}", query.name, query.qtype));
        let depth = self.log.enter();
        self.log.record(Step {
            depth,
            event: "enter",
            plugin,
            block: self.block,
            internal: internal.clone(),
            result: None,
        });
        let result = self.inner.serve(query, next).await;
        self.log.leave();
        let (event, outcome) = match &result {
            Ok(answer) => ("answer", describe(answer)),
            Err(error) => ("error", error.to_string()),
        };
        self.log.record(Step {
            depth,
            event,
            plugin,
            block: self.block,
            internal,
            result: Some(outcome),
        });
        result
    }

    fn ready(&self) -> Option<bool> {
        self.inner.ready()
    }
}

fn describe(answer: &Answer) -> String {
    let rcode = crate::dns::rcode::rcode_name(answer.rcode)
        .map_or_else(|| format!("{:?}", answer.rcode), str::to_owned);
    format!(
        "{rcode}, {} answer(s), {} authority",
        answer.answers.len(),
        answer.authorities.len()
    )
}

/// `kubeconfig PATH` added to the kubernetes directive's block, so the plugin reads the API with
/// the doctor's credentials (the Corefile of a pod names none: it uses the service account).
fn inject_kubeconfig(directive: &mut Directive, path: &Path) {
    let token = |text: String| Token {
        text,
        location: directive.name.location.clone(),
    };
    let line = Directive {
        name: token("kubeconfig".to_owned()),
        args: vec![token(path.display().to_string())],
        block: None,
    };
    directive.block.get_or_insert_with(Vec::new).push(line);
}

/// The configuration `doctor query` serves: the Corefile's, with the doctor's kubeconfig.
fn query_config(setup: &Setup, api: &ApiClient) -> Result<Config, String> {
    let mut tree = setup.tree.clone();
    let uses_api_defaults = setup
        .kubernetes_api()
        .is_some_and(|k| k.config.api.kubeconfig.is_none() && k.config.api.endpoint.is_none());
    if let (true, Some(path)) = (uses_api_defaults, &api.kubeconfig) {
        for block in &mut tree.blocks {
            for directive in &mut block.directives {
                if directive.name.text == "kubernetes" {
                    inject_kubeconfig(directive, path);
                }
            }
        }
    }
    Config::build(
        &tree,
        &setup.path.display().to_string(),
        &setup.base_dir,
        setup.dns_port,
    )
    .map_err(|e| e.to_string())
}

/// Runs `name qtype` through the configuration and explains the answer.
pub async fn run(
    setup: &Setup,
    api: &ApiClient,
    name: &str,
    qtype: RecordType,
) -> Result<Trace, Box<Check>> {
    let fail = |message: String, remedy: &str| {
        Box::new(Check::fail("query", "query", message, remedy.to_owned()))
    };
    let mut asked = Name::from_ascii(name).map_err(|e| {
        fail(
            format!("'{name}' is not a domain name: {e}"),
            "give a name such as kubernetes.default.svc.cluster.local",
        )
    })?;
    asked.set_fqdn(true);
    let mut config = query_config(setup, api).map_err(|e| {
        fail(
            format!("the Corefile does not build for the query: {e}"),
            "fix the Corefile",
        )
    })?;

    // Only the kubernetes plugin is started: it watches the API as the server would. Nothing
    // else runs in the background and nothing binds a port.
    let ctx = StartContext::default();
    let mut tasks = Vec::new();
    let mut kubernetes = None;
    for server in &config.servers {
        for plugin in server.chain.plugins() {
            if plugin.name() == "kubernetes" {
                tasks.extend(plugin.start(&ctx));
                if let Err(error) = plugin.wait_started().await {
                    for task in &tasks {
                        task.abort();
                    }
                    return Err(fail(
                        format!("the kubernetes plugin does not start: {error}"),
                        "see the `api` checks of `clusterdns doctor`",
                    ));
                }
                kubernetes.get_or_insert_with(|| Arc::clone(plugin));
            }
        }
    }

    let log = Arc::new(Log::default());
    let mut blocks = Vec::new();
    for (index, server) in config.servers.iter_mut().enumerate() {
        let wrapped: Vec<Arc<dyn Plugin>> = server
            .chain
            .plugins()
            .iter()
            .map(|p| {
                Arc::new(Traced {
                    inner: Arc::clone(p),
                    block: index,
                    asked: (asked.clone(), qtype),
                    log: Arc::clone(&log),
                }) as Arc<dyn Plugin>
            })
            .collect();
        blocks.push(Block {
            index,
            keys: server.keys.iter().map(ToString::to_string).collect(),
            location: server
                .keys
                .first()
                .map(|k| k.location.to_string())
                .unwrap_or_default(),
            plugins: server.chain.names().collect(),
        });
        server.chain = Arc::new(Chain::new(wrapped));
    }
    let reply = ask(&config, &asked, qtype).await;
    for task in &tasks {
        task.abort();
    }
    let reply =
        reply.map_err(|e| fail(e, "report this as a bug: the in-process query path failed"))?;

    let steps = log.steps();
    let block = steps
        .iter()
        .find(|s| s.internal.is_none())
        .and_then(|s| blocks.get(s.block).cloned());
    let answered_by = steps
        .iter()
        .find(|s| s.event == "answer" && s.internal.is_none())
        .map(|s| s.plugin);
    let rcode = crate::dns::rcode::rcode_name(reply.metadata.response_code).map_or_else(
        || format!("{:?}", reply.metadata.response_code),
        str::to_owned,
    );
    let mut trace = Trace {
        name: asked.to_string(),
        qtype: qtype.to_string(),
        block,
        steps,
        answered_by,
        rcode,
        authoritative: reply.metadata.authoritative,
        answers: reply.answers.iter().map(ToString::to_string).collect(),
        authority: reply.authorities.iter().map(ToString::to_string).collect(),
        additional: reply
            .additionals
            .iter()
            .filter(|r| r.record_type() != RecordType::OPT)
            .map(ToString::to_string)
            .collect(),
        why: Vec::new(),
    };
    trace.why = why(setup, api, &trace, &asked, qtype, kubernetes.as_deref()).await;
    Ok(trace)
}

/// Sends the question through the configuration's in-process request path.
async fn ask(config: &Config, name: &Name, qtype: RecordType) -> Result<Message, String> {
    let harness = crate::Harness::new(config).ok_or("the configuration has no listen address")?;
    let mut msg = Message::new(0xd0c7, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(WireQuery::query(name.clone(), qtype));
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    msg.set_edns(edns);
    let bytes = msg.to_vec().map_err(|e| e.to_string())?;
    let src = SocketAddr::from(([127, 0, 0, 1], 53000));
    let reply = harness
        .handle(&bytes, src, false)
        .await
        .ok_or("the server sent no reply")?;
    Message::from_vec(&reply).map_err(|e| e.to_string())
}

/// The explanation: per plugin that answered.
async fn why(
    setup: &Setup,
    api: &ApiClient,
    trace: &Trace,
    name: &Name,
    qtype: RecordType,
    kubernetes: Option<&dyn Plugin>,
) -> Vec<String> {
    let Some(block) = &trace.block else {
        return vec![format!(
            "no server block's zone contains {name} (zones: {}): the server answers REFUSED",
            setup
                .config
                .servers
                .iter()
                .flat_map(|s| s.keys.iter().map(|k| k.zone.to_string()))
                .collect::<Vec<_>>()
                .join(" ")
        )];
    };
    let mut why = Vec::new();
    let zones: Vec<String> = setup
        .config
        .servers
        .get(block.index)
        .map(|s| s.keys.iter().map(|k| k.zone.to_string()).collect())
        .unwrap_or_default();
    why.push(format!(
        "server block {} serves {name}: its zone {} is the longest suffix of the name",
        block.index + 1,
        zones
            .iter()
            .filter(|z| {
                Name::from_ascii(z).is_ok_and(|zone| zone.zone_of(&name.to_lowercase()))
            })
            .max_by_key(|z| z.len())
            .cloned()
            .unwrap_or_default()
    ));
    let k8s_ran = trace
        .steps
        .iter()
        .any(|s| s.plugin == "kubernetes" && s.internal.is_none() && s.event != "enter");
    if k8s_ran && let Some(k8s) = setup.kubernetes.as_ref().filter(|k| k.block == block.index) {
        if kubernetes.and_then(|p| p.ready()) == Some(false) {
            why.push(
                "the kubernetes plugin has not synced with the API: names it cannot find are SERVFAIL, not NXDOMAIN (see `clusterdns doctor` for the api checks)".to_owned(),
            );
        }
        match index(setup, api).await {
            Ok(index) => {
                let lines = explain::explain(&index, &k8s.config.opts, name, qtype);
                let name_error = lines.iter().any(|l| l.contains("NXDOMAIN"));
                why.extend(lines);
                let lower = name.to_lowercase();
                let falls = k8s.config.fallthrough.as_ref().is_some_and(|zones| {
                    zones.is_empty() || zones.iter().any(|z| z.zone_of(&lower))
                });
                if name_error && falls && trace.answered_by != Some("kubernetes") {
                    why.push(
                        "`fallthrough` covers the name: the name error goes on to the next plugin"
                            .to_owned(),
                    );
                }
            }
            Err(error) => why.push(format!(
                "cannot read the cluster objects to explain the answer: {error}"
            )),
        }
    }
    match trace.answered_by {
        Some("forward") => {
            for forward in setup.forwards.iter().filter(|f| f.block == block.index) {
                if forward.config.from.zone_of(&name.to_lowercase()) {
                    why.push(format!(
                        "forward {} ({}) relays it to {}",
                        forward.config.from,
                        forward.location,
                        forward
                            .targets
                            .iter()
                            .map(|t| t.addr.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
        Some("kubernetes") | None => {}
        Some(other) => why.push(format!("the {other} plugin wrote this answer")),
    }
    if trace.answered_by.is_none() {
        // The innermost error is where it started; the plugins above only passed it on.
        let origin = trace
            .steps
            .iter()
            .find(|s| s.event == "error" && s.internal.is_none());
        why.push(match origin {
            Some(step) => format!(
                "no plugin answered: {} failed ({}), so the server replied {}",
                step.plugin,
                step.result.as_deref().unwrap_or_default(),
                trace.rcode
            ),
            None => format!("no plugin answered; the server replied {}", trace.rcode),
        });
    }
    why
}

/// The kubernetes index as the plugin would build it, from the API or the manifests.
async fn index(setup: &Setup, api: &ApiClient) -> Result<Index, String> {
    let Some(k8s) = &setup.kubernetes else {
        return Err("no kubernetes directive".to_owned());
    };
    if let Some((_, paths)) = &k8s.config.manifests {
        use crate::plugin::kubernetes::source::manifests::{Filter, ManifestSource};
        let source = ManifestSource::new(
            paths.clone(),
            Filter {
                labels: None,
                namespace_labels: None,
            },
            Box::new(|_| {}),
        );
        return source.load().map(Index::build).map_err(|e| e.to_string());
    }
    let client = api.client.as_ref().map_err(|c| c.message.clone())?;
    let lists = cluster::list(client, setup).await?;
    Ok(Index::build(lists.objects()))
}
