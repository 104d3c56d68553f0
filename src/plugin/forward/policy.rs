//! The order in which a query tries the upstreams: `random`, `round_robin` or `sequential`.

use std::sync::atomic::{AtomicUsize, Ordering};

use rand::seq::SliceRandom;

use super::setup::Policy;

/// Picks upstream orders; holds the round-robin position.
#[derive(Debug, Default)]
pub(crate) struct Picker {
    policy: Policy,
    next: AtomicUsize,
}

impl Picker {
    pub(crate) fn new(policy: Policy) -> Self {
        Picker {
            policy,
            next: AtomicUsize::new(0),
        }
    }

    /// Indices `0..n` in the order this query tries them.
    pub(crate) fn order(&self, n: usize) -> Vec<usize> {
        let mut list: Vec<usize> = (0..n).collect();
        match self.policy {
            Policy::Sequential => {}
            Policy::Random => list.shuffle(&mut rand::rng()),
            Policy::RoundRobin => {
                if n > 0 {
                    let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
                    list.rotate_left(start);
                }
            }
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_keeps_the_configured_order() {
        let p = Picker::new(Policy::Sequential);
        assert_eq!(p.order(3), vec![0, 1, 2]);
        assert_eq!(p.order(3), vec![0, 1, 2]);
    }

    #[test]
    fn round_robin_rotates_per_query() {
        let p = Picker::new(Policy::RoundRobin);
        assert_eq!(p.order(3), vec![0, 1, 2]);
        assert_eq!(p.order(3), vec![1, 2, 0]);
        assert_eq!(p.order(3), vec![2, 0, 1]);
        assert_eq!(p.order(3), vec![0, 1, 2]);
        assert!(p.order(0).is_empty());
    }

    #[test]
    fn random_is_a_permutation_and_varies() {
        let p = Picker::new(Policy::Random);
        let mut firsts = [0usize; 3];
        for _ in 0..300 {
            let mut o = p.order(3);
            firsts[o[0]] += 1;
            o.sort_unstable();
            assert_eq!(o, vec![0, 1, 2]);
        }
        assert!(firsts.iter().all(|&c| c > 0), "{firsts:?}");
    }
}
