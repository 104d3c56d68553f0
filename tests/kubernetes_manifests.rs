//! The kubernetes plugin's manifests source end to end: answers follow edits of the manifest
//! files, a malformed edit keeps the old answers (with a warning naming the file), a malformed
//! manifest at start-up is an error naming the file and document. This binary installs a
//! process-wide log subscriber (the source polls on a blocking thread).

mod common;

use std::time::{Duration, Instant};

use common::{Opts, global_logs, query_tcp, query_udp, start_with_files, try_start_with_files};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

const COREFILE: &str =
    ". {\n    kubernetes cluster.local {\n        manifests cluster.yaml\n    }\n}\n";

fn cluster(services: &[(&str, &str)]) -> String {
    let mut s = String::from("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns\n");
    for (name, ip) in services {
        s.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: ns\nspec:\n  clusterIP: {ip}\n  clusterIPs: [{ip}]\n  ports:\n    - name: p\n      port: 80\n"
        ));
    }
    s
}

/// The rcode and the A addresses of `name` over UDP (`tcp` false) or TCP.
async fn addresses_over(
    addr: std::net::SocketAddr,
    name: &str,
    tcp: bool,
) -> (ResponseCode, Vec<String>) {
    let o = Opts::default();
    let m = if tcp {
        query_tcp(addr, name, RecordType::A, &o).await
    } else {
        query_udp(addr, name, RecordType::A, &o).await
    };
    assert!(m.metadata.authoritative);
    let mut ips: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    ips.sort();
    (m.metadata.response_code, ips)
}

/// The answer for `name` while nothing changes: UDP and TCP must agree.
async fn addresses(addr: std::net::SocketAddr, name: &str) -> (ResponseCode, Vec<String>) {
    let udp = addresses_over(addr, name, false).await;
    assert_eq!(
        udp,
        addresses_over(addr, name, true).await,
        "UDP and TCP differ for {name}"
    );
    udp
}

/// Polls (every 50 ms, at most 5 s: the source polls every 2 s) until `name` answers `want`
/// over UDP and TCP.
async fn eventually(addr: std::net::SocketAddr, name: &str, want: (ResponseCode, Vec<String>)) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let udp = addresses_over(addr, name, false).await;
        let tcp = addresses_over(addr, name, true).await;
        if udp == want && tcp == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: still {udp:?} / {tcp:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The SOA serial at the apex.
async fn serial(addr: std::net::SocketAddr) -> u32 {
    let m = query_udp(addr, "cluster.local.", RecordType::SOA, &Opts::default()).await;
    match m.answers.first().map(|r| &r.data) {
        Some(RData::SOA(soa)) => soa.serial,
        other => panic!("no SOA at the apex: {other:?}"),
    }
}

fn ok(ip: &str) -> (ResponseCode, Vec<String>) {
    (ResponseCode::NoError, vec![ip.to_owned()])
}

#[tokio::test]
async fn manifests_reload_follows_edits_and_keeps_old_objects_on_errors() {
    let logs = global_logs();
    let s = start_with_files(
        COREFILE,
        &[("cluster.yaml", &cluster(&[("a", "10.0.0.1")]))],
    )
    .await;
    let a = "a.ns.svc.cluster.local.";
    let b = "b.ns.svc.cluster.local.";
    assert_eq!(addresses(s.addr, a).await, ok("10.0.0.1"));
    assert_eq!(addresses(s.addr, b).await.0, ResponseCode::NXDomain);
    let serial_before = serial(s.addr).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    assert!(
        u64::from(serial_before).abs_diff(now) < 60,
        "serial {serial_before} is not the load time {now}"
    );

    // Change an IP and add a service.
    let dir = s.dir.path().to_path_buf();
    common::write_file(
        &dir,
        "cluster.yaml",
        &cluster(&[("a", "10.0.0.9"), ("b", "10.0.0.2")]),
    );
    eventually(s.addr, a, ok("10.0.0.9")).await;
    eventually(s.addr, b, ok("10.0.0.2")).await;
    assert!(serial(s.addr).await >= serial_before);

    // A malformed file: the previous objects keep being served, a warning names the file.
    common::write_file(
        &dir,
        "cluster.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: [unclosed\n",
    );
    let path = dir.join("cluster.yaml").display().to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    let warning = loop {
        let text = logs.text();
        if let Some(line) = text
            .lines()
            .find(|l| l.contains("WARN") && l.contains(&path))
        {
            break line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no warning naming {path}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        warning.contains("keeping the previous objects") && warning.contains("document 1"),
        "{warning}"
    );
    assert_eq!(addresses(s.addr, a).await, ok("10.0.0.9"));
    assert_eq!(addresses(s.addr, b).await, ok("10.0.0.2"));

    // Fixed again: served from the new content.
    common::write_file(&dir, "cluster.yaml", &cluster(&[("b", "10.0.0.3")]));
    eventually(s.addr, b, ok("10.0.0.3")).await;
    eventually(s.addr, a, (ResponseCode::NXDomain, Vec::new())).await;
    // The source polls every 2 s and each poll sees one version of the file: the malformed one
    // and this one were seen at least two polls after the first load, so a later second.
    assert!(
        serial(s.addr).await > serial_before,
        "SOA serial did not move"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn malformed_manifest_at_start_is_an_error_naming_file_and_document() {
    let good = cluster(&[("a", "10.0.0.1")]);
    let bad = format!("{good}---\napiVersion: v1\nkind: Service\nmetadata: {{name: [x\n");
    let err = match try_start_with_files(COREFILE, &[("cluster.yaml", &bad)]).await {
        Ok(s) => {
            s.shutdown().await;
            panic!("a malformed manifest must not start");
        }
        Err(e) => e.to_string(),
    };
    assert!(err.contains("cluster.yaml: document 3"), "{err}");
    assert!(err.contains("plugin/kubernetes"), "{err}");
    // The Corefile location of the `manifests` line.
    assert!(err.contains("Corefile:3:"), "{err}");

    // A valid YAML document that is not a valid object is named the same way.
    let invalid = format!(
        "{good}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: b\n  namespace: ns\nspec:\n  clusterIPs: 42\n"
    );
    let err = match try_start_with_files(COREFILE, &[("cluster.yaml", &invalid)]).await {
        Ok(s) => {
            s.shutdown().await;
            panic!("an invalid object must not start");
        }
        Err(e) => e.to_string(),
    };
    assert!(err.contains("cluster.yaml: document 3"), "{err}");

    // A missing file too.
    let err = match try_start_with_files(COREFILE, &[]).await {
        Ok(s) => {
            s.shutdown().await;
            panic!("a missing manifest must not start");
        }
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("cluster.yaml") && err.contains("cannot read"),
        "{err}"
    );
}

#[test]
fn malformed_manifest_stops_the_binary_with_the_file_named() {
    let dir = common::corefile_dir(COREFILE);
    std::fs::write(
        dir.path().join("cluster.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns\n---\n- not an object\n",
    )
    .expect("write manifest");
    let out = common::run_binary(
        &["-conf", "Corefile", "-dns.port", "0"],
        dir.path(),
        Duration::from_secs(10),
    );
    assert!(
        out.code.is_some_and(|c| c != 0),
        "exit {:?}\n{}",
        out.code,
        out.stderr
    );
    assert!(
        out.stderr.contains("cluster.yaml: document 2"),
        "{}",
        out.stderr
    );
}
