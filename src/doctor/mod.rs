//! `clusterdns doctor`: checks a cluster DNS setup and prints a checklist with a remedy for every
//! failure. It never changes anything, and it never touches the query path of a running server.
//!
//! # Usage
//!
//! ```text
//! clusterdns doctor [--json] [-conf FILE] [-dns.port PORT] [--kubeconfig PATH]
//!                   [--kube-dns-namespace NS] [--kube-dns-service NAME]
//!                   [query NAME [TYPE]]
//! ```
//!
//! Run it inside the clusterdns pod (`kubectl -n kube-system exec deploy/coredns -- clusterdns
//! doctor -conf /etc/coredns/Corefile`: the in-cluster service account is used) or from an
//! operator's machine with a copy of the Corefile (the API client comes from `--kubeconfig`, the
//! Corefile's own `kubeconfig`/`endpoint`, the in-cluster service account, `$KUBECONFIG` or
//! `~/.kube/config`, in that order). Every check prints one line, `[ OK ]`, `[WARN]` or `[FAIL]`,
//! and every failure a `remedy:` line. The exit code is 1 when any check failed, else 0;
//! `--json` prints the same report as one JSON object (`checks[]` with `id`, `group`, `status`,
//! `message`, `remedy`).
//!
//! # The checks
//!
//! | group | what | module |
//! |---|---|---|
//! | `corefile` | parses; each directive's status in this build; `forward` targets that loop back to this server or to a local stub resolver (`127.0.0.53`, loopback on port 53, `::1`, a resolv.conf listing one); `loop` beside `forward`; `health` and `ready` for the Deployment's probes; ndots advice | [`corefile`] |
//! | `api` | reachable, authenticated (SelfSubjectReview), RBAC (SelfSubjectAccessReview for `list` and `watch` on every watched kind), how many objects would be indexed, namespaces named like TLDs or like our own zone labels | [`cluster`] |
//! | `kube-dns` | the Service exists, its EndpointSlices have ready endpoints, it exposes 53/UDP, 53/TCP and 9153/TCP, no `forward` targets its ClusterIP or one of its pods | [`cluster`] |
//! | `upstream` | each `forward` upstream answers the health-check query over UDP and over TCP within forward's 2 s read timeout | [`upstream`] |
//!
//! # `doctor query NAME [TYPE]`
//!
//! Runs one question through the loaded configuration in process (the kubernetes plugin
//! watching the API as the server would; nothing is bound) and prints the server block that
//! served it, every plugin it passed through, which plugin answered, the answer, and why: for
//! the kubernetes plugin, which object and which rule of the cluster DNS specification
//! produced it.
//! The question is served as it would be on the Corefile's first listen address (the one
//! `clusterdns::Harness` serves); blocks that listen only on other addresses are not consulted.
//!
//! The trace costs the server nothing: [`query`] wraps each plugin of the doctor's own copy of
//! the configuration in a recording plugin and sends the question through the crate's in-process
//! [`crate::Harness`] (the real handler, router and reply code). The explanation is a separate pure
//! function ([`explain`]) of the kubernetes index and the question; the query path itself has no
//! hook, no flag and no branch for the doctor.

pub mod cluster;
pub mod corefile;
pub mod explain;
pub mod query;
pub mod upstream;

use std::fmt::Write as _;
use std::path::PathBuf;

use hickory_proto::rr::RecordType;
use serde::Serialize;

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    /// The checklist's tag: `[ OK ]`, `[WARN]`, `[FAIL]`.
    pub fn tag(self) -> &'static str {
        match self {
            Status::Ok => "[ OK ]",
            Status::Warn => "[WARN]",
            Status::Fail => "[FAIL]",
        }
    }
}

/// One line of the checklist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable identifier, e.g. `corefile.forward.loop`, `api.rbac.watch.pods`.
    pub id: String,
    /// `corefile`, `api`, `kube-dns`, `upstream`.
    pub group: &'static str,
    pub status: Status,
    pub message: String,
    /// What to do about it (failures and warnings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

impl Check {
    pub fn ok(group: &'static str, id: impl Into<String>, message: impl Into<String>) -> Self {
        Check {
            id: id.into(),
            group,
            status: Status::Ok,
            message: message.into(),
            remedy: None,
        }
    }

    pub fn warn(
        group: &'static str,
        id: impl Into<String>,
        message: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Self {
        Check {
            status: Status::Warn,
            remedy: Some(remedy.into()),
            ..Check::ok(group, id, message)
        }
    }

    pub fn fail(
        group: &'static str,
        id: impl Into<String>,
        message: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Self {
        Check {
            status: Status::Fail,
            remedy: Some(remedy.into()),
            ..Check::ok(group, id, message)
        }
    }
}

/// What the doctor was asked to do.
#[derive(Clone, Debug)]
pub struct Options {
    /// The Corefile.
    pub conf: PathBuf,
    /// Port of server keys without one (`-dns.port`).
    pub dns_port: u16,
    /// `--kubeconfig`: wins over every other source of API credentials.
    pub kubeconfig: Option<PathBuf>,
    /// Where the cluster DNS Service lives (default `kube-system/kube-dns`).
    pub kube_dns_namespace: String,
    pub kube_dns_service: String,
    /// `query NAME [TYPE]`: trace one question instead of the checklist.
    pub query: Option<(String, RecordType)>,
}

/// Everything the doctor found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub corefile: String,
    pub checks: Vec<Check>,
    /// The traced question of `doctor query`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<query::Trace>,
    pub failures: usize,
    pub warnings: usize,
}

impl Report {
    fn push(&mut self, checks: impl IntoIterator<Item = Check>) {
        self.checks.extend(checks);
    }

    fn finish(mut self) -> Self {
        self.failures = self.count(Status::Fail);
        self.warnings = self.count(Status::Warn);
        self
    }

    fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// Whether the command should exit non-zero.
    pub fn failed(&self) -> bool {
        self.failures > 0
    }

    /// The checklist as text, one line per check and a `remedy:` line under each failure or
    /// warning.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "clusterdns doctor: {}", self.corefile);
        let mut group = "";
        for check in &self.checks {
            if check.group != group {
                group = check.group;
                let _ = writeln!(out, "\n{group}:");
            }
            let _ = writeln!(out, "{} {}", check.status.tag(), check.message);
            if let Some(remedy) = &check.remedy {
                let _ = writeln!(out, "       remedy: {remedy}");
            }
        }
        if let Some(trace) = &self.query {
            out.push('\n');
            out.push_str(&trace.text());
        }
        let _ = writeln!(
            out,
            "\n{} checks: {} failed, {} warnings",
            self.checks.len(),
            self.failures,
            self.warnings
        );
        out
    }

    /// The report as one JSON object.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            format!("{{\"error\": \"cannot encode the report: {e}\", \"failures\": 1}}")
        })
    }
}

/// Runs the checks (or the traced query) and returns the report.
pub async fn run(opts: &Options) -> Report {
    let mut report = Report {
        corefile: opts.conf.display().to_string(),
        ..Report::default()
    };
    let loaded = corefile::load(&opts.conf, opts.dns_port);
    let setup = match loaded {
        Ok(setup) => setup,
        Err(check) => {
            report.push([*check]);
            return report.finish();
        }
    };
    if let Some((name, qtype)) = &opts.query {
        report.push([Check::ok(
            "corefile",
            "corefile.parse",
            format!("{} parses", opts.conf.display()),
        )]);
        let api = cluster::connect(opts.kubeconfig.as_deref(), &setup).await;
        if let (Err(check), Some(_)) = (&api.client, setup.kubernetes_api()) {
            report.push([check.clone()]);
        }
        match query::run(&setup, &api, name, *qtype).await {
            Ok(trace) => report.query = Some(trace),
            Err(check) => report.push([*check]),
        }
        return report.finish();
    }
    report.push(setup.checks());
    let api = cluster::connect(opts.kubeconfig.as_deref(), &setup).await;
    let wanted = setup.kubernetes_api().is_some() || opts.kubeconfig.is_some();
    let mut facts = cluster::Facts::default();
    if wanted {
        let (checks, found) = cluster::check(&api, &setup, opts).await;
        report.push(checks);
        facts = found;
    } else {
        report.push([Check::ok(
            "api",
            "api.skipped",
            "the Corefile reads no Kubernetes API (no kubernetes directive, or `manifests`): API checks skipped (pass --kubeconfig to run them anyway)",
        )]);
    }
    report.push(setup.kube_dns_loops(&facts.kube_dns_ips, &facts.kube_dns_endpoints));
    report.push(upstream::check(&setup).await);
    report.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lists_every_check_with_remedies_under_failures() {
        let report = Report {
            corefile: "Corefile".into(),
            checks: vec![
                Check::ok("corefile", "corefile.parse", "Corefile parses"),
                Check::fail("upstream", "upstream.udp", "no answer", "start it"),
            ],
            ..Report::default()
        }
        .finish();
        assert!(report.failed());
        let text = report.text();
        assert!(text.contains("[ OK ] Corefile parses\n"), "{text}");
        assert!(
            text.contains("[FAIL] no answer\n       remedy: start it\n"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(json["failures"], 1);
        assert_eq!(json["checks"][1]["status"], "fail");
        assert_eq!(json["checks"][0].get("remedy"), None);
    }
}
