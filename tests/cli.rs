//! The `clusterdns` binary's command line: version, plugin list, Corefile errors, flags, start-up
//! banner and graceful exit.

mod common;

use std::time::Duration;

use common::{corefile_dir, run_binary};

const LIMIT: Duration = Duration::from_secs(10);

#[test]
fn version_prints_two_lines() {
    let dir = tempfile::tempdir().unwrap();
    for flag in ["-version", "--version"] {
        let out = run_binary(&[flag], dir.path(), LIMIT);
        assert_eq!(out.code, Some(0), "{out:?}");
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 2, "{out:?}");
        assert_eq!(
            lines[0],
            format!("clusterdns-{}", env!("CARGO_PKG_VERSION"))
        );
        assert!(lines[1].starts_with("linux/"), "{}", lines[1]);
        assert!(lines[1].contains(", rustc 1."), "{}", lines[1]);
    }
}

#[test]
fn plugins_lists_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_binary(&["-plugins"], dir.path(), LIMIT);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.starts_with("Server types:\n  dns\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("\nOther plugins:\n"), "{}", out.stdout);
    for name in ["bind", "log", "whoami"] {
        assert!(
            out.stdout.lines().any(|l| l == format!("  dns.{name}")),
            "{name} missing: {}",
            out.stdout
        );
    }
    // Plugins that only parse say so; none pretends to work.
    for name in [
        "forward",
        "cache",
        "loop",
        "health",
        "ready",
        "prometheus",
        "reload",
    ] {
        let line = format!("  dns.{name} (parses and validates; not active yet)");
        assert!(
            out.stdout.lines().any(|l| l == line),
            "{name}: {}",
            out.stdout
        );
    }
    assert!(
        out.stdout.lines().any(|l| l == "  dns.kubernetes"),
        "{}",
        out.stdout
    );
}

#[test]
fn missing_corefile_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_binary(&["-conf", "nosuch/Corefile"], dir.path(), LIMIT);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("nosuch/Corefile"), "{}", out.stderr);
}

#[test]
fn default_corefile_in_working_directory_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_binary(&["-quiet"], dir.path(), LIMIT);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("Corefile"), "{}", out.stderr);
}

#[test]
fn default_corefile_in_working_directory_is_loaded() {
    let dir = corefile_dir(".:0 {\n    bogus\n}\n");
    let out = run_binary(&[], dir.path(), LIMIT);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stderr.trim(), "Corefile:2:5: Unknown directive 'bogus'");
}

#[test]
fn invalid_corefile_reports_file_line_column() {
    let dir = corefile_dir(".:0 {\n    whoami\n    bogus arg\n}\n");
    let out = run_binary(&["-conf", "Corefile"], dir.path(), LIMIT);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stderr.trim(), "Corefile:3:5: Unknown directive 'bogus'");

    let dir = corefile_dir("tls://.:0 {\n    whoami\n}\n");
    let out = run_binary(&["-conf=Corefile"], dir.path(), LIMIT);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.starts_with("Corefile:1:1: ")
            && out.stderr.contains("scheme 'tls' is not supported"),
        "{}",
        out.stderr
    );

    let dir = corefile_dir(".:0 {\n    log . \"{nonsense}\"\n}\n");
    let out = run_binary(&["--conf", "Corefile"], dir.path(), LIMIT);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.starts_with("Corefile:2:11: plugin/log: "),
        "{}",
        out.stderr
    );
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_binary(&["-nosuchflag"], dir.path(), LIMIT);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("nosuchflag"), "{}", out.stderr);
}

#[test]
fn starts_prints_banner_and_exits_zero_on_sigterm() {
    let dir = corefile_dir("example.org:0 {\n    bind 127.0.0.1\n    whoami\n}\n");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(["-conf", "Corefile"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the banner (the last line is the platform line).
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let done = line.starts_with("linux/");
            lines.push(line);
            if done {
                let _ = tx.send(lines.clone());
            }
        }
    });
    let lines = rx.recv_timeout(LIMIT).expect("banner");
    assert!(lines[0].starts_with("example.org.:"), "{lines:?}");
    let port: u16 = lines[0].rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0, "the bound port is printed");
    assert_eq!(
        lines[1],
        format!("clusterdns-{}", env!("CARGO_PKG_VERSION"))
    );

    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = std::time::Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
}

#[test]
fn quiet_prints_no_banner() {
    let dir = corefile_dir(".:0 {\n    bind 127.0.0.1\n    whoami\n}\n");
    let out = run_binary(
        &["-conf", "Corefile", "-quiet"],
        dir.path(),
        Duration::from_millis(1500),
    );
    assert_eq!(out.code, None, "still serving when killed: {out:?}");
    assert!(!out.stdout.contains("clusterdns-"), "{}", out.stdout);
}
