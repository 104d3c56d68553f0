//! The forward path in-process: request bytes -> handler -> `forward` -> a loopback UDP upstream
//! (started in the bench, answering one A record) -> reply bytes; next to it the bare round trip
//! to that upstream from one connected socket, so the plugin's own cost is the difference.
//! Run: `cargo bench --bench forward -- --warm-up-time 1 --measurement-time 3`.

use std::net::SocketAddr;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;

fn query(name: &str) -> Vec<u8> {
    let mut msg = Message::query();
    msg.metadata.id = 7;
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    msg.to_vec().unwrap()
}

/// Answers every query with one A record, forever.
async fn upstream(sock: UdpSocket) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let Ok(req) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        let Some(q) = req.queries.first().cloned() else {
            continue;
        };
        let mut reply = req.into_response();
        reply.metadata.recursion_available = true;
        reply.add_answer(Record::from_rdata(
            q.name().clone(),
            300,
            RData::A(A([192, 0, 2, 10].into())),
        ));
        if let Ok(bytes) = reply.to_vec() {
            let _ = sock.send_to(&bytes, from).await;
        }
    }
}

fn forward_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let up = rt.block_on(UdpSocket::bind("127.0.0.1:0")).unwrap();
    let up_addr = up.local_addr().unwrap();
    rt.spawn(upstream(up));

    let corefile = format!(". {{\n    forward . {up_addr}\n}}\n");
    let config = clusterdns::config_from_str(&corefile, "Corefile", Path::new("."), 53).unwrap();
    let harness = clusterdns::Harness::new(&config).unwrap();
    let src: SocketAddr = "10.244.0.9:40000".parse().unwrap();
    let bytes = query("external.example.");

    // Sanity: a real answer comes back through the plugin.
    let reply = rt.block_on(harness.handle(&bytes, src, false)).unwrap();
    let reply = Message::from_vec(&reply).unwrap();
    assert_eq!(reply.metadata.id, 7);
    assert_eq!(reply.answers.len(), 1);

    let mut group = c.benchmark_group("forward");
    group.bench_function("udp_via_forward", |b| {
        b.iter(|| rt.block_on(harness.handle(std::hint::black_box(&bytes), src, false)))
    });
    let client = rt
        .block_on(async {
            let s = UdpSocket::bind("127.0.0.1:0").await?;
            s.connect(up_addr).await?;
            Ok::<_, std::io::Error>(s)
        })
        .unwrap();
    let mut buf = vec![0u8; 4096];
    group.bench_function("upstream_round_trip_baseline", |b| {
        b.iter(|| {
            rt.block_on(async {
                client.send(&bytes).await.unwrap();
                client.recv(&mut buf).await.unwrap()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, forward_path);
criterion_main!(benches);
