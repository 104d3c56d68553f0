//! clusterdns: a cluster DNS server for Kubernetes, a drop-in replacement for CoreDNS.
//!
//! ```text
//! UDP/TCP socket -> server::handler -> server::router -> plugin chain -> server::reply -> socket
//! ```
//! `run` is the only composition root: Corefile -> config -> servers.

pub mod config;
pub mod corefile;
pub mod dns;
pub mod plugin;
mod server;
