//! Pure DNS helpers shared by plugins: dashed IPs, reverse names, CIDR to reverse zones, SOA/NS
//! synthesis. No I/O, no plugin knowledge.
