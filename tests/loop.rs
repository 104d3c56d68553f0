//! The `loop` plugin with the real binary: a Corefile that forwards to itself makes the process
//! exit non-zero with CoreDNS's message; a sane upstream causes no false alarm.

mod common;

use std::time::Duration;

use common::upstream::{Mode, Upstream};
use common::{corefile_dir, run_binary};
use hickory_proto::rr::RecordType;

/// A port free for both UDP and TCP on 127.0.0.1 right now.
fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port");
}

#[test]
fn loop_forwarding_to_itself_exits_non_zero_with_the_loop_message() {
    for attempt in 0..5 {
        let port = free_port();
        let dir = corefile_dir(&format!(
            ".:{port} {{\n    bind 127.0.0.1\n    loop\n    forward . 127.0.0.1:{port}\n}}\n"
        ));
        let out = run_binary(&["-conf", "Corefile"], dir.path(), Duration::from_secs(20));
        let text = format!("{}\n{}", out.stdout, out.stderr);
        if out.code.is_some() && text.contains("address already in use") && attempt < 4 {
            continue;
        }
        assert_eq!(out.code, Some(1), "the process must exit non-zero: {out:?}");
        let line = text
            .lines()
            .find(|l| l.contains("Loop ("))
            .unwrap_or_else(|| panic!("no loop message: {out:?}"));
        let want = format!(
            " -> 127.0.0.1:{port}) detected for zone \".\", see \
             https://coredns.io/plugins/loop#troubleshooting. Query: \"HINFO "
        );
        assert!(line.contains("Loop (127.0.0.1:"), "{line}");
        assert!(line.contains(&want), "{line}");
        // The probe name: two numbers under the zone.
        let name = line
            .rsplit("HINFO ")
            .next()
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or_else(|| panic!("no probe name in {line}"));
        let labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
        assert_eq!(labels.len(), 2, "{name}");
        assert!(labels.iter().all(|l| l.parse::<u64>().is_ok()), "{name}");
        assert!(
            out.stderr.contains("Loop ("),
            "the exit error names the loop on stderr: {}",
            out.stderr
        );
        return;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loop_no_false_alarm_with_a_sane_upstream() {
    let up = Upstream::start(Mode::Normal).await;
    let upstream = up.addr;
    let port = free_port();
    let dir = corefile_dir(&format!(
        ".:{port} {{\n    bind 127.0.0.1\n    loop\n    forward . {upstream}\n}}\n"
    ));
    let path = dir.path().to_path_buf();
    let run = tokio::task::spawn_blocking(move || {
        run_binary(&["-conf", "Corefile"], &path, Duration::from_secs(4))
    });
    up.wait_for("the loop probe", Duration::from_secs(4), |seen| {
        seen.iter().any(|q| q.qtype == RecordType::HINFO)
    })
    .await;
    let out = run.await.expect("binary run");
    assert_eq!(
        out.code, None,
        "still serving when stopped at the time limit: {out:?}"
    );
    assert!(
        !out.stdout.contains("Loop (") && !out.stderr.contains("Loop ("),
        "{out:?}"
    );
    let probes: Vec<_> = up
        .seen()
        .into_iter()
        .filter(|q| q.qtype == RecordType::HINFO)
        .collect();
    assert_eq!(
        probes.len(),
        1,
        "answered at once, so sent once: {probes:?}"
    );
    let labels: Vec<&str> = probes[0].name.trim_end_matches('.').split('.').collect();
    assert_eq!(labels.len(), 2, "{probes:?}");
}
