//! The shutdown sequence and the signals that drive the process after start-up: SIGTERM/SIGINT
//! (lame duck, stop accepting, drain, stop hooks) and SIGUSR1 (forced reload).

use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::info;

use super::reload::{Reloader, next_delay};
use super::start::Running;
use crate::Error;

/// Marks the process as shutting down, from the shutdown signal on (lame-duck period included):
/// `/ready` answers 503 `Shutting down` from then on, `/health` keeps answering 200.
pub fn set_shutting_down() {
    crate::http::set_shutting_down(true);
}

/// The signals the process reacts to, installed before the banner is printed (from then on a
/// signal is never the default action, which would end the process without a drain).
pub(crate) struct Signals {
    term: Signal,
    int: Signal,
    usr1: Signal,
}

impl Signals {
    pub(crate) fn install() -> Result<Signals, Error> {
        Ok(Signals {
            term: signal(SignalKind::terminate()).map_err(Error::Signal)?,
            int: signal(SignalKind::interrupt()).map_err(Error::Signal)?,
            usr1: signal(SignalKind::user_defined1()).map_err(Error::Signal)?,
        })
    }
}

/// Serves until SIGTERM or SIGINT: reloads every `reload` interval (± jitter) when the Corefile
/// changed and on every SIGUSR1; on the shutdown signal sets the "shutting down" flag, keeps
/// answering for the lame-duck delay (a second signal cuts it short), then stops accepting,
/// lets queries in flight finish and stops the hooks.
pub(crate) async fn serve(
    mut running: Running,
    mut reloader: Reloader,
    signals: Signals,
) -> Result<(), Error> {
    let Signals {
        mut term,
        mut int,
        mut usr1,
    } = signals;
    let signal_name = loop {
        let next_check = super::reload::schedule(running.config())
            .map(|r| next_delay(&r, rand::random::<f64>()));
        let tick = async {
            match next_check {
                Some(delay) => tokio::time::sleep(delay).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
            message = running.fatal() => {
                // As CoreDNS's log.Fatal: no lame duck, no drain; the queries in flight are
                // part of the fault.
                return Err(Error::Fatal(message));
            }
            _ = usr1.recv() => {
                reloader.check(&mut running, true).await;
            }
            () = tick => {
                reloader.check(&mut running, false).await;
            }
        }
    };
    set_shutting_down();
    let lameduck = running.shutdown_delay();
    if !lameduck.is_zero() {
        info!("{signal_name}: lameduck, still answering for {lameduck:?}");
        tokio::select! {
            () = tokio::time::sleep(lameduck) => {}
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    info!("{signal_name}: shutting down");
    running.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::Config;

    fn config(text: &str) -> Config {
        crate::config_from_str(text, "Corefile", Path::new("."), 53).unwrap()
    }

    #[test]
    fn shutdown_delay_is_the_longest_lameduck() {
        assert_eq!(
            config(".:53 {\n    whoami\n}\n").shutdown_delay(),
            Duration::ZERO
        );
        assert_eq!(
            config(".:53 {\n    health :8080\n    whoami\n}\n").shutdown_delay(),
            Duration::ZERO
        );
        let c = config(
            "a.:53 {\n    health :8080 {\n        lameduck 3s\n    }\n    whoami\n}\nb.:53 {\n    health :8081 {\n        lameduck 5s\n    }\n}\n",
        );
        assert_eq!(c.shutdown_delay(), Duration::from_secs(5));
    }

    #[test]
    fn health_and_ready_are_hooks_not_chain_links() {
        let c = config(
            ".:53 {\n    reload\n    bind 127.0.0.1\n    ready\n    health\n    errors\n    whoami\n}\n",
        );
        let server = &c.servers[0];
        assert_eq!(
            server.chain.names().collect::<Vec<_>>(),
            ["errors", "whoami"]
        );
        let hooks: Vec<_> = server.hooks.iter().map(|h| h.name()).collect();
        assert_eq!(hooks, ["errors", "whoami", "ready", "health"]);
    }
}
