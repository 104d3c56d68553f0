//! The peers of the end-to-end tier: a real etcd and kube-apiserver on loopback (built on first
//! use by `tests/e2e/build-peers.sh` through `tests/support/peers.rs`), deploy/'s manifests applied to them, and the clusterdns binary
//! watching that apiserver through a kubeconfig with deploy/'s RBAC only.
//!
//! Every child process runs under a small `sh` guard that kills it when its stdin pipe closes,
//! so nothing outlives the test binary (a static stack is never dropped; the kernel closes the
//! pipe at exit). Files live under `CARGO_TARGET_TMPDIR/e2e/<pid>/`.

use std::fs::File;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use serde::Deserialize as _;

use crate::peers::Peer;

/// Token of the test's administrator (group `system:masters`).
const ADMIN_TOKEN: &str = "e2e-admin-token";
/// Token of a static user named like deploy/'s ServiceAccount, so deploy/'s ClusterRoleBinding
/// (and nothing else) authorizes clusterdns.
const COREDNS_TOKEN: &str = "e2e-coredns-token";
pub(crate) const COREDNS_USER: &str = "system:serviceaccount:kube-system:coredns";
/// Likewise for deploy/dns-autoscaler.yaml's ServiceAccount (its Role and ClusterRole only).
const AUTOSCALER_TOKEN: &str = "e2e-autoscaler-token";
pub(crate) const AUTOSCALER_USER: &str = "system:serviceaccount:kube-system:dns-autoscaler";

/// How long start-up steps may take on a loaded machine (the apiserver's first start runs its
/// post-start hooks: RBAC bootstrap, priority classes, the `kubernetes` Service).
const APISERVER_START: Duration = Duration::from_secs(120);
const ETCD_START: Duration = Duration::from_secs(60);
const CLUSTERDNS_START: Duration = Duration::from_secs(60);

pub(crate) const DEPLOY_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");
pub(crate) const DEPLOY_MANIFEST: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/clusterdns.yaml");

/// The peer binaries (etcd, kube-apiserver), built on first use; or an error naming the step.
fn peers() -> Result<(PathBuf, PathBuf), String> {
    let etcd = crate::peers::ensure(Peer::Etcd).map_err(|e| e.to_string())?;
    let apiserver = crate::peers::ensure(Peer::KubeApiserver).map_err(|e| e.to_string())?;
    Ok((etcd, apiserver))
}

/// This test process's scratch directory (old ones of dead processes are removed).
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e");
        if let Ok(entries) = std::fs::read_dir(&base) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let alive = name
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                if !alive {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = base.join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).expect("create the e2e scratch directory");
        dir
    })
}

/// A free loopback TCP port (free for UDP too when `udp`).
pub(crate) fn free_port(udp: bool) -> u16 {
    for _ in 0..100 {
        let Ok(tcp) = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)) else {
            continue;
        };
        let Ok(addr) = tcp.local_addr() else { continue };
        if !udp || UdpSocket::bind(addr).is_ok() {
            return addr.port();
        }
    }
    panic!("no free loopback port");
}

/// A child process under the `sh` guard; its output goes to `log`.
pub(crate) struct Proc {
    name: String,
    guard: Child,
    stdin: Option<ChildStdin>,
    pub(crate) log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, bin: &Path, args: &[String], log: PathBuf) -> Result<Proc, String> {
        let out = File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("clone {}: {e}", log.display()))?;
        // The child runs in the background (stdin /dev/null); the guard waits for EOF on its own
        // stdin, then kills the child hard (a crash-like stop) and reaps it.
        let mut guard = Command::new("sh")
            .arg("-c")
            .arg(r#""$@" & pid=$!; read _ignored; kill -KILL "$pid" 2>/dev/null; wait "$pid""#)
            .arg("sh")
            .arg(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("spawn {} ({}): {e}", name, bin.display()))?;
        let stdin = guard.stdin.take();
        Ok(Proc {
            name: name.to_owned(),
            guard,
            stdin,
            log,
        })
    }

    /// Kills the child and waits until it is gone.
    pub(crate) fn stop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let _ = self.guard.wait();
    }

    /// The last lines of the log, for failure messages.
    pub(crate) fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(30);
        format!(
            "--- last lines of {} ({}) ---\n{}",
            self.name,
            self.log.display(),
            lines[start..].join("\n")
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The one etcd of this test process; each apiserver uses its own key prefix in it.
struct Etcd {
    url: String,
    _proc: Proc,
}

fn etcd() -> Result<&'static Etcd, String> {
    static ETCD: OnceLock<Result<Etcd, String>> = OnceLock::new();
    ETCD.get_or_init(start_etcd).as_ref().map_err(Clone::clone)
}

fn start_etcd() -> Result<Etcd, String> {
    let (etcd_bin, _) = peers()?;
    let dir = scratch().join("etcd");
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let client = free_port(false);
    let peer = free_port(false);
    let url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let args = vec![
        "--name=e2e".to_owned(),
        format!("--data-dir={}", dir.join("data").display()),
        format!("--listen-client-urls={url}"),
        format!("--advertise-client-urls={url}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=e2e={peer_url}"),
        "--unsafe-no-fsync".to_owned(),
        "--log-level=warn".to_owned(),
    ];
    let proc = Proc::spawn("etcd", &etcd_bin, &args, dir.join("etcd.log"))?;
    // Ready once its client port accepts connections and /health says so.
    let deadline = Instant::now() + ETCD_START;
    loop {
        if http_get_plain(client, "/health").is_some_and(|body| body.contains("\"true\"")) {
            return Ok(Etcd { url, _proc: proc });
        }
        if Instant::now() > deadline {
            return Err(format!(
                "etcd is not healthy after {ETCD_START:?}\n{}",
                proc.tail()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A plain-HTTP GET on loopback (etcd's /health); the body, or `None`.
fn http_get_plain(port: u16, path: &str) -> Option<String> {
    use std::io::Read as _;
    let mut stream = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.starts_with("HTTP/1.").then_some(text)
}

/// A service-account key pair: the ECDSA P-256 signing key in PKCS#8 PEM and its public key in
/// SubjectPublicKeyInfo PEM, generated with ring (no openssl needed).
fn service_account_keys() -> Result<(String, String), String> {
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|e| format!("generate the service-account key: {e}"))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|e| format!("read back the service-account key: {e}"))?;
    // SubjectPublicKeyInfo { id-ecPublicKey, prime256v1 } followed by the uncompressed point.
    const SPKI_P256_PREFIX: [u8; 26] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    let mut spki = SPKI_P256_PREFIX.to_vec();
    spki.extend_from_slice(pair.public_key().as_ref());
    Ok((pem("PRIVATE KEY", pkcs8.as_ref()), pem("PUBLIC KEY", &spki)))
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn kubeconfig(port: u16, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: \
         https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\nusers:\n- name: e2e\n  \
         user:\n    token: {token}\ncontexts:\n- name: e2e\n  context:\n    cluster: e2e\n    \
         user: e2e\ncurrent-context: e2e\n"
    )
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))
}

/// One apiserver (own etcd prefix) with deploy/ applied, and clusterdns watching it.
pub(crate) struct Stack {
    pub(crate) dir: PathBuf,
    pub(crate) dns: SocketAddr,
    api_port: u16,
    apiserver_bin: PathBuf,
    apiserver_args: Vec<String>,
    apiserver: Option<Proc>,
    clusterdns: Proc,
    restarts: u32,
}

/// The stack most tests share (each works in namespaces of its own).
pub(crate) fn shared() -> &'static Stack {
    static SHARED: OnceLock<Result<Stack, String>> = OnceLock::new();
    let stack = SHARED.get_or_init(|| {
        // Started on a thread of its own with its own runtime: the stack outlives the test
        // (and the runtime) that happens to start it.
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("tokio runtime: {e}"))?;
            runtime.block_on(Stack::start("shared"))
        })
        .join()
        .unwrap_or_else(|_| Err("starting the shared stack panicked".to_owned()))
    });
    match stack {
        Ok(stack) => stack,
        Err(error) => panic!("the e2e stack does not start: {error}"),
    }
}

impl Stack {
    pub(crate) async fn start(name: &str) -> Result<Stack, String> {
        let (_, apiserver_bin) = peers()?;
        let etcd = etcd()?;
        let dir = scratch().join(name);
        std::fs::create_dir_all(dir.join("certs"))
            .map_err(|e| format!("create {}: {e}", dir.display()))?;
        let (sa_key, sa_pub) = service_account_keys()?;
        write(&dir.join("sa.key"), &sa_key)?;
        write(&dir.join("sa.pub"), &sa_pub)?;
        write(
            &dir.join("tokens.csv"),
            &format!(
                "{ADMIN_TOKEN},e2e-admin,e2e-admin,\"system:masters\"\n{COREDNS_TOKEN},\
                 {COREDNS_USER},e2e-coredns,\"system:serviceaccounts,system:serviceaccounts:kube-system\"\n\
                 {AUTOSCALER_TOKEN},{AUTOSCALER_USER},e2e-autoscaler,\
                 \"system:serviceaccounts,system:serviceaccounts:kube-system\"\n"
            ),
        )?;
        let api_port = free_port(false);
        write(
            &dir.join("admin.kubeconfig"),
            &kubeconfig(api_port, ADMIN_TOKEN),
        )?;
        write(
            &dir.join("coredns.kubeconfig"),
            &kubeconfig(api_port, COREDNS_TOKEN),
        )?;
        write(
            &dir.join("autoscaler.kubeconfig"),
            &kubeconfig(api_port, AUTOSCALER_TOKEN),
        )?;
        let d = |f: &str| dir.join(f).display().to_string();
        let apiserver_args = vec![
            format!("--etcd-servers={}", etcd.url),
            format!("--etcd-prefix=/registry-{name}"),
            "--bind-address=127.0.0.1".to_owned(),
            "--advertise-address=127.0.0.1".to_owned(),
            format!("--secure-port={api_port}"),
            format!("--cert-dir={}", d("certs")),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_owned(),
            format!("--service-account-key-file={}", d("sa.pub")),
            format!("--service-account-signing-key-file={}", d("sa.key")),
            "--service-cluster-ip-range=10.96.0.0/16,fd00:10:96::/112".to_owned(),
            format!("--token-auth-file={}", d("tokens.csv")),
            "--authorization-mode=RBAC".to_owned(),
            "--disable-admission-plugins=ServiceAccount".to_owned(),
            "--allow-privileged=true".to_owned(),
            "--profiling=false".to_owned(),
        ];
        let mut stack_api = Proc::spawn(
            "kube-apiserver",
            &apiserver_bin,
            &apiserver_args,
            dir.join("kube-apiserver.0.log"),
        )?;
        let admin = client(&dir.join("admin.kubeconfig")).await?;
        if let Err(e) = wait_ready(&admin).await {
            let tail = stack_api.tail();
            stack_api.stop();
            return Err(format!("{e}\n{tail}"));
        }
        apply_deploy(&admin).await?;

        let dns_port = free_port(true);
        let dns = SocketAddr::from((Ipv4Addr::LOCALHOST, dns_port));
        let corefile = format!(
            ".:{dns_port} {{\n    bind 127.0.0.1\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        \
             kubeconfig {}\n        pods verified\n    }}\n}}\n",
            d("coredns.kubeconfig")
        );
        write(&dir.join("Corefile"), &corefile)?;
        let clusterdns = Proc::spawn(
            "clusterdns",
            Path::new(env!("CARGO_BIN_EXE_clusterdns")),
            &["-conf".to_owned(), d("Corefile")],
            dir.join("clusterdns.log"),
        )?;
        let stack = Stack {
            dir,
            dns,
            api_port,
            apiserver_bin,
            apiserver_args,
            apiserver: Some(stack_api),
            clusterdns,
            restarts: 0,
        };
        // Serving once the `kubernetes` Service the apiserver creates for itself answers.
        let deadline = Instant::now() + CLUSTERDNS_START;
        loop {
            if let Some(reply) =
                ask(dns, "kubernetes.default.svc.cluster.local.", RecordType::A).await
                && rdata(&reply) == ["10.96.0.1"]
            {
                return Ok(stack);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "clusterdns does not answer kubernetes.default.svc.cluster.local A 10.96.0.1 \
                     within {CLUSTERDNS_START:?} (is the Kubernetes API source in this build?)\n{}",
                    stack.clusterdns.tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A client with `system:masters` rights.
    pub(crate) async fn admin(&self) -> Client {
        match client(&self.dir.join("admin.kubeconfig")).await {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    /// A client as deploy/dns-autoscaler.yaml's ServiceAccount.
    pub(crate) async fn autoscaler(&self) -> Client {
        match client(&self.dir.join("autoscaler.kubeconfig")).await {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    pub(crate) fn logs(&self) -> String {
        let mut text = self.clusterdns.tail();
        if let Some(api) = &self.apiserver {
            text.push('\n');
            text.push_str(&api.tail());
        }
        text
    }

    /// Kills the apiserver (SIGKILL, like a crash).
    pub(crate) fn kill_apiserver(&mut self) {
        if let Some(mut api) = self.apiserver.take() {
            api.stop();
        }
    }

    /// Starts the apiserver again on the same port, with the same flags and data, and waits
    /// for it to be ready.
    pub(crate) async fn restart_apiserver(&mut self) {
        self.restarts += 1;
        let log = self
            .dir
            .join(format!("kube-apiserver.{}.log", self.restarts));
        let api = match Proc::spawn(
            "kube-apiserver",
            &self.apiserver_bin,
            &self.apiserver_args,
            log,
        ) {
            Ok(api) => api,
            Err(e) => panic!("{e}"),
        };
        self.apiserver = Some(api);
        let admin = self.admin().await;
        if let Err(e) = wait_ready(&admin).await {
            panic!(
                "restarted apiserver on port {}: {e}\n{}",
                self.api_port,
                self.logs()
            );
        }
    }
}

async fn client(kubeconfig: &Path) -> Result<Client, String> {
    let kc = Kubeconfig::read_from(kubeconfig)
        .map_err(|e| format!("read {}: {e}", kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| format!("kubeconfig {}: {e}", kubeconfig.display()))?;
    Client::try_from(config).map_err(|e| format!("client for {}: {e}", kubeconfig.display()))
}

/// Polls `/readyz` until it says `ok`.
async fn wait_ready(client: &Client) -> Result<(), String> {
    let deadline = Instant::now() + APISERVER_START;
    loop {
        let request = http::Request::get("/readyz")
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
        let last = match client.request_text(request).await {
            Ok(body) if body.trim() == "ok" => return Ok(()),
            Ok(body) => body,
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            return Err(format!(
                "kube-apiserver is not ready after {APISERVER_START:?}: {last}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every object of deploy/clusterdns.yaml as a dynamic object.
pub(crate) fn deploy_objects() -> Result<Vec<DynamicObject>, String> {
    manifest_objects(Path::new(DEPLOY_MANIFEST))
}

/// Every `*.yaml` file of deploy/, sorted by name (clusterdns.yaml first).
pub(crate) fn deploy_files() -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(DEPLOY_DIR).map_err(|e| format!("read {DEPLOY_DIR}: {e}"))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Every object of every deploy/ manifest, in file order.
pub(crate) fn all_deploy_objects() -> Result<Vec<DynamicObject>, String> {
    let mut objects = Vec::new();
    for file in deploy_files()? {
        objects.extend(manifest_objects(&file)?);
    }
    Ok(objects)
}

/// The objects of one multi-document YAML file.
pub(crate) fn manifest_objects(path: &Path) -> Result<Vec<DynamicObject>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let mut objects = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let object = DynamicObject::deserialize(doc)
            .map_err(|e| format!("{}: not an object: {e}", path.display()))?;
        objects.push(object);
    }
    Ok(objects)
}

/// Applies all of deploy/ to the apiserver: a server-side dry run of every object of every
/// manifest first (schema with strict field validation, so a misspelt field fails; defaulting,
/// validation and admission; nothing persisted), then for real (server-side apply).
async fn apply_deploy(client: &Client) -> Result<(), String> {
    let objects = all_deploy_objects()?;
    for dry_run in [true, false] {
        for object in &objects {
            apply(client, object, dry_run).await?;
        }
    }
    Ok(())
}

async fn apply(client: &Client, object: &DynamicObject, dry_run: bool) -> Result<(), String> {
    let types = object
        .types
        .as_ref()
        .ok_or("a deploy/ object without apiVersion/kind")?;
    let (group, version) = match types.api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", types.api_version.as_str()),
    };
    let gvk = GroupVersionKind::gvk(group, version, &types.kind);
    let name = object.metadata.name.clone().unwrap_or_default();
    let what = format!("{} {name}", types.kind);
    let (resource, caps) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| format!("discovery of {what}: {e}"))?;
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => {
            let ns = object.metadata.namespace.as_deref().unwrap_or("default");
            Api::namespaced_with(client.clone(), ns, &resource)
        }
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    let mut params = PatchParams::apply("clusterdns-e2e")
        .force()
        .validation_strict();
    if dry_run {
        params = params.dry_run();
    }
    api.patch(&name, &params, &Patch::Apply(object))
        .await
        .map(drop)
        .map_err(|e| {
            format!(
                "apiserver rejects deploy/ {what} ({}): {e}",
                if dry_run { "dry run" } else { "apply" }
            )
        })
}

/// One UDP query; the reply, or `None` after 500 ms.
pub(crate) async fn ask(addr: SocketAddr, name: &str, qtype: RecordType) -> Option<Message> {
    let mut msg = Message::new(0x2e2e, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).ok()?, qtype));
    let bytes = msg.to_vec().ok()?;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.ok()?;
    sock.send_to(&bytes, addr).await.ok()?;
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(Duration::from_millis(500), sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Message::from_vec(buf.get(..n)?).ok()
}

/// The answer section's record data as sorted text (`10.96.0.1`, `0 100 80 a.b.svc...`).
pub(crate) fn rdata(reply: &Message) -> Vec<String> {
    let mut out: Vec<String> = reply.answers.iter().map(|r| r.data.to_string()).collect();
    out.sort();
    out
}
