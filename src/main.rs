//! The `clusterdns` binary: command line, tracing, signals; calls `clusterdns::run`.
//!
//! The flags are CoreDNS's, Go style: `-conf FILE`, `-conf=FILE` and `--conf FILE` all work.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "clusterdns",
    about = "Cluster DNS server for Kubernetes, a drop-in replacement for CoreDNS",
    disable_version_flag = true
)]
struct Cli {
    /// Corefile to load (default: Corefile in the working directory)
    #[arg(long, value_name = "FILE", default_value = "Corefile")]
    conf: PathBuf,
    /// Default port for server keys without one
    #[arg(long = "dns.port", value_name = "PORT", default_value_t = 53)]
    dns_port: u16,
    /// Show version and quit
    #[arg(long)]
    version: bool,
    /// List installed plugins
    #[arg(long)]
    plugins: bool,
    /// Quiet mode (no start-up banner)
    #[arg(long)]
    quiet: bool,
}

/// `clusterdns doctor`: checks the setup and prints a checklist (see `clusterdns::doctor`).
#[derive(Parser, Debug)]
#[command(
    name = "clusterdns doctor",
    bin_name = "clusterdns doctor",
    about = "Check a cluster DNS setup: Corefile, Kubernetes API and RBAC, the kube-dns Service, upstreams"
)]
struct DoctorCli {
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
    /// Corefile to check (default: Corefile in the working directory)
    #[arg(long, value_name = "FILE", default_value = "Corefile")]
    conf: PathBuf,
    /// Default port for server keys without one
    #[arg(long = "dns.port", value_name = "PORT", default_value_t = 53)]
    dns_port: u16,
    /// Kubeconfig to reach the API with (default: the Corefile's, in-cluster, $KUBECONFIG, ~/.kube/config)
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Namespace of the cluster DNS Service
    #[arg(
        long = "kube-dns-namespace",
        value_name = "NS",
        default_value = "kube-system"
    )]
    kube_dns_namespace: String,
    /// Name of the cluster DNS Service
    #[arg(
        long = "kube-dns-service",
        value_name = "NAME",
        default_value = "kube-dns"
    )]
    kube_dns_service: String,
    #[command(subcommand)]
    action: Option<DoctorAction>,
}

#[derive(clap::Subcommand, Debug)]
enum DoctorAction {
    /// Trace one question through the configuration and explain the answer
    Query {
        /// The name to ask
        name: String,
        /// The record type (default A)
        #[arg(default_value = "A")]
        qtype: String,
    },
}

/// Go's flag package accepts `-name`; clap wants `--name`. Single-dash words longer than one
/// letter become double-dash; `-h` and everything after `--` stay as they are.
fn go_style(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut rest_verbatim = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || rest_verbatim {
            out.push(arg);
            continue;
        }
        match arg.to_str() {
            Some("--") => {
                rest_verbatim = true;
                out.push(arg);
            }
            Some(s) if s.starts_with('-') && !s.starts_with("--") && s.len() > 2 => {
                out.push(format!("-{s}").into());
            }
            _ => out.push(arg),
        }
    }
    out
}

fn print_plugins() {
    use clusterdns::plugin::Status;
    println!("Server types:\n  dns\n\nCaddyfile loaders:\n  flag\n  default\n\nOther plugins:");
    for (name, status) in clusterdns::plugins() {
        match status {
            Status::Active => println!("  dns.{name}"),
            Status::Partial(missing) => println!("  dns.{name} (not active yet: {missing})"),
            Status::ParseOnly => println!("  dns.{name} (parses and validates; not active yet)"),
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "doctor") {
        return doctor(args.into_iter().skip(1));
    }
    let cli = Cli::parse_from(go_style(args));
    if cli.version {
        println!("{}", clusterdns::version_line());
        println!("{}", clusterdns::platform_line());
        return ExitCode::SUCCESS;
    }
    if cli.plugins {
        print_plugins();
        return ExitCode::SUCCESS;
    }
    // CoreDNS's `[LEVEL] plugin/NAME: message` lines on stdout, plain text.
    clusterdns::logging::init();
    let opts = clusterdns::RunOptions {
        conf: cli.conf,
        dns_port: cli.dns_port,
        quiet: cli.quiet,
    };
    match serve(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Our errors already carry their cause in their message (and config errors read
            // `file:line:column: message`), so the chain is not printed again.
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `clusterdns doctor ...`: the report on stdout, exit code 1 on any failed check.
fn doctor(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = DoctorCli::parse_from(go_style(args));
    let query = match cli.action {
        None => None,
        Some(DoctorAction::Query { name, qtype }) => {
            match qtype
                .to_ascii_uppercase()
                .parse::<hickory_proto::rr::RecordType>()
            {
                Ok(t) => Some((name, t)),
                Err(e) => {
                    eprintln!("clusterdns doctor: unknown record type '{qtype}': {e}");
                    return ExitCode::from(2);
                }
            }
        }
    };
    // The report is on stdout; plugins' own warnings go to stderr.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let opts = clusterdns::doctor::Options {
        conf: cli.conf,
        dns_port: cli.dns_port,
        kubeconfig: cli.kubeconfig,
        kube_dns_namespace: cli.kube_dns_namespace,
        kube_dns_service: cli.kube_dns_service,
        query,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("clusterdns doctor: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let report = runtime.block_on(clusterdns::doctor::run(&opts));
    // Plugin tasks (the kubernetes watches of `doctor query`) must not keep the process alive.
    runtime.shutdown_background();
    if cli.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn serve(opts: clusterdns::RunOptions) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    runtime.block_on(clusterdns::run(opts))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let args = std::iter::once("clusterdns")
            .chain(args.iter().copied())
            .map(OsString::from);
        Cli::try_parse_from(go_style(args))
    }

    #[test]
    fn go_style_flags() {
        for args in [
            &["-conf", "/etc/Corefile"][..],
            &["-conf=/etc/Corefile"][..],
            &["--conf", "/etc/Corefile"][..],
            &["--conf=/etc/Corefile"][..],
        ] {
            let cli = parse(args).unwrap();
            assert_eq!(cli.conf, PathBuf::from("/etc/Corefile"), "{args:?}");
        }
        let cli = parse(&["-dns.port", "1053", "-quiet"]).unwrap();
        assert_eq!(cli.dns_port, 1053);
        assert!(cli.quiet);
        assert_eq!(parse(&[]).unwrap().dns_port, 53);
        assert!(parse(&["-version"]).unwrap().version);
    }

    #[test]
    fn doctor_flags() {
        let args = [
            "doctor",
            "-conf",
            "/etc/coredns/Corefile",
            "-json",
            "--kubeconfig",
            "k",
        ];
        let args = args
            .iter()
            .chain(&["query", "kube-dns.kube-system.svc.cluster.local", "SRV"]);
        let cli = DoctorCli::try_parse_from(go_style(args.map(OsString::from))).unwrap();
        assert_eq!(cli.conf, PathBuf::from("/etc/coredns/Corefile"));
        assert!(cli.json);
        assert_eq!(cli.kubeconfig, Some(PathBuf::from("k")));
        assert_eq!(cli.kube_dns_service, "kube-dns");
        let Some(DoctorAction::Query { name, qtype }) = cli.action else {
            panic!("query expected");
        };
        assert_eq!(
            (name.as_str(), qtype.as_str()),
            ("kube-dns.kube-system.svc.cluster.local", "SRV")
        );
        let plain = DoctorCli::try_parse_from(go_style(["doctor"].map(OsString::from))).unwrap();
        assert!(plain.action.is_none() && !plain.json);
    }

    #[test]
    fn bad_flags() {
        assert!(parse(&["-nosuch"]).is_err());
        assert!(parse(&["-dns.port", "70000"]).is_err());
    }
}
