//! Picks the server block for a query name: the block whose zone is the longest suffix of the
//! name, among the blocks of one listen address (`.` last). Built once; no allocation per query.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name};

use crate::plugin::Chain;

/// Zones of one listen address and their chains, longest zone first.
#[derive(Debug, Default)]
pub(crate) struct Router {
    routes: Vec<(LowerName, Arc<Chain>)>,
    /// The listener's own address, the source of internal queries.
    local: Option<SocketAddr>,
}

impl Router {
    pub(crate) fn new(routes: impl IntoIterator<Item = (Name, Arc<Chain>)>) -> Self {
        let mut routes: Vec<(LowerName, Arc<Chain>)> = routes
            .into_iter()
            .map(|(zone, chain)| (LowerName::new(&zone), chain))
            .collect();
        // Two different zones with the same label count can never both match a name, so sorting
        // by label count alone makes the first match the longest one.
        routes.sort_by_key(|(zone, _)| std::cmp::Reverse(zone.num_labels()));
        Router {
            routes,
            local: None,
        }
    }

    pub(crate) fn set_local(&mut self, addr: SocketAddr) {
        self.local = Some(addr);
    }

    /// The listener's own address (unspecified before it is bound).
    pub(crate) fn local(&self) -> SocketAddr {
        self.local
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The chain of the block whose zone is the longest suffix of `name`.
    pub(crate) fn route(&self, name: &LowerName) -> Option<&Chain> {
        self.routes
            .iter()
            .find(|(zone, _)| zone.zone_of(name))
            .map(|(_, chain)| chain.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> Arc<Chain> {
        Arc::new(Chain::default())
    }

    fn lower(s: &str) -> LowerName {
        LowerName::new(&Name::from_ascii(s).unwrap())
    }

    #[test]
    fn longest_zone_wins_and_root_is_last() {
        let (root, org, ex, sub) = (chain(), chain(), chain(), chain());
        let r = Router::new([
            (Name::root(), root.clone()),
            (Name::from_ascii("example.org.").unwrap(), ex.clone()),
            (Name::from_ascii("org.").unwrap(), org.clone()),
            (Name::from_ascii("a.example.org.").unwrap(), sub.clone()),
        ]);
        let pick = |n: &str| r.route(&lower(n)).map(|c| c as *const Chain);
        assert_eq!(pick("x.a.EXAMPLE.org."), Some(Arc::as_ptr(&sub)));
        assert_eq!(pick("b.example.org."), Some(Arc::as_ptr(&ex)));
        assert_eq!(pick("example.org."), Some(Arc::as_ptr(&ex)));
        assert_eq!(pick("xexample.org."), Some(Arc::as_ptr(&org)));
        assert_eq!(pick("example.com."), Some(Arc::as_ptr(&root)));
    }

    #[test]
    fn no_match() {
        let r = Router::new([(Name::from_ascii("example.org.").unwrap(), chain())]);
        assert!(r.route(&lower("example.com.")).is_none());
        assert!(r.route(&lower(".")).is_none());
    }
}
