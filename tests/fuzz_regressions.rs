//! The fuzz targets' bodies (`fuzz/common/*.rs`, the very code the cargo-fuzz binaries run) over
//! the real code paths:
//!
//! * every input under `fuzz/regressions/<target>/` (crashes the fuzzers found, fixed since) runs
//!   through its target and must pass its checks;
//! * the seeds run too and must do what they were made for: the committed `corefile` and
//!   `request` seeds replay cleanly; the generated `forward_reply` seeds are the committed ones
//!   and each is served or dropped as its name says; the `request_index` and `manifests` seeds,
//!   generated from the repository's YAML files as they are now, load (or fail) as made.
//!
//! `cargo test --test fuzz_regressions -- --ignored write_seeds` rewrites the generated seeds.

#[allow(dead_code, unreachable_pub)]
#[path = "../fuzz/common/corefile.rs"]
mod corefile;
#[allow(dead_code, unreachable_pub)]
#[path = "../fuzz/common/forward_reply.rs"]
mod forward_reply;
#[allow(dead_code, unreachable_pub)]
#[path = "../fuzz/common/manifests.rs"]
mod manifests;
#[allow(dead_code, unreachable_pub)]
#[path = "../fuzz/common/request.rs"]
mod request;
#[allow(dead_code, unreachable_pub)]
#[path = "../fuzz/common/request_index.rs"]
mod request_index;

use std::path::{Path, PathBuf};

/// A file's name and bytes.
type Named = (String, Vec<u8>);

const TARGETS: [&str; 5] = [
    "corefile",
    "request",
    "request_index",
    "manifests",
    "forward_reply",
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files directly in `dir` whose names start with `prefix`, sorted; none if `dir` is absent.
fn files(dir: &Path, prefix: &str) -> Vec<Named> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<Named> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(prefix) && !name.starts_with('.'))
        .map(|name| {
            let bytes = std::fs::read(dir.join(&name)).expect("read input");
            (name, bytes)
        })
        .collect();
    out.sort();
    out
}

fn run(target: &str, data: &[u8]) {
    match target {
        "corefile" => corefile::run(data),
        "request" => request::run(data),
        "request_index" => {
            request_index::run(data);
        }
        "manifests" => {
            let _ = manifests::run(data);
        }
        "forward_reply" => {
            forward_reply::run(data);
        }
        other => panic!("no fuzz target {other}"),
    }
}

#[test]
fn regressions_replay_cleanly() {
    let root = fuzz_dir().join("regressions");
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                TARGETS.contains(&name.as_str()) || !entry.path().is_dir(),
                "fuzz/regressions/{name}/ names no fuzz target"
            );
        }
    }
    for target in TARGETS {
        for (name, data) in files(&root.join(target), "") {
            eprintln!("fuzz/regressions/{target}/{name}");
            run(target, &data);
        }
    }
}

#[test]
fn corefile_and_request_seeds_replay_cleanly() {
    for target in ["corefile", "request"] {
        let seeds = files(&fuzz_dir().join("corpus").join(target), "seed-");
        assert!(!seeds.is_empty(), "no seeds for {target}");
        for (name, data) in seeds {
            eprintln!("{target}/{name}");
            run(target, &data);
        }
    }
}

/// The committed seeds of a generated corpus are the generator's output.
fn assert_committed(target: &str, generated: &[Named]) {
    let committed = files(&fuzz_dir().join("corpus").join(target), "seed-");
    let names = |v: &[Named]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    let mut want = generated.to_vec();
    want.sort();
    assert_eq!(
        names(&committed),
        names(&want),
        "fuzz/corpus/{target}: regenerate with `cargo test --test fuzz_regressions -- --ignored \
         write_seeds`"
    );
    for ((name, got), (_, want)) in committed.iter().zip(&want) {
        assert!(
            got == want,
            "fuzz/corpus/{target}/{name} differs from its generator"
        );
    }
}

#[test]
fn forward_reply_seeds_are_served_or_dropped_as_named() {
    let seeds = forward_reply::seeds();
    let generated: Vec<Named> = seeds
        .iter()
        .map(|s| (s.name.clone(), s.bytes.clone()))
        .collect();
    assert_committed("forward_reply", &generated);
    for seed in &seeds {
        assert_eq!(
            forward_reply::run(&seed.bytes),
            Some(seed.expect),
            "forward_reply/{}",
            seed.name
        );
    }
}

#[test]
fn request_index_seeds_load_their_clusters() {
    // Made from the demo cluster as it is now (the committed seeds are a snapshot of it).
    let seeds = request_index::seeds();
    for (name, data) in &seeds {
        assert!(
            request_index::run(data),
            "request_index/{name}: the cluster does not load"
        );
    }
}

#[test]
fn manifests_seeds_load_or_fail_as_made() {
    let seeds = manifests::seeds();
    // Made from the repository's YAML files as they are now (the committed seeds are a
    // snapshot of them).
    for (name, data, loads) in &seeds {
        let result = manifests::run(data);
        assert_eq!(result.is_ok(), *loads, "manifests/{name}: {result:?}");
    }
    let demo = seeds
        .iter()
        .find(|(n, _, _)| n == "seed-demo-cluster")
        .map(|(_, b, _)| manifests::run(b));
    assert!(
        matches!(demo, Some(Ok(n)) if n > 30),
        "the demo cluster loads its objects: {demo:?}"
    );
}

/// Writes the generated seed corpora (`fuzz/corpus/{forward_reply,request_index,manifests}/`),
/// replacing their `seed-*` files.
#[test]
#[ignore = "a generator, not a check: run it after changing a seed generator"]
fn write_seeds() {
    let sets: [(&str, Vec<Named>); 3] = [
        (
            "forward_reply",
            forward_reply::seeds()
                .into_iter()
                .map(|s| (s.name, s.bytes))
                .collect(),
        ),
        ("request_index", request_index::seeds()),
        (
            "manifests",
            manifests::seeds()
                .into_iter()
                .map(|(n, b, _)| (n, b))
                .collect(),
        ),
    ];
    for (target, seeds) in sets {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        for (name, _) in files(&dir, "seed-") {
            std::fs::remove_file(dir.join(name)).expect("remove old seed");
        }
        for (name, bytes) in seeds {
            std::fs::write(dir.join(name), bytes).expect("write seed");
        }
    }
}
