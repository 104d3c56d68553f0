//! Pure DNS helpers shared by plugins and config: CIDR to reverse zones, dashed IPs, reverse
//! names, SOA/NS synthesis. No I/O, no plugin knowledge.

pub mod cidr;
pub mod ip;
pub mod rcode;
pub mod synth;
pub mod zone;
