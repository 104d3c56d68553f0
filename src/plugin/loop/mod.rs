//! The `loop` plugin: at start-up it queries its own server for a random name and stops the
//! process if that query comes back through the chain more than twice (a forwarding loop).
#![doc = include_str!("README.md")]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hickory_proto::op::{Message, MessageType, OpCode, Query as WireQuery, ResponseCode};
use hickory_proto::rr::{LowerName, Name, RecordType};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, error};

use crate::corefile::Dispenser;
use crate::plugin::{
    Answer, BlockSetup, Next, Origin, Plugin, PluginError, Query, SetupError, StartContext,
};

const NAME: &str = "loop";
/// How long the plugin keeps probing before it gives up and disables itself.
const PROBE_WINDOW: Duration = Duration::from_secs(30);
/// Time between probes (and how long each waits for its reply).
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Arrivals of the probe that are normal: the probe itself, and one hop through an upstream
/// that asks us back once. More is a loop.
const MAX_ARRIVALS: u32 = 2;

/// `loop` takes no arguments; the zone it probes is the server block's first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LoopConfig {
    /// Zone under which the probe name is made (`.` for `.:53`).
    pub(crate) zone: Name,
}

/// Parses a `loop` directive of a block serving `block_zones`.
pub(crate) fn parse(d: &mut Dispenser<'_>, block_zones: &[Name]) -> Result<LoopConfig, SetupError> {
    d.end()?;
    d.no_block()?;
    Ok(LoopConfig {
        zone: block_zones.first().cloned().unwrap_or_else(Name::root),
    })
}

/// Parses a `loop` directive and adds the plugin to the block's chain.
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    let config = parse(d, &block.zones)?;
    block.plugins.push(Arc::new(LoopDetect::new(config.zone)));
    Ok(())
}

/// The plugin: its probe name and how often the probe has been seen.
pub(crate) struct LoopDetect {
    zone: Name,
    probe: Name,
    probe_lower: LowerName,
    seen: AtomicU32,
    disabled: Arc<AtomicBool>,
    listen: OnceLock<SocketAddr>,
    fatal: OnceLock<UnboundedSender<String>>,
}

impl LoopDetect {
    pub(crate) fn new(zone: Name) -> Self {
        // Two random 62-bit numbers, as CoreDNS.
        let a: u64 = rand::random::<u64>() >> 2;
        let b: u64 = rand::random::<u64>() >> 2;
        let probe = Name::from_ascii(format!("{a}.{b}"))
            .and_then(|n| n.append_domain(&zone))
            .unwrap_or_else(|_| zone.clone());
        LoopDetect {
            probe_lower: LowerName::new(&probe),
            zone,
            probe,
            seen: AtomicU32::new(0),
            disabled: Arc::new(AtomicBool::new(false)),
            listen: OnceLock::new(),
            fatal: OnceLock::new(),
        }
    }

    /// CoreDNS's loop message.
    fn message(&self, remote: SocketAddr) -> String {
        let listen = self
            .listen
            .get()
            .map(ToString::to_string)
            .unwrap_or_else(|| "unknown".to_owned());
        let zone = self.zone.to_string();
        format!(
            "Loop ({remote} -> {listen}) detected for zone {zone:?}, see \
             https://coredns.io/plugins/loop#troubleshooting. Query: \"HINFO {}\"",
            self.probe
        )
    }

    /// The probe query's wire bytes with `id`.
    fn probe_bytes(&self, id: u16) -> Vec<u8> {
        let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = true;
        msg.add_query(WireQuery::query(self.probe.clone(), RecordType::HINFO));
        msg.to_vec().unwrap_or_default()
    }
}

/// Sends the probe to `target` every second until any reply arrives or the window closes, then
/// disables the plugin.
async fn probe(bytes: Vec<u8>, target: SocketAddr, disabled: Arc<AtomicBool>) {
    let started = Instant::now();
    let local: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let mut buf = vec![0u8; 4096];
    while started.elapsed() < PROBE_WINDOW && !disabled.load(Ordering::Relaxed) {
        let sock = match UdpSocket::bind(local).await {
            Ok(sock) => sock,
            Err(error) => {
                debug!(%error, "plugin/loop: cannot open a probe socket");
                tokio::time::sleep(PROBE_INTERVAL).await;
                continue;
            }
        };
        match sock.send_to(&bytes, target).await {
            Ok(_) => {
                if let Ok(Ok(_)) =
                    tokio::time::timeout(PROBE_INTERVAL, sock.recv_from(&mut buf)).await
                {
                    break;
                }
            }
            Err(_) => tokio::time::sleep(PROBE_INTERVAL).await,
        }
    }
    disabled.store(true, Ordering::Relaxed);
}

#[async_trait]
impl Plugin for LoopDetect {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn serve(&self, query: &Query<'_>, next: Next<'_>) -> Result<Answer, PluginError> {
        if query.qtype != RecordType::HINFO
            || self.disabled.load(Ordering::Relaxed)
            || *query.lower != self.probe_lower
        {
            return next.run(query).await;
        }
        let seen = self.seen.fetch_add(1, Ordering::AcqRel).saturating_add(1);
        if seen > MAX_ARRIVALS {
            let message = self.message(query.src);
            if seen == MAX_ARRIVALS + 1 {
                error!("plugin/loop: {message}");
                if let Some(fatal) = self.fatal.get() {
                    let _ = fatal.send(message.clone());
                }
            }
            return Err(PluginError::Failed {
                plugin: NAME,
                origin: Origin::Internal,
                rcode: ResponseCode::ServFail,
                message,
            });
        }
        next.run(query).await
    }

    fn start(&self, ctx: &StartContext) -> Vec<tokio::task::JoinHandle<()>> {
        if let Some(fatal) = &ctx.fatal {
            let _ = self.fatal.set(fatal.clone());
        }
        let Some(target) = ctx.self_addrs.first().copied() else {
            self.disabled.store(true, Ordering::Relaxed);
            return Vec::new();
        };
        let _ = self.listen.set(target);
        let bytes = self.probe_bytes(rand::random());
        vec![tokio::spawn(probe(bytes, target, self.disabled.clone()))]
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::corefile::parse_str_with_env;

    fn run(text: &str, zones: &[Name]) -> Result<LoopConfig, String> {
        let cf = parse_str_with_env(
            &format!(".:53 {{\n{text}\n}}\n"),
            "Corefile",
            Path::new("."),
            &|_| None,
        )
        .map_err(|e| e.to_string())?;
        parse(&mut Dispenser::new(&cf.blocks[0].directives[0]), zones).map_err(|e| e.to_string())
    }

    #[test]
    fn loop_setup_cases() {
        let zone = Name::from_ascii("cluster.local.").expect("name");
        assert_eq!(run("loop", &[]), Ok(LoopConfig { zone: Name::root() }));
        assert_eq!(
            run("loop", std::slice::from_ref(&zone)),
            Ok(LoopConfig { zone: zone.clone() })
        );
        assert_eq!(
            run("loop now", &[]),
            Err("Corefile:2:6: plugin/loop: unexpected argument 'now' after 'loop', expected the end of the line".to_owned())
        );
        assert_eq!(
            run("loop {\n  x\n}", &[]),
            Err("Corefile:3:3: plugin/loop: unexpected option block, 'loop' takes none".to_owned())
        );
    }

    fn probe_query<'a>(
        plugin: &LoopDetect,
        qtype: RecordType,
        resolver: &'a dyn crate::plugin::Resolve,
    ) -> Query<'a> {
        let mut q = crate::plugin::test_support::query_for(
            "x.",
            "127.0.0.1:40000",
            crate::plugin::Transport::Udp,
            resolver,
        );
        // Test names live as long as the test process.
        q.name = Box::leak(Box::new(plugin.probe.clone()));
        q.lower = Box::leak(Box::new(LowerName::new(&plugin.probe)));
        q.qtype = qtype;
        q
    }

    #[tokio::test]
    async fn third_arrival_of_the_probe_is_fatal() {
        use crate::plugin::Chain;
        use crate::plugin::test_support::NoResolve;
        let zone = Name::from_ascii("cluster.local.").unwrap();
        let plugin = Arc::new(LoopDetect::new(zone.clone()));
        assert!(zone.zone_of(&plugin.probe) && plugin.probe.num_labels() == 4);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // No self address: probing is off, but serve still counts (disabled is set by start).
        plugin.fatal.set(tx).unwrap();
        plugin.listen.set("127.0.0.1:53".parse().unwrap()).unwrap();
        let chain = Chain::new(vec![
            plugin.clone(),
            Arc::new(crate::plugin::whoami::Whoami),
        ]);
        let r = NoResolve;
        // Other types and names pass untouched and are not counted.
        for _ in 0..5 {
            chain
                .run(&probe_query(&plugin, RecordType::A, &r))
                .await
                .unwrap();
        }
        let mut other = probe_query(&plugin, RecordType::HINFO, &r);
        let other_lower = LowerName::new(&Name::from_ascii("1.2.cluster.local.").unwrap());
        other.lower = &other_lower;
        chain.run(&other).await.unwrap();
        chain
            .run(&probe_query(&plugin, RecordType::HINFO, &r))
            .await
            .unwrap();
        chain
            .run(&probe_query(&plugin, RecordType::HINFO, &r))
            .await
            .unwrap();
        assert!(rx.try_recv().is_err(), "two arrivals are no loop");
        let err = chain
            .run(&probe_query(&plugin, RecordType::HINFO, &r))
            .await
            .unwrap_err();
        assert_eq!(err.rcode(), ResponseCode::ServFail);
        let message = rx.try_recv().expect("fatal reported");
        assert_eq!(
            message,
            format!(
                "Loop (127.0.0.1:40000 -> 127.0.0.1:53) detected for zone \"cluster.local.\", \
                 see https://coredns.io/plugins/loop#troubleshooting. Query: \"HINFO {}\"",
                plugin.probe
            )
        );
        assert!(
            chain
                .run(&probe_query(&plugin, RecordType::HINFO, &r))
                .await
                .is_err()
        );
        assert!(rx.try_recv().is_err(), "reported once");
    }

    #[tokio::test]
    async fn disabled_plugin_ignores_the_probe() {
        use crate::plugin::Chain;
        use crate::plugin::test_support::NoResolve;
        let plugin = Arc::new(LoopDetect::new(Name::root()));
        let tasks = plugin.start(&StartContext::default());
        assert!(tasks.is_empty(), "no self address, no probe");
        let chain = Chain::new(vec![
            plugin.clone(),
            Arc::new(crate::plugin::whoami::Whoami),
        ]);
        let r = NoResolve;
        for _ in 0..5 {
            chain
                .run(&probe_query(&plugin, RecordType::HINFO, &r))
                .await
                .unwrap();
        }
    }
}
