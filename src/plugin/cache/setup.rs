//! `cache [TTL] [ZONES...] [{ options }]` to a [`CacheConfig`] with CoreDNS's defaults (spec
//! §11.8). Pure: the cache itself is built in `mod.rs`.

use std::time::Duration;

use hickory_proto::rr::Name;

use crate::corefile::{Dispenser, Token};
use crate::dns::zone;
use crate::plugin::SetupError;

/// Entries per cache unless `success`/`denial` says otherwise (CoreDNS's `defaultCap`).
const DEFAULT_CAPACITY: usize = 10_000;
/// CoreDNS shards each cache 256 ways, with at least 4 entries per shard.
const SHARDS: usize = 256;
const MIN_PER_SHARD: usize = 4;
const MAX_SUCCESS_TTL: u32 = 3600;
const MAX_DENIAL_TTL: u32 = 1800;
const MIN_TTL: u32 = 5;
const MAX_SERVFAIL: Duration = Duration::from_secs(300);

/// Limits of one of the two caches (success or denial).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tier {
    /// Entries kept: the configured number rounded down to a multiple of 256, at least 1024.
    pub(crate) capacity: usize,
    /// Longest lifetime of an entry, in seconds.
    pub(crate) max_ttl: u32,
    /// Shortest lifetime of an entry, in seconds.
    pub(crate) min_ttl: u32,
}

/// `prefetch AMOUNT [DURATION [PERCENT%]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Prefetch {
    /// Hits within `duration` that make an entry popular enough to refresh.
    pub(crate) amount: u32,
    pub(crate) duration: Duration,
    /// Refresh when this percentage of the TTL is left (10 to 90).
    pub(crate) percentage: u8,
}

/// `serve_stale [DURATION [immediate|verify]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ServeStale {
    /// How long past expiry an entry may still be served.
    pub(crate) up_to: Duration,
    /// Whether to check the upstream before serving stale (`verify`) or not (`immediate`).
    pub(crate) verify: bool,
}

/// One `cache` directive, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CacheConfig {
    /// Zones cached (lower-case FQDNs); the server block's zones unless listed.
    pub(crate) zones: Vec<Name>,
    pub(crate) success: Tier,
    pub(crate) denial: Tier,
    pub(crate) prefetch: Option<Prefetch>,
    pub(crate) serve_stale: Option<ServeStale>,
    /// How long SERVFAIL answers are cached (default 5s, at most 5m, 0 = not cached).
    pub(crate) servfail: Duration,
    /// Zones whose successful answers are not cached.
    pub(crate) disable_success: Vec<Name>,
    /// Zones whose denials are not cached.
    pub(crate) disable_denial: Vec<Name>,
    /// Serve cached records with their stored TTL instead of ageing them.
    pub(crate) keepttl: bool,
}

/// Entries a cache asked for `requested` entries really holds.
fn effective_capacity(requested: usize) -> usize {
    (requested / SHARDS).max(MIN_PER_SHARD) * SHARDS
}

impl CacheConfig {
    fn new(zones: Vec<Name>) -> Self {
        CacheConfig {
            zones,
            success: Tier {
                capacity: effective_capacity(DEFAULT_CAPACITY),
                max_ttl: MAX_SUCCESS_TTL,
                min_ttl: MIN_TTL,
            },
            denial: Tier {
                capacity: effective_capacity(DEFAULT_CAPACITY),
                max_ttl: MAX_DENIAL_TTL,
                min_ttl: MIN_TTL,
            },
            prefetch: None,
            serve_stale: None,
            servfail: Duration::from_secs(5),
            disable_success: Vec::new(),
            disable_denial: Vec::new(),
            keepttl: false,
        }
    }
}

/// Parses one `cache` directive; `block_zones` are the server block's zones, the default.
pub(crate) fn parse(
    d: &mut Dispenser<'_>,
    block_zones: &[Name],
) -> Result<CacheConfig, SetupError> {
    let mut args = d.remaining_args();
    let mut ttl = None;
    // A first argument that is a number is the TTL; anything else is a zone (as CoreDNS).
    if let Some(first) = args.first()
        && first.text.parse::<i64>().is_ok()
    {
        ttl = Some(positive_ttl(d, first)?);
        args = &args[1..];
    }
    let mut zones = Vec::new();
    for tok in args {
        zones.extend(zones_of(d, tok)?);
    }
    if zones.is_empty() {
        zones = if block_zones.is_empty() {
            vec![Name::root()]
        } else {
            block_zones.to_vec()
        };
    }
    let mut config = CacheConfig::new(zones);
    if let Some(ttl) = ttl {
        config.success.max_ttl = ttl;
        config.denial.max_ttl = ttl;
    }
    d.options(|line| option(line, &mut config))?;
    Ok(config)
}

fn option(line: &mut Dispenser<'_>, config: &mut CacheConfig) -> Result<(), SetupError> {
    match line.name().text.as_str() {
        "success" => tier(line, &mut config.success)?,
        "denial" => tier(line, &mut config.denial)?,
        "prefetch" => {
            let tok = line.arg("an amount")?;
            let amount = tok.text.parse::<u32>().map_err(|_| {
                line.error_at(
                    tok,
                    format!(
                        "invalid prefetch amount '{}', expected a non-negative integer",
                        tok.text
                    ),
                )
            })?;
            let duration = match line.next_arg() {
                Some(tok) => line.duration(tok)?,
                None => Duration::from_secs(60),
            };
            let percentage = match line.next_arg() {
                Some(tok) => percentage(line, tok)?,
                None => 10,
            };
            config.prefetch = Some(Prefetch {
                amount,
                duration,
                percentage,
            });
        }
        "serve_stale" => {
            let up_to = match line.next_arg() {
                Some(tok) => line.duration(tok)?,
                None => Duration::from_secs(3600),
            };
            let verify = match line.next_arg() {
                None => false,
                Some(tok) => match tok.text.to_ascii_lowercase().as_str() {
                    "immediate" => false,
                    "verify" => true,
                    _ => {
                        return Err(line.error_at(
                            tok,
                            format!(
                                "invalid serve_stale mode '{}', expected immediate or verify",
                                tok.text
                            ),
                        ));
                    }
                },
            };
            config.serve_stale = Some(ServeStale { up_to, verify });
        }
        "servfail" => {
            let tok = line.arg("a duration")?;
            let value = line.duration(tok)?;
            if value > MAX_SERVFAIL {
                return Err(line.error_at(tok,
                    format!(
                        "servfail '{}' is too long, expected at most 5m (caching SERVFAIL longer is not permitted)",
                        tok.text
                    ),
                ));
            }
            config.servfail = value;
        }
        "disable" => {
            let tok = line.arg("success or denial")?;
            let mut zones = Vec::new();
            for zone_tok in line.remaining_args() {
                zones.extend(zones_of(line, zone_tok)?);
            }
            if zones.is_empty() {
                zones.push(Name::root());
            }
            match tok.text.as_str() {
                "success" => config.disable_success.extend(zones),
                "denial" => config.disable_denial.extend(zones),
                other => {
                    return Err(line.error_at(
                        tok,
                        format!("cannot disable '{other}', expected success or denial"),
                    ));
                }
            }
        }
        "keepttl" => config.keepttl = true,
        _ => return Err(line.unknown_property()),
    }
    Ok(())
}

/// `success|denial CAPACITY [TTL [MINTTL]]`.
fn tier(line: &mut Dispenser<'_>, tier: &mut Tier) -> Result<(), SetupError> {
    let tok = line.arg("a capacity")?;
    let capacity = tok.text.parse::<usize>().map_err(|_| {
        line.error_at(
            tok,
            format!(
                "invalid capacity '{}', expected a non-negative integer",
                tok.text
            ),
        )
    })?;
    tier.capacity = effective_capacity(capacity);
    if let Some(tok) = line.next_arg() {
        tier.max_ttl = positive_ttl(line, tok)?;
    }
    if let Some(tok) = line.next_arg() {
        tier.min_ttl = tok.text.parse::<u32>().map_err(|_| {
            line.error_at(
                tok,
                format!(
                    "invalid minimum TTL '{}', expected a non-negative number of seconds",
                    tok.text
                ),
            )
        })?;
    }
    Ok(())
}

/// A maximum TTL in seconds: a whole number above zero (0 is reserved, as in CoreDNS).
fn positive_ttl(d: &Dispenser<'_>, tok: &Token) -> Result<u32, SetupError> {
    match tok.text.parse::<u32>() {
        Ok(ttl) if ttl > 0 => Ok(ttl),
        _ => Err(d.error_at(
            tok,
            format!(
                "invalid TTL '{}', expected a number of seconds above zero",
                tok.text
            ),
        )),
    }
}

/// `PERCENT%`, 10 to 90.
fn percentage(d: &Dispenser<'_>, tok: &Token) -> Result<u8, SetupError> {
    tok.text
        .strip_suffix('%')
        .and_then(|n| n.parse::<u8>().ok())
        .filter(|n| (10..=90).contains(n))
        .ok_or_else(|| {
            d.error_at(
                tok,
                format!("invalid percentage '{}', expected 10% to 90%", tok.text),
            )
        })
}

fn zones_of(d: &Dispenser<'_>, tok: &Token) -> Result<Vec<Name>, SetupError> {
    zone::normalize(&tok.text).map_err(|e| d.error_at(tok, e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::corefile::parse_str_with_env;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).expect("test name")
    }

    fn run(text: &str) -> Result<CacheConfig, String> {
        let corefile = format!("cluster.local {{\n{text}\n}}\n");
        let cf = parse_str_with_env(&corefile, "Corefile", Path::new("."), &|_| None)
            .map_err(|e| e.to_string())?;
        let d = &cf.blocks[0].directives[0];
        parse(&mut Dispenser::new(d), &[name("cluster.local.")]).map_err(|e| e.to_string())
    }

    fn defaults() -> CacheConfig {
        CacheConfig::new(vec![name("cluster.local.")])
    }

    #[test]
    fn defaults_match_coredns() {
        let c = defaults();
        assert_eq!(c.success.capacity, 9984);
        assert_eq!(c.denial.capacity, 9984);
        assert_eq!((c.success.max_ttl, c.success.min_ttl), (3600, 5));
        assert_eq!((c.denial.max_ttl, c.denial.min_ttl), (1800, 5));
        assert_eq!(c.servfail, Duration::from_secs(5));
        assert_eq!(c.prefetch, None);
        assert_eq!(c.serve_stale, None);
        assert!(!c.keepttl);
    }

    #[test]
    fn cache_setup_cases() {
        let ok = |c: CacheConfig| Ok::<_, &str>(c);
        let tier = |capacity, max_ttl, min_ttl| Tier {
            capacity,
            max_ttl,
            min_ttl,
        };
        let cases: Vec<(&str, Result<CacheConfig, &str>)> = vec![
            ("cache", ok(defaults())),
            (
                "cache 30",
                ok(CacheConfig {
                    success: tier(9984, 30, 5),
                    denial: tier(9984, 30, 5),
                    ..defaults()
                }),
            ),
            (
                "cache 30 Example.org 10.0.0.0/8",
                ok(CacheConfig {
                    zones: vec![name("example.org."), name("10.in-addr.arpa.")],
                    success: tier(9984, 30, 5),
                    denial: tier(9984, 30, 5),
                    ..defaults()
                }),
            ),
            (
                "cache example.org",
                ok(CacheConfig {
                    zones: vec![name("example.org.")],
                    ..defaults()
                }),
            ),
            (
                "cache 30 {\n  disable success cluster.local\n  disable denial cluster.local\n}",
                ok(CacheConfig {
                    success: tier(9984, 30, 5),
                    denial: tier(9984, 30, 5),
                    disable_success: vec![name("cluster.local.")],
                    disable_denial: vec![name("cluster.local.")],
                    ..defaults()
                }),
            ),
            (
                "cache {\n  disable denial\n}",
                ok(CacheConfig {
                    disable_denial: vec![Name::root()],
                    ..defaults()
                }),
            ),
            (
                "cache {\n  success 5000\n  denial 100 60 1\n}",
                ok(CacheConfig {
                    success: tier(4864, 3600, 5),
                    denial: tier(1024, 60, 1),
                    ..defaults()
                }),
            ),
            (
                "cache {\n  success 20000 600\n}",
                ok(CacheConfig {
                    success: tier(19968, 600, 5),
                    ..defaults()
                }),
            ),
            (
                "cache {\n  prefetch 10\n}",
                ok(CacheConfig {
                    prefetch: Some(Prefetch {
                        amount: 10,
                        duration: Duration::from_secs(60),
                        percentage: 10,
                    }),
                    ..defaults()
                }),
            ),
            (
                "cache {\n  prefetch 2 10m 50%\n}",
                ok(CacheConfig {
                    prefetch: Some(Prefetch {
                        amount: 2,
                        duration: Duration::from_secs(600),
                        percentage: 50,
                    }),
                    ..defaults()
                }),
            ),
            (
                "cache {\n  serve_stale\n}",
                ok(CacheConfig {
                    serve_stale: Some(ServeStale {
                        up_to: Duration::from_secs(3600),
                        verify: false,
                    }),
                    ..defaults()
                }),
            ),
            (
                "cache {\n  serve_stale 1h30m VERIFY\n  servfail 0\n  keepttl\n}",
                ok(CacheConfig {
                    serve_stale: Some(ServeStale {
                        up_to: Duration::from_secs(5400),
                        verify: true,
                    }),
                    servfail: Duration::ZERO,
                    keepttl: true,
                    ..defaults()
                }),
            ),
            (
                "cache {\n  servfail 5m\n}",
                ok(CacheConfig {
                    servfail: Duration::from_secs(300),
                    ..defaults()
                }),
            ),
            // Negatives.
            (
                "cache 0",
                Err(
                    "Corefile:2:7: plugin/cache: invalid TTL '0', expected a number of seconds above zero",
                ),
            ),
            ("cache -5", Err("invalid TTL '-5'")),
            (
                "cache 30 a..b",
                Err("Corefile:2:10: plugin/cache: invalid zone 'a..b'"),
            ),
            (
                "cache {\n  bogus\n}",
                Err("Corefile:3:3: plugin/cache: unknown property 'bogus'"),
            ),
            (
                "cache {\n  success\n}",
                Err("Corefile:3:11: plugin/cache: missing argument, expected a capacity"),
            ),
            ("cache {\n  success lots\n}", Err("invalid capacity 'lots'")),
            ("cache {\n  success -1\n}", Err("invalid capacity '-1'")),
            ("cache {\n  denial 100 0\n}", Err("invalid TTL '0'")),
            (
                "cache {\n  denial 100 60 -1\n}",
                Err("invalid minimum TTL '-1'"),
            ),
            (
                "cache {\n  denial 100 60 1 2\n}",
                Err("unexpected argument '2' after 'denial'"),
            ),
            (
                "cache {\n  prefetch\n}",
                Err("missing argument, expected an amount"),
            ),
            (
                "cache {\n  prefetch -1\n}",
                Err("invalid prefetch amount '-1'"),
            ),
            ("cache {\n  prefetch 1 x\n}", Err("invalid duration 'x'")),
            (
                "cache {\n  prefetch 1 1m 50\n}",
                Err("invalid percentage '50', expected 10% to 90%"),
            ),
            (
                "cache {\n  prefetch 1 1m 5%\n}",
                Err("invalid percentage '5%'"),
            ),
            (
                "cache {\n  prefetch 1 1m 91%\n}",
                Err("invalid percentage '91%'"),
            ),
            (
                "cache {\n  prefetch 1 1m 10% x\n}",
                Err("unexpected argument 'x'"),
            ),
            ("cache {\n  serve_stale x\n}", Err("invalid duration 'x'")),
            (
                "cache {\n  serve_stale 1h later\n}",
                Err("invalid serve_stale mode 'later'"),
            ),
            (
                "cache {\n  servfail\n}",
                Err("missing argument, expected a duration"),
            ),
            (
                "cache {\n  servfail 6m\n}",
                Err("servfail '6m' is too long, expected at most 5m"),
            ),
            (
                "cache {\n  servfail 1s 2s\n}",
                Err("unexpected argument '2s'"),
            ),
            (
                "cache {\n  disable\n}",
                Err("missing argument, expected success or denial"),
            ),
            (
                "cache {\n  disable everything\n}",
                Err("cannot disable 'everything'"),
            ),
            (
                "cache {\n  disable success a..b\n}",
                Err("invalid zone 'a..b'"),
            ),
            (
                "cache {\n  keepttl yes\n}",
                Err("unexpected argument 'yes' after 'keepttl'"),
            ),
            (
                "cache {\n  keepttl {\n  }\n}",
                Err("unexpected option block, 'keepttl' takes none"),
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

    #[test]
    fn zones_default_to_root_without_block_zones() {
        let cf = parse_str_with_env(".:53 {\n  cache\n}", "Corefile", Path::new("."), &|_| None)
            .expect("parses");
        let config = parse(&mut Dispenser::new(&cf.blocks[0].directives[0]), &[]).expect("valid");
        assert_eq!(config.zones, vec![Name::root()]);
    }
}
