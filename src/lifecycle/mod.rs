//! The process's life around the queries, in one place: start-up (bind, start every block's
//! hooks, wait for them), Corefile reloads (the schedule set by the `reload` directive, or
//! SIGUSR1) and the shutdown sequence on SIGTERM/SIGINT (lame duck, stop accepting, drain, stop
//! hooks).
//!
//! ```text
//! start::start ──> Running ──> shutdown::serve ──┬─ tick / SIGUSR1 ─> reload::Reloader::check ─> Running::reload
//!                                                └─ SIGTERM/SIGINT ─> lame duck ─> Running::shutdown
//! ```
//! Plugins take part only through the contract of `crate::plugin` (`Hook`, `StartContext`,
//! `ProcessSettings`); nothing here is imported by a plugin.

pub mod reload;
pub(crate) mod shutdown;
pub mod start;

pub use reload::{ReloadOutcome, Reloader};
pub use shutdown::set_shutting_down;
pub use start::{Running, start};
