//! The `loadbalance` plugin: shuffles address records in answers so clients spread their load.
#![doc = include_str!("README.md")]

use std::sync::Arc;

use async_trait::async_trait;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Record, RecordType};
use rand::seq::SliceRandom;

use crate::corefile::Dispenser;
use crate::plugin::{Answer, BlockSetup, Next, Plugin, PluginError, Query, SetupError};

const PLUGIN: &str = "loadbalance";

/// How answers are reordered. `weighted` (CoreDNS's other policy) is not supported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Random permutation of A, AAAA and MX records (CoreDNS's default).
    #[default]
    RoundRobin,
}

/// `loadbalance [round_robin]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LoadbalanceConfig {
    pub(crate) policy: Policy,
}

/// Parses a `loadbalance` directive.
pub(crate) fn parse(d: &mut Dispenser<'_>) -> Result<LoadbalanceConfig, SetupError> {
    let policy = match d.next_arg() {
        None => Policy::RoundRobin,
        Some(tok) => match tok.text.as_str() {
            "round_robin" => Policy::RoundRobin,
            "weighted" => {
                return Err(d.error_at(
                    tok,
                    "policy 'weighted' is not supported in this build, expected round_robin",
                ));
            }
            other => {
                return Err(d.error_at(
                    tok,
                    format!("unknown policy '{other}', expected round_robin"),
                ));
            }
        },
    };
    d.end()?;
    d.no_block()?;
    Ok(LoadbalanceConfig { policy })
}

/// Parses a `loadbalance` directive and adds the plugin to the block.
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    let config = parse(d)?;
    block.plugins.push(Arc::new(Loadbalance { config }));
    Ok(())
}

/// The plugin: reorders the sections of NOERROR answers.
#[derive(Debug)]
pub(crate) struct Loadbalance {
    #[allow(dead_code)] // one policy today; kept for `weighted` later
    config: LoadbalanceConfig,
}

#[async_trait]
impl Plugin for Loadbalance {
    fn name(&self) -> &'static str {
        PLUGIN
    }

    async fn serve(&self, query: &Query<'_>, next: Next<'_>) -> Result<Answer, PluginError> {
        let mut result = next.run(query).await;
        if let Ok(answer) = &mut result
            && answer.rcode == ResponseCode::NoError
            && !matches!(query.qtype, RecordType::AXFR | RecordType::IXFR)
        {
            let mut rng = rand::rng();
            round_robin(&mut answer.answers, &mut rng);
            round_robin(&mut answer.authorities, &mut rng);
            round_robin(&mut answer.additionals, &mut rng);
        }
        result
    }
}

/// Where a record goes in a reordered section: CNAMEs first, then other types, then the
/// (shuffled) addresses, then the (shuffled) MX records.
fn group(record: &Record) -> u8 {
    match record.record_type() {
        RecordType::CNAME => 0,
        RecordType::A | RecordType::AAAA => 2,
        RecordType::MX => 3,
        _ => 1,
    }
}

/// CoreDNS's round_robin on one section: group the records (stable), shuffle the addresses and
/// the MX records among themselves.
fn round_robin(section: &mut [Record], rng: &mut impl rand::Rng) {
    if section.len() < 2 {
        return;
    }
    section.sort_by_key(group);
    let start_of = |g: u8| section.partition_point(|r| group(r) < g);
    let (addresses, mx) = (start_of(2), start_of(3));
    if let Some(slice) = section.get_mut(addresses..mx) {
        slice.shuffle(rng);
    }
    if let Some(slice) = section.get_mut(mx..) {
        slice.shuffle(rng);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, CNAME, MX, TXT};
    use hickory_proto::rr::{Name, RData};
    use rand::SeedableRng;

    fn rec(rdata: RData) -> Record {
        Record::from_rdata(Name::from_ascii("x.example.").unwrap(), 30, rdata)
    }

    #[test]
    fn groups_then_shuffles_addresses_and_mx() {
        let mut section = vec![
            rec(RData::MX(MX::new(10, Name::root()))),
            rec(RData::A(A::new(10, 0, 0, 1))),
            rec(RData::TXT(TXT::new(vec!["t".into()]))),
            rec(RData::A(A::new(10, 0, 0, 2))),
            rec(RData::CNAME(CNAME(Name::root()))),
            rec(RData::A(A::new(10, 0, 0, 3))),
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut orders = std::collections::HashSet::new();
        for _ in 0..50 {
            round_robin(&mut section, &mut rng);
            let types: Vec<RecordType> = section.iter().map(Record::record_type).collect();
            assert_eq!(
                types,
                [
                    RecordType::CNAME,
                    RecordType::TXT,
                    RecordType::A,
                    RecordType::A,
                    RecordType::A,
                    RecordType::MX
                ]
            );
            orders.insert(format!("{:?}", &section[2..5]));
        }
        // Three addresses have six orders; 50 shuffles see more than one.
        assert!(orders.len() > 1, "{orders:?}");
    }

    fn run(text: &str) -> Result<LoadbalanceConfig, String> {
        crate::plugin::test_support::parse_first(text, parse)
    }

    #[test]
    fn loadbalance_setup_cases() {
        let rr = Ok(LoadbalanceConfig {
            policy: Policy::RoundRobin,
        });
        let cases: Vec<(&str, Result<LoadbalanceConfig, &str>)> = vec![
            ("loadbalance", rr),
            ("loadbalance round_robin", rr),
            (
                "loadbalance weighted /etc/weights",
                Err(
                    "Corefile:2:13: plugin/loadbalance: policy 'weighted' is not supported in this build, expected round_robin",
                ),
            ),
            (
                "loadbalance random",
                Err("unknown policy 'random', expected round_robin"),
            ),
            (
                "loadbalance round_robin x",
                Err("unexpected argument 'x' after 'loadbalance'"),
            ),
            (
                "loadbalance {\n  prefer 10.0.0.0/8\n}",
                Err("unexpected option block, 'loadbalance' takes none"),
            ),
        ];
        for (text, want) in cases {
            let got = run(text);
            match (&got, &want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "case {text:?}"),
                (Err(g), Err(w)) => assert!(g.contains(w), "case {text:?}: {g}"),
                _ => panic!("case {text:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
