//! Parser tests: one case per grammar feature and per error, asserting the exact tree (rendered
//! with every token's line:column) or the exact error text.

use std::fmt::Write as _;
use std::path::Path;

use super::super::{
    Corefile, CorefileError, Directive, Token, parse_file, parse_str, parse_str_with_env,
};

const ROOT: &str = "Corefile";

fn test_env(name: &str) -> Option<String> {
    match name {
        "ZONE" => Some("cluster.local".to_owned()),
        "PORT" => Some("1053".to_owned()),
        "PLUGIN" => Some("errors".to_owned()),
        _ => None,
    }
}

/// `text@L:C`, or `text@FILE:L:C` for tokens from a file other than the root (base name only).
fn tok(t: &Token) -> String {
    let file = &*t.location.file;
    if file == ROOT {
        format!("{}@{}:{}", t.text, t.location.line, t.location.column)
    } else {
        let base = Path::new(file)
            .file_name()
            .map_or(file.to_owned(), |n| n.to_string_lossy().into_owned());
        format!(
            "{}@{}:{}:{}",
            t.text, base, t.location.line, t.location.column
        )
    }
}

fn render_directives(out: &mut String, directives: &[Directive], indent: usize) {
    for d in directives {
        let mut line = tok(&d.name);
        for a in &d.args {
            line.push(' ');
            line.push_str(&tok(a));
        }
        let pad = "  ".repeat(indent);
        match &d.block {
            None => {
                let _ = writeln!(out, "{pad}{line}");
            }
            Some(block) => {
                let _ = writeln!(out, "{pad}{line} {{");
                render_directives(out, block, indent + 1);
                let _ = writeln!(out, "{pad}}}");
            }
        }
    }
}

/// The tree as indented text, one directive per line, every token with its location.
fn render(cf: &Corefile) -> String {
    let mut out = String::new();
    for block in &cf.blocks {
        let keys: Vec<String> = block.keys.iter().map(tok).collect();
        let _ = writeln!(out, "{} {{", keys.join(" "));
        render_directives(&mut out, &block.directives, 1);
        out.push_str("}\n");
    }
    out
}

fn run(text: &str, base: &Path) -> String {
    match parse_str_with_env(text, ROOT, base, &test_env) {
        Ok(cf) => render(&cf),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn grammar_cases() {
    let cases: &[(&str, &str, &str)] = &[
        ("empty file", "", ""),
        ("only comments", "# nothing\n\n  # here\n", ""),
        (
            "one block",
            ".:53 {\n  log\n}\n",
            ".:53@1:1 {\n  log@2:3\n}\n",
        ),
        (
            "arguments to end of line",
            ".:53 {\n  forward . 1.1.1.1 8.8.8.8\n  cache\n}",
            ".:53@1:1 {\n  forward@2:3 .@2:11 1.1.1.1@2:13 8.8.8.8@2:21\n  cache@3:3\n}\n",
        ),
        (
            "keys split on spaces",
            "a.local b.local:1053 {\n}",
            "a.local@1:1 b.local:1053@1:9 {\n}\n",
        ),
        (
            "keys split on commas",
            "a.local,b.local , c.local {\n}",
            "a.local@1:1 b.local@1:9 c.local@1:19 {\n}\n",
        ),
        (
            "trailing comma continues keys",
            "a.local,\n  b.local, c.local,\n d.local {\n}",
            "a.local@1:1 b.local@2:3 c.local@2:12 d.local@3:2 {\n}\n",
        ),
        (
            "brace on next line",
            "dns://.:53\n{\n  log\n}",
            "dns://.:53@1:1 {\n  log@3:3\n}\n",
        ),
        ("empty block braces", ".:53 {}\n", ".:53@1:1 {\n}\n"),
        ("empty block lines", ".:53 {\n}\n", ".:53@1:1 {\n}\n"),
        (
            "two blocks",
            "a {\n log\n}\nb {\n errors\n}\n",
            "a@1:1 {\n  log@2:2\n}\nb@4:1 {\n  errors@5:2\n}\n",
        ),
        (
            "block closes on key line of next",
            "a {\n log\n} b {\n}",
            "a@1:1 {\n  log@2:2\n}\nb@3:3 {\n}\n",
        ),
        (
            "single block without braces",
            ".:53\nlog\nforward . 1.1.1.1\n",
            ".:53@1:1 {\n  log@2:1\n  forward@3:1 .@3:9 1.1.1.1@3:11\n}\n",
        ),
        (
            "nested option block",
            ".:53 {\n  health {\n    lameduck 5s\n  }\n  ready\n}",
            ".:53@1:1 {\n  health@2:3 {\n    lameduck@3:5 5s@3:14\n  }\n  ready@5:3\n}\n",
        ),
        (
            "empty option block",
            ".:53 {\n  health {}\n}",
            ".:53@1:1 {\n  health@2:3 {\n  }\n}\n",
        ),
        (
            "nested two levels",
            "a {\n  x {\n    y 1 {\n      z\n    }\n  }\n}",
            "a@1:1 {\n  x@2:3 {\n    y@3:5 1@3:7 {\n      z@4:7\n    }\n  }\n}\n",
        ),
        (
            "option block on one line",
            "a {\n  forward . 1.1.1.1 { force_tcp }\n}",
            "a@1:1 {\n  forward@2:3 .@2:11 1.1.1.1@2:13 {\n    force_tcp@2:23\n  }\n}\n",
        ),
        (
            "closing braces on one line",
            "a { x { y } }",
            "a@1:1 {\n  x@1:5 {\n    y@1:9\n  }\n}\n",
        ),
        (
            "quoted arguments",
            "a {\n  log \"{remote} {name}\" \"\"\n}",
            "a@1:1 {\n  log@2:3 {remote} {name}@2:7 @2:25\n}\n",
        ),
        (
            "quoted brace is an argument",
            "a {\n  x \"{\" \"}\"\n}",
            "a@1:1 {\n  x@2:3 {@2:5 }@2:9\n}\n",
        ),
        (
            "multi-line quoted argument joins its closing line",
            "a {\n  x \"1\n2\" y\n  z\n}",
            "a@1:1 {\n  x@2:3 1\n2@2:5 y@3:4\n  z@4:3\n}\n",
        ),
        (
            "comments",
            "a { # block\n  log # the log\n  # whole line\n  errors#x\n}",
            "a@1:1 {\n  log@2:3\n  errors@4:3\n}\n",
        ),
        (
            "env in keys, names and args",
            "{$ZONE}:{%PORT%} {\n  {$PLUGIN}\n  kubernetes {$ZONE} {$UNSET}x\n}",
            "cluster.local:1053@1:1 {\n  errors@2:3\n  kubernetes@3:3 cluster.local@3:14 x@3:22\n}\n",
        ),
        (
            "crlf line ends",
            ".:53 {\r\n  log\r\n}\r\n",
            ".:53@1:1 {\n  log@2:3\n}\n",
        ),
        ("bom", "\u{feff}.:53 {\n}", ".:53@1:1 {\n}\n"),
        (
            "snippet import in a block",
            "(common) {\n  errors\n  log\n}\n.:53 {\n  import common\n  cache\n}",
            ".:53@5:1 {\n  errors@2:3\n  log@3:3\n  cache@7:3\n}\n",
        ),
        (
            "snippet brace on next line",
            "(s)\n{\n  log\n}\na {\n  import s\n}",
            "a@5:1 {\n  log@3:3\n}\n",
        ),
        (
            "snippet imported twice keeps lines apart",
            "(s) {\n  log\n}\na {\n  import s\n  import s\n}",
            "a@4:1 {\n  log@2:3\n  log@2:3\n}\n",
        ),
        (
            "snippet of server blocks imported at top level",
            "(blocks) {\n  a {\n    log\n  }\n}\nimport blocks\nb {\n}",
            "a@2:3 {\n  log@3:5\n}\nb@7:1 {\n}\n",
        ),
        (
            "snippet in a nested block",
            "(opts) {\n  force_tcp\n}\na {\n  forward . 1.1.1.1 {\n    import opts\n  }\n}",
            "a@4:1 {\n  forward@5:3 .@5:11 1.1.1.1@5:13 {\n    force_tcp@2:3\n  }\n}\n",
        ),
        (
            "snippet using an earlier snippet",
            "(a) {\n  log\n}\n(b) {\n  import a\n  errors\n}\nz {\n  import b\n}",
            "z@8:1 {\n  log@2:3\n  errors@6:3\n}\n",
        ),
        (
            "snippet with nested braces",
            "(s) {\n  health {\n    lameduck 5s\n  }\n}\nz {\n  import s\n}",
            "z@6:1 {\n  health@2:3 {\n    lameduck@3:5 5s@3:14\n  }\n}\n",
        ),
        (
            "import as a directive argument is not an import",
            "a {\n  log import x\n}",
            "a@1:1 {\n  log@2:3 import@2:7 x@2:14\n}\n",
        ),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, input, want) in cases {
        assert_eq!(run(input, dir.path()), *want, "case {name}");
    }
}

#[test]
fn error_cases() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "unclosed server block",
            ".:53 {\n  log\n",
            "Corefile:1:6: '{' is never closed, expected a matching '}'",
        ),
        (
            "unclosed option block",
            "a {\n  health {\n    lameduck 5s\n}\n",
            "Corefile:1:3: '{' is never closed, expected a matching '}'",
        ),
        (
            "stray close at top level",
            "a {\n}\n}\n",
            "Corefile:3:1: unexpected '}' with no block open, expected a matching '{' before it",
        ),
        (
            "close first",
            "}",
            "Corefile:1:1: unexpected '}' with no block open, expected a matching '{' before it",
        ),
        (
            "close in braceless block",
            ".:53\nlog\n}\n",
            "Corefile:3:1: unexpected '}' with no block open, expected a matching '{' before it",
        ),
        (
            "open without keys",
            "{\n}",
            "Corefile:1:1: unexpected '{', expected server block keys",
        ),
        (
            "open on a directive's next line",
            "a {\n  health\n  {\n  }\n}",
            "Corefile:3:3: unexpected '{', expected a directive name; an option block's '{' ends its directive's line",
        ),
        (
            "second block without braces",
            "a {\n}\nb\nlog\n",
            "Corefile:4:1: expected '{' to open the server block of 'b'",
        ),
        (
            "second block without braces at end",
            "a {\n}\nb c",
            "Corefile:3:3: expected '{' to open the server block of 'b c'",
        ),
        (
            "keys that are only commas",
            ", {\n}",
            "Corefile:1:1: server block has no keys, expected at least one address",
        ),
        (
            "directive after a closing brace",
            "a {\n  health { lameduck 5s } ready\n}",
            "Corefile:2:26: unexpected 'ready' after '}', expected a new line",
        ),
        (
            "unterminated quote",
            "a {\n  log \"abc\n}\n",
            "Corefile:2:7: unterminated quoted string, expected a closing '\"'",
        ),
        (
            "snippet redefined",
            "(s) {\n}\n(s) {\n  log\n}",
            "Corefile:3:1: snippet 's' is already defined at Corefile:1:1",
        ),
        (
            "snippet with other keys",
            "(s) a {\n}",
            "Corefile:1:5: a snippet definition must be the only key on its line",
        ),
        (
            "snippet without block",
            "(s)\nlog",
            "Corefile:1:1: expected '{' to open snippet 's'",
        ),
        (
            "snippet never closed",
            "(s) {\n  log\n",
            "Corefile:1:5: '{' is never closed, expected a matching '}'",
        ),
        (
            "snippet used before definition",
            "a {\n  import s\n}\n(s) {\n}",
            "Corefile:2:3: import: cannot read '",
        ),
        (
            "import without argument",
            "a {\n  import\n}",
            "Corefile:2:3: import takes exactly one argument, expected a snippet name, a file or a glob",
        ),
        (
            "import with two arguments",
            "import a b",
            "Corefile:1:1: import takes exactly one argument, expected a snippet name, a file or a glob",
        ),
        (
            "snippet importing itself",
            "(s) {\n  import s\n}\na {\n  import s\n}",
            "Corefile:2:3: import cycle: snippet 's' -> snippet 's', expected imports that end",
        ),
        (
            "snippets importing each other",
            "(a) {\n  import b\n}\n(b) {\n  import a\n}\nz {\n  import a\n}",
            "Corefile:5:3: import cycle: snippet 'a' -> snippet 'b' -> snippet 'a', expected imports that end",
        ),
        (
            "missing imported file",
            "a {\n  import nothere.conf\n}",
            "Corefile:2:3: import: cannot read '",
        ),
        (
            "glob star in a directory",
            "import */x.conf",
            "Corefile:1:1: import: '*' only in the last path component is supported, got '*/x.conf'",
        ),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, input, want) in cases {
        let got = run(input, dir.path());
        let want = format!("error: {want}");
        assert!(
            got.starts_with(&want),
            "case {name}:\n got: {got}\nwant: {want}"
        );
    }
}

#[test]
fn nesting_is_bounded() {
    let depth = super::MAX_NESTING + 1;
    let text = format!("a {{\n{}{}", "x {\n".repeat(depth), "}\n".repeat(depth + 1));
    let err =
        parse_str_with_env(&text, ROOT, Path::new("."), &test_env).expect_err("too deep must fail");
    assert_eq!(
        err.to_string(),
        format!(
            "Corefile:{depth}:3: blocks nested more than {} deep, expected fewer levels",
            super::MAX_NESTING
        )
    );
    let ok_depth = super::MAX_NESTING - 1;
    let text = format!(
        "a {{\n{}{}",
        "x {\n".repeat(ok_depth),
        "}\n".repeat(ok_depth + 1)
    );
    assert!(parse_str_with_env(&text, ROOT, Path::new("."), &test_env).is_ok());
}

#[test]
fn expansions_are_bounded() {
    // Each snippet imports the previous one twice: 2^14 expansions in all.
    let mut text = String::from("(s0) {\n  log\n}\n");
    for i in 1..=14 {
        let _ = write!(
            text,
            "(s{i}) {{\n  import s{p}\n  import s{p}\n}}\n",
            p = i - 1
        );
    }
    text.push_str("a {\n  import s14\n}\n");
    let err = parse_str_with_env(&text, ROOT, Path::new("."), &test_env)
        .expect_err("too many expansions must fail");
    assert!(matches!(err, CorefileError::TooManyImports { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("more than 10000 imports expanded, expected fewer"),
        "{err}"
    );
}

#[test]
fn kubeadm_corefile() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("corefile/Corefile.kubeadm");
    let cf = parse_file(&path).expect("kubeadm Corefile parses");
    let want = "\
.:53@1:1 {
  errors@2:5
  health@3:5 {
    lameduck@4:8 5s@4:17
  }
  ready@6:5
  kubernetes@7:5 cluster.local@7:16 in-addr.arpa@7:30 ip6.arpa@7:43 {
    pods@8:8 insecure@8:13
    fallthrough@9:8 in-addr.arpa@9:20 ip6.arpa@9:33
    ttl@10:8 30@10:12
  }
  prometheus@12:5 :9153@12:16
  forward@13:5 .@13:13 /etc/resolv.conf@13:15 {
    max_concurrent@14:8 1000@14:23
  }
  cache@16:5 30@16:11 {
    disable@17:8 success@17:16 cluster.local@17:24
    disable@18:8 denial@18:16 cluster.local@18:23
  }
  loop@20:5
  reload@21:5
  loadbalance@22:5
}
";
    // Tokens of the file carry its path as given.
    let shown = render(&cf).replace("@Corefile.kubeadm:", "@");
    assert_eq!(shown, want);
    assert_eq!(
        &*cf.blocks[0].keys[0].location.file,
        path.display().to_string()
    );
}

fn write(dir: &Path, name: &str, text: &str) {
    if let Some(parent) = dir.join(name).parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(dir.join(name), text).expect("write test file");
}

#[test]
fn import_cases() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = dir.path();
    write(base, "plugins.conf", "errors\nlog\n");
    write(base, "servers.conf", "a.local {\n  log\n}\n");
    write(base, "sub/inner.conf", "import leaf.conf\nready\n");
    write(base, "sub/leaf.conf", "health\n");
    write(base, "zones/b.conf", "b {\n}\n");
    write(base, "zones/a.conf", "a {\n}\n");
    write(base, "zones/skip.txt", "c {\n}\n");
    write(base, "self.conf", "import self.conf\n");
    write(base, "globdir/a.conf", "a {\n}\n");
    write(base, "globdir/dir.conf/inner", "b {\n}\n");
    write(base, "ping.conf", "import pong.conf\n");
    write(base, "pong.conf", "import ping.conf\n");
    write(base, "defs.conf", "(fromfile) {\n  cache\n}\n");
    write(base, "bad-utf8.conf", "");
    std::fs::write(base.join("bad-utf8.conf"), [0xff, 0xfe, b'\n']).expect("write");

    let cases: &[(&str, &str, &str)] = &[
        (
            "file in a block",
            ".:53 {\n  import plugins.conf\n  cache\n}",
            ".:53@1:1 {\n  errors@plugins.conf:1:1\n  log@plugins.conf:2:1\n  cache@3:3\n}\n",
        ),
        (
            "file at top level",
            "import servers.conf\nb {\n}",
            "a.local@servers.conf:1:1 {\n  log@servers.conf:2:3\n}\nb@2:1 {\n}\n",
        ),
        (
            "nested import relative to the importing file",
            "a {\n  import sub/inner.conf\n}",
            "a@1:1 {\n  health@leaf.conf:1:1\n  ready@inner.conf:2:1\n}\n",
        ),
        (
            "glob sorted by name",
            "import zones/*.conf",
            "a@a.conf:1:1 {\n}\nb@b.conf:1:1 {\n}\n",
        ),
        ("glob without match is empty", "import zones/*.none", ""),
        (
            "snippet defined in an imported file",
            "import defs.conf\na {\n  import fromfile\n}",
            "a@2:1 {\n  cache@defs.conf:2:3\n}\n",
        ),
        (
            "file importing itself",
            "import self.conf",
            "error: self.conf:1:1: import cycle:",
        ),
        (
            "files importing each other",
            "import ping.conf",
            "error: pong.conf:1:1: import cycle:",
        ),
        (
            "directory is not a file",
            "import zones",
            "error: Corefile:1:1: import: 'zones' is not a regular file, expected a file",
        ),
        (
            "device is not a file",
            "import /dev/zero",
            "error: Corefile:1:1: import: '/dev/zero' is not a regular file, expected a file",
        ),
        (
            "glob skips directories",
            "import globdir/*.conf",
            "a@a.conf:1:1 {\n}\n",
        ),
        (
            "imported file not utf-8",
            "import bad-utf8.conf",
            "error: Corefile:1:1: import: '",
        ),
    ];
    for (name, input, want) in cases {
        let got = run(input, base);
        let got = got.replace(&format!("{}/", base.display()), "");
        let got = got.replace(&format!("{}/", base.join("sub").display()), "");
        let got = got.replace(&format!("{}/", base.join("zones").display()), "");
        let got = got.replace(&format!("{}/", base.join("globdir").display()), "");
        assert!(
            got.starts_with(want),
            "case {name}:\n got: {got}\nwant: {want}"
        );
    }
}

#[test]
fn import_cycle_names_the_chain() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "ping.conf", "import pong.conf\n");
    write(dir.path(), "pong.conf", "import ping.conf\n");
    let err = parse_str_with_env("import ping.conf", ROOT, dir.path(), &test_env)
        .expect_err("cycle must fail");
    let ping = super::canonical(&dir.path().join("ping.conf"));
    let pong = super::canonical(&dir.path().join("pong.conf"));
    let want = format!(
        "{}:1:1: import cycle: {} -> {} -> {}, expected imports that end",
        dir.path().join("pong.conf").display(),
        ping.display(),
        pong.display(),
        ping.display()
    );
    assert_eq!(err.to_string(), want);
    assert_eq!(err.location().map(|l| l.line), Some(1));
}

#[test]
fn root_file_importing_itself_is_a_cycle() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "Corefile", "a {\n  import Corefile\n}\n");
    let err = parse_file(&dir.path().join("Corefile")).expect_err("self import must fail");
    assert!(matches!(err, CorefileError::ImportCycle { .. }), "{err}");
}

#[test]
fn missing_plain_file_names_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let err = parse_str_with_env("a {\n  import gone.conf\n}", ROOT, dir.path(), &test_env)
        .expect_err("missing import must fail");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "Corefile:2:3: import: cannot read '{}': ",
            dir.path().join("gone.conf").display()
        )),
        "{text}"
    );
    assert_eq!(
        err.location().map(ToString::to_string).as_deref(),
        Some("Corefile:2:3")
    );
}

#[test]
fn read_errors_name_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("absent");
    let err = parse_file(&path).expect_err("missing Corefile must fail");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read Corefile '{}': ", path.display())),
        "{err}"
    );
    assert!(err.location().is_none());
    std::fs::write(&path, [b'a', 0xff]).expect("write");
    let err = parse_file(&path).expect_err("non-UTF-8 Corefile must fail");
    assert_eq!(
        err.to_string(),
        format!(
            "Corefile '{}' is not valid UTF-8, expected UTF-8 text",
            path.display()
        )
    );
}

#[test]
fn parse_str_reads_process_environment_only_for_references() {
    // No reference: the environment is not consulted and the text is kept as written.
    let cf = parse_str("a {\n  log {x}\n}", ROOT, Path::new(".")).expect("parses");
    assert_eq!(render(&cf), "a@1:1 {\n  log@2:3 {x}@2:7\n}\n");
}

#[test]
fn wildcard_matching() {
    let cases: &[(&str, &str, bool)] = &[
        ("*.conf", "a.conf", true),
        ("*.conf", ".conf", true),
        ("*.conf", "a.confx", false),
        ("a*", "abc", true),
        ("a*c", "ac", true),
        ("a*c*e", "abcde", true),
        ("a*c*e", "abde", false),
        ("ab*ba", "aba", false),
        ("*", "", true),
        ("exact", "exact", true),
        ("exact", "exactly", false),
    ];
    for (pattern, name, want) in cases {
        assert_eq!(
            super::wildcard_match(pattern, name),
            *want,
            "{pattern} vs {name}"
        );
    }
}
