//! Health of one upstream: consecutive failed probes, and whether a probe loop runs. Probes
//! (`. IN NS`) start only after a query to the upstream failed and repeat every `health_check`
//! interval until one gets any reply. Pure state here; the loop lives in `mod.rs`.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// What a probe result changed, so a state change is logged once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    None,
    WentDown,
    CameBack,
}

#[derive(Debug, Default)]
pub(crate) struct Health {
    fails: AtomicU32,
    checking: AtomicBool,
}

impl Health {
    /// Down after `max_fails` failed probes in a row; never with `max_fails` 0.
    pub(crate) fn down(&self, max_fails: u32) -> bool {
        max_fails != 0 && self.fails.load(Ordering::Relaxed) >= max_fails
    }

    /// Claims the probe loop; `false` if one already runs.
    pub(crate) fn begin_check(&self) -> bool {
        self.checking
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Releases the probe loop.
    pub(crate) fn end_check(&self) {
        self.checking.store(false, Ordering::Release);
    }

    pub(crate) fn probe_failed(&self, max_fails: u32) -> Change {
        let before = self.fails.fetch_add(1, Ordering::Relaxed);
        if max_fails != 0 && before.saturating_add(1) == max_fails {
            Change::WentDown
        } else {
            Change::None
        }
    }

    pub(crate) fn probe_succeeded(&self, max_fails: u32) -> Change {
        let was_down = self.down(max_fails);
        self.fails.store(0, Ordering::Relaxed);
        if was_down {
            Change::CameBack
        } else {
            Change::None
        }
    }

    #[cfg(test)]
    pub(crate) fn fails(&self) -> u32 {
        self.fails.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_after_max_fails_and_back_on_success() {
        let h = Health::default();
        assert!(!h.down(2));
        assert_eq!(h.probe_failed(2), Change::None);
        assert!(!h.down(2));
        assert_eq!(h.probe_failed(2), Change::WentDown);
        assert!(h.down(2));
        assert_eq!(h.probe_failed(2), Change::None, "logged once");
        assert_eq!(h.fails(), 3);
        assert_eq!(h.probe_succeeded(2), Change::CameBack);
        assert!(!h.down(2));
        assert_eq!(h.probe_succeeded(2), Change::None);
    }

    #[test]
    fn max_fails_zero_never_marks_down() {
        let h = Health::default();
        for _ in 0..10 {
            assert_eq!(h.probe_failed(0), Change::None);
        }
        assert!(!h.down(0));
    }

    #[test]
    fn one_probe_loop_at_a_time() {
        let h = Health::default();
        assert!(h.begin_check());
        assert!(!h.begin_check());
        h.end_check();
        assert!(h.begin_check());
    }
}
