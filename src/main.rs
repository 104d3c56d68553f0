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
    let cli = Cli::parse_from(go_style(std::env::args_os()));
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
    fn bad_flags() {
        assert!(parse(&["-nosuch"]).is_err());
        assert!(parse(&["-dns.port", "70000"]).is_err());
    }
}
