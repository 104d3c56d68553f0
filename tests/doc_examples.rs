//! Every Corefile the project ships or documents loads: each file `corefile/Corefile*`, and every
//! ```corefile block of every README.md (the top one and each beside a plugin's code), in a tempdir
//! holding the manifests it names. Each plugin folder carries one README.md with CoreDNS's sections.

mod common;

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The sections of a plugin's README, as CoreDNS's plugin READMEs have them (plus our differences).
const SECTIONS: &[&str] = &[
    "## Name",
    "## Description",
    "## Syntax",
    "## Examples",
    "## Metrics",
    "## Ready",
    "## Differences from CoreDNS",
];

#[test]
fn every_plugin_folder_has_one_readme_with_coredns_sections() {
    let plugins = Path::new(ROOT).join("src/plugin");
    let mut checked = 0;
    for entry in std::fs::read_dir(&plugins).expect("src/plugin").flatten() {
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let readme = dir.join("README.md");
        let text = std::fs::read_to_string(&readme)
            .unwrap_or_else(|e| panic!("{}: {e}", readme.display()));
        assert!(
            text.starts_with(&format!("# {name}\n")),
            "{} must open with `# {name}`",
            readme.display()
        );
        for section in SECTIONS {
            assert!(
                text.lines().any(|l| l == *section),
                "{} lacks `{section}`",
                readme.display()
            );
        }
        // No second doc carrier beside the folder (`<name>.md`).
        assert!(
            !plugins.join(format!("{name}.md")).exists(),
            "{name}.md beside {name}/"
        );
        assert!(
            !corefile_blocks(&text).is_empty(),
            "{} has no ```corefile example",
            readme.display()
        );
        checked += 1;
    }
    assert!(checked >= 13, "only {checked} plugin folders");
}

/// ```corefile blocks of a Markdown text.
fn corefile_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        let fence = line.trim_start();
        match current.as_mut() {
            None if fence.starts_with("```corefile") => current = Some(String::new()),
            None => {}
            Some(_) if fence.starts_with("```") => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}

fn readmes() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                // README.md beside a plugin directory, or `<plugin>.md` beside a one-file plugin.
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    let top = Path::new(ROOT).join("README.md");
    if top.exists() {
        out.push(top);
    }
    walk(&Path::new(ROOT).join("src"), &mut out);
    out.sort();
    out
}

/// Creates, in `dir`, every manifest path a Corefile names (`manifests A B/ ...`): files get a
/// copy of the demo cluster, paths ending in `/` become directories holding one. Files named by
/// `kubeconfig PATH [CONTEXT]` get a minimal kubeconfig, those of `tls CERT KEY CACERT` a
/// placeholder (setup only checks they can be read).
fn provide_manifests(corefile: &str, dir: &Path) {
    let demo = std::fs::read_to_string(common::demo_cluster_path()).expect("demo cluster");
    for line in corefile.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("kubeconfig") => {
                if let Some(path) = words.next() {
                    let context = words.next().unwrap_or("default");
                    let kubeconfig = format!(
                        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n\
                         users:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: {context}\n  context:\n    cluster: c\n    user: u\n\
                         current-context: {context}\n"
                    );
                    common::write_file(dir, path, &kubeconfig);
                }
                continue;
            }
            Some("tls") => {
                for path in words {
                    common::write_file(dir, path, "placeholder\n");
                }
                continue;
            }
            Some("manifests") => {}
            _ => continue,
        }
        for path in words {
            if let Some(sub) = path.strip_suffix('/') {
                common::write_file(dir, &format!("{sub}/cluster.yaml"), &demo);
            } else {
                common::write_file(dir, path, &demo);
            }
        }
    }
}

#[test]
fn readme_corefile_blocks_validate() {
    let mut checked = 0;
    for readme in readmes() {
        let text = std::fs::read_to_string(&readme).expect("README readable");
        for (i, block) in corefile_blocks(&text).iter().enumerate() {
            let dir = tempfile::tempdir().expect("tempdir");
            provide_manifests(block, dir.path());
            let name = format!("{}#{}", readme.display(), i + 1);
            if let Err(e) = clusterdns::config_from_str(block, &name, dir.path(), 53) {
                panic!("{name} does not validate: {e}\n{block}");
            }
            checked += 1;
        }
    }
    // Each of the 13 plugin READMEs has at least one.
    assert!(checked >= 13, "only {checked} corefile blocks found");
}

#[test]
fn shipped_corefiles_load() {
    let mut checked = 0;
    let entries = std::fs::read_dir(Path::new(ROOT).join("corefile")).expect("corefile/");
    for entry in entries.flatten() {
        let path = entry.path();
        if !path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("Corefile"))
        {
            continue;
        }
        if let Err(e) = clusterdns::load_config(&path, 53) {
            panic!("{}: {e}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 2, "only {checked} Corefiles found");
}

#[test]
fn corefile_block_extraction() {
    let md = "text\n```corefile\na {\n}\n```\n```text\nno\n```\n  ```corefile\nb\n  ```\n";
    assert_eq!(
        corefile_blocks(md),
        vec!["a {\n}\n".to_owned(), "b\n".to_owned()]
    );
}
