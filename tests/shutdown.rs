//! Graceful shutdown of the real binary: SIGTERM with health's `lameduck` keeps answering during
//! the lame-duck period, then the process stops answering and exits 0; SIGINT exits 0.

#[path = "support/binary.rs"]
mod binary;
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use binary::{Proc, free_port, write_corefile};
use common::{Opts, build, tcp_raw, udp_raw};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

/// Whether `addr` answers a whoami query over UDP within `wait`.
async fn answers(addr: SocketAddr, wait: Duration) -> bool {
    let query = build("example.org.", RecordType::A, &Opts::default());
    udp_raw(addr, &query, wait)
        .await
        .and_then(|b| Message::from_vec(&b).ok())
        .is_some_and(|m| m.metadata.response_code == ResponseCode::NoError)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_lameduck_keeps_answering_then_exits_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let health = free_port();
    write_corefile(
        dir.path(),
        &format!(
            ".:0 {{\n    bind 127.0.0.1\n    health 127.0.0.1:{health} {{\n        lameduck 2s\n    }}\n    whoami\n}}\n"
        ),
    );
    let mut proc = Proc::start(dir.path());
    let addr = SocketAddr::from(([127, 0, 0, 1], proc.first_port()));
    assert!(answers(addr, common::TIMEOUT).await);

    proc.signal("TERM");
    proc.wait_for(|l| l.contains("SIGTERM: lameduck"), "the lameduck log line");
    // Inside the lame-duck period: still answering, over UDP and TCP, and not exited.
    assert!(answers(addr, common::TIMEOUT).await, "{}", proc.output());
    let query = build("example.org.", RecordType::A, &Opts::default());
    assert!(tcp_raw(addr, &query, common::TIMEOUT).await.is_some());
    assert_eq!(proc.exited(), None, "{}", proc.output());

    assert_eq!(proc.wait_exit(), Some(0), "{}", proc.output());
    let out = proc.output();
    let lameduck = out.find("SIGTERM: lameduck").expect("lameduck logged");
    let shutting = out.find("SIGTERM: shutting down").expect("shutdown logged");
    assert!(lameduck < shutting, "{out}");
    assert!(!answers(addr, Duration::from_millis(300)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_exits_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_corefile(dir.path(), ".:0 {\n    bind 127.0.0.1\n    whoami\n}\n");
    let mut proc = Proc::start(dir.path());
    let addr = SocketAddr::from(([127, 0, 0, 1], proc.first_port()));
    assert!(answers(addr, common::TIMEOUT).await);
    proc.signal("INT");
    assert_eq!(proc.wait_exit(), Some(0), "{}", proc.output());
    assert!(proc.output().contains("SIGINT: shutting down"));
    assert!(!proc.output().contains("lameduck"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_ends_the_lameduck_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    let health = free_port();
    write_corefile(
        dir.path(),
        &format!(
            ".:0 {{\n    bind 127.0.0.1\n    health 127.0.0.1:{health} {{\n        lameduck 1h\n    }}\n    whoami\n}}\n"
        ),
    );
    let mut proc = Proc::start(dir.path());
    proc.signal("TERM");
    proc.wait_for(|l| l.contains("SIGTERM: lameduck"), "the lameduck log line");
    proc.signal("INT");
    assert_eq!(proc.wait_exit(), Some(0), "{}", proc.output());
}
