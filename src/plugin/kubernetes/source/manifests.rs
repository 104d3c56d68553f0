//! The manifests source: reads Kubernetes objects from YAML/JSON files (or directories of them)
//! into the compact model, and polls the files for changes. Knows nothing about the index or DNS;
//! it hands full object lists to a sink.
//!
//! Rules (the README describes them for users):
//! * a PATH is a file, or a directory whose `*.yaml`, `*.yml` and `*.json` files are read in name
//!   order (not recursively; names starting with `.` are skipped);
//! * a file holds YAML documents separated by `---`; a document may be a `List` (or `ServiceList`
//!   etc.) whose `items` are read in turn; empty documents are skipped;
//! * kinds read: `v1` Namespace, Service, Pod and `discovery.k8s.io/v1` EndpointSlice; any other
//!   kind or apiVersion (Deployment, legacy Endpoints, ...) is ignored;
//! * a malformed document is an error naming the file and the 1-based document index;
//! * as the API server would, an omitted port `protocol` on a Service or EndpointSlice means TCP;
//! * the same object (kind, namespace, name) defined twice is an error;
//! * Namespaces: if the file set holds no Namespace object at all, every namespace used by an
//!   object exists (one is synthesized, without labels); as soon as it holds one, only the declared
//!   namespaces exist;
//! * the `labels` filter selects Services, EndpointSlices and Pods, the `namespace_labels` filter
//!   Namespaces (synthesized ones have no labels); a file's validity does not depend on them.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_yaml_ng::Value;
use tracing::{debug, info, warn};

use super::convert::{self, ConvertError, labels_of};
use crate::plugin::kubernetes::model::{Namespace, Object, Str};

/// A label predicate (a parsed label selector).
pub(crate) type LabelFilter = Box<dyn Fn(&BTreeMap<String, String>) -> bool + Send + Sync>;

/// Which objects exist for DNS: the `labels` and `namespace_labels` options of the plugin.
#[derive(Default)]
pub(crate) struct Filter {
    /// Applies to the labels of Services, EndpointSlices and Pods.
    pub(crate) labels: Option<LabelFilter>,
    /// Applies to the labels of Namespaces; a namespace filtered out does not exist.
    pub(crate) namespace_labels: Option<LabelFilter>,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("labels", &self.labels.is_some())
            .field("namespace_labels", &self.namespace_labels.is_some())
            .finish()
    }
}

impl Filter {
    fn keeps(filter: Option<&LabelFilter>, labels: &BTreeMap<String, String>) -> bool {
        filter.is_none_or(|keep| keep(labels))
    }
}

/// Where in the file set a document is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place {
    pub(crate) path: PathBuf,
    /// 1-based index of the YAML document in the file.
    pub(crate) document: usize,
    /// 0-based index in the `items` of a `List` document.
    pub(crate) item: Option<usize>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.path.display(), self.document)?;
        if let Some(item) = self.item {
            write!(f, ", items[{item}]")?;
        }
        Ok(())
    }
}

/// Why a set of manifests cannot be loaded. YAML errors carry the line and column.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ManifestError {
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{at}: invalid YAML: {error}")]
    Yaml {
        at: Place,
        error: serde_yaml_ng::Error,
    },
    #[error("{at}: not a Kubernetes object (expected a mapping with apiVersion and kind)")]
    NotAnObject { at: Place },
    #[error("{at}: {kind} has no items list")]
    BadList { at: Place, kind: String },
    #[error("{at}: invalid {kind}: {error}")]
    Invalid {
        at: Place,
        kind: &'static str,
        error: serde_yaml_ng::Error,
    },
    #[error("{at}: {error}")]
    Convert { at: Place, error: ConvertError },
    #[error("{at}: duplicate {kind} {namespace}/{name} (first defined at {first})")]
    Duplicate {
        at: Place,
        kind: &'static str,
        namespace: Str,
        name: Str,
        first: Box<Place>,
    },
}

/// What the watch remembers between polls.
#[derive(Debug, Default)]
struct WatchState {
    /// Fingerprint of the file set last loaded successfully.
    loaded: Option<u64>,
    /// Fingerprint of a file set that failed to load (not re-parsed until it changes).
    failed: Option<u64>,
    /// The error last logged, so an unchanged failure is logged once.
    last_error: Option<String>,
    /// File names, sizes and modification times seen by the previous poll: a change is read
    /// only once the stamp has stayed the same for one interval, so a file caught half-written
    /// (truncated, then filled) is not loaded as if it were the new truth.
    seen: Option<Stamp>,
    /// The stamp of the files last read, and whether it can be trusted to mean "unchanged"
    /// (see `Stamp`).
    stamp: Option<Stamp>,
}

/// What `stat` says of the file set: enough to skip re-reading unchanged files on every poll
/// (a large manifest set would otherwise be read and hashed every interval).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    files: Vec<(PathBuf, u64, Option<SystemTime>)>,
    /// Every modification time was at least `RACY_WINDOW` older than the moment the stamp was
    /// taken. A file rewritten within the file system's timestamp granularity, with the same
    /// size, would keep its stamp; so a stamp taken right after a write is never trusted and
    /// the content is compared instead (git's "racily clean" rule).
    trusted: bool,
}

/// How old every modification must be before an unchanged stamp alone counts as no change.
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// The sink receiving each new full object list.
type Sink = Box<dyn Fn(Vec<Object>) + Send + Sync>;

/// Reads a fixed list of manifest paths and hands each successful (re)load to a sink.
pub(crate) struct ManifestSource {
    paths: Vec<PathBuf>,
    filter: Filter,
    sink: Sink,
    /// Touched once per poll by one task (and by `load`); never on the query path.
    state: Mutex<WatchState>,
}

impl fmt::Debug for ManifestSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManifestSource")
            .field("paths", &self.paths)
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

/// The bytes of every file of the set, read once so that the fingerprint and the parse see the
/// same content.
struct Snapshot {
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl Snapshot {
    fn fingerprint(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.files.len().hash(&mut hasher);
        for (path, bytes) in &self.files {
            path.hash(&mut hasher);
            bytes.hash(&mut hasher);
        }
        hasher.finish()
    }
}

/// The interval floor: a zero interval would make the poll loop spin (and tokio panics on it).
const MIN_INTERVAL: Duration = Duration::from_millis(10);

impl ManifestSource {
    pub(crate) fn new(paths: Vec<PathBuf>, filter: Filter, sink: Sink) -> Self {
        Self {
            paths,
            filter,
            sink,
            state: Mutex::new(WatchState::default()),
        }
    }

    /// One full read of every path, validating every document. A success also becomes the
    /// baseline of [`spawn_watch`](Self::spawn_watch): the sink is only called for later changes.
    pub(crate) fn load(&self) -> Result<Vec<Object>, ManifestError> {
        let stamp = self.stamp().ok();
        let snapshot = self.read()?;
        let objects = parse_snapshot(&snapshot, &self.filter)?;
        let mut state = self.state();
        state.seen.clone_from(&stamp);
        state.stamp = stamp;
        state.loaded = Some(snapshot.fingerprint());
        state.failed = None;
        state.last_error = None;
        Ok(objects)
    }

    /// Polls the files every `interval` (at least 10 ms). When their content differs from the
    /// last successful load, re-reads them: on success the sink gets the full new object list; on
    /// failure the error is logged once at warn (until it changes or is fixed) and the sink is not
    /// called, so the previous objects stay in use.
    pub(crate) fn spawn_watch(self: Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval.max(MIN_INTERVAL));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let this = Arc::clone(&self);
                // File reads and parsing block: keep them off the runtime's workers.
                if let Err(error) = tokio::task::spawn_blocking(move || this.poll()).await {
                    warn!(plugin = "kubernetes", %error, "manifest poll task failed");
                }
            }
        })
    }

    /// One poll: reloads if the file set changed. Returns whether the sink was called.
    fn poll(&self) -> bool {
        let stamp = match self.stamp() {
            Ok(stamp) => stamp,
            Err(error) => {
                self.failed(None, &error);
                return false;
            }
        };
        {
            let mut state = self.state();
            let settled = state.seen.as_ref().is_some_and(|s| s.files == stamp.files);
            state.seen = Some(stamp.clone());
            if !settled {
                // Changed since the last poll: look again next interval, once writes settled.
                return false;
            }
            if state
                .stamp
                .as_ref()
                .is_some_and(|old| old.trusted && old.files == stamp.files)
            {
                return false;
            }
            state.stamp = Some(stamp);
        }
        let snapshot = match self.read() {
            Ok(snapshot) => snapshot,
            Err(error) => {
                self.failed(None, &error);
                return false;
            }
        };
        let fingerprint = snapshot.fingerprint();
        {
            let mut state = self.state();
            if state.loaded == Some(fingerprint) {
                // Back to the content in use (e.g. a bad edit was reverted).
                if state.last_error.take().is_some() {
                    state.failed = None;
                    info!(
                        plugin = "kubernetes",
                        "manifests valid again; objects unchanged"
                    );
                }
                return false;
            }
            if state.failed == Some(fingerprint) {
                return false;
            }
        }
        match parse_snapshot(&snapshot, &self.filter) {
            Ok(objects) => {
                {
                    let mut state = self.state();
                    state.loaded = Some(fingerprint);
                    state.failed = None;
                    state.last_error = None;
                }
                info!(
                    plugin = "kubernetes",
                    files = snapshot.files.len(),
                    objects = objects.len(),
                    "manifests reloaded"
                );
                (self.sink)(objects);
                true
            }
            Err(error) => {
                self.failed(Some(fingerprint), &error);
                false
            }
        }
    }

    fn failed(&self, fingerprint: Option<u64>, error: &ManifestError) {
        let message = error.to_string();
        let mut state = self.state();
        state.failed = fingerprint;
        if state.last_error.as_deref() != Some(message.as_str()) {
            warn!(
                plugin = "kubernetes",
                error = %message,
                "manifests not reloaded; keeping the previous objects"
            );
            state.last_error = Some(message);
        }
    }

    fn state(&self) -> MutexGuard<'_, WatchState> {
        // The state is a few plain fields, valid even if a holder panicked.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Size and modification time of every file of the set (directories expanded).
    fn stamp(&self) -> Result<Stamp, ManifestError> {
        let now = SystemTime::now();
        let mut files = Vec::new();
        for file in self.files()? {
            let meta = std::fs::metadata(&file).map_err(|error| ManifestError::Read {
                path: file.clone(),
                error,
            })?;
            files.push((file, meta.len(), meta.modified().ok()));
        }
        let trusted = files.iter().all(|(_, _, modified)| {
            modified.is_some_and(|m| now.duration_since(m).is_ok_and(|age| age >= RACY_WINDOW))
        });
        Ok(Stamp { files, trusted })
    }

    /// The files of the set: each path, or the manifest files of a directory.
    fn files(&self) -> Result<Vec<PathBuf>, ManifestError> {
        let mut files = Vec::new();
        for path in &self.paths {
            let meta = std::fs::metadata(path).map_err(|error| ManifestError::Read {
                path: path.clone(),
                error,
            })?;
            if meta.is_dir() {
                files.extend(manifest_files(path)?);
            } else {
                files.push(path.clone());
            }
        }
        Ok(files)
    }

    /// Reads every file of the set (directories expanded).
    fn read(&self) -> Result<Snapshot, ManifestError> {
        let files = self
            .files()?
            .into_iter()
            .map(|file| read_file(&file).map(|bytes| (file, bytes)))
            .collect::<Result<_, _>>()?;
        Ok(Snapshot { files })
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, ManifestError> {
    std::fs::read(path).map_err(|error| ManifestError::Read {
        path: path.to_path_buf(),
        error,
    })
}

/// The manifest files directly in `dir`, sorted by name.
fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    let read_error = |error| ManifestError::Read {
        path: dir.to_path_buf(),
        error,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let wanted = ["yaml", "yml", "json"]
            .iter()
            .any(|e| extension.eq_ignore_ascii_case(e));
        // `metadata` follows symlinks, as in a mounted ConfigMap.
        if !name.starts_with('.') && wanted && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Parses YAML text (no file, no filter) into objects, with the same rules as files: for tests
/// and tools that build a cluster from a snippet.
#[cfg(test)]
pub(crate) fn objects_from_yaml(text: &str) -> Result<Vec<Object>, ManifestError> {
    let snapshot = Snapshot {
        files: vec![(PathBuf::from("<yaml>"), text.as_bytes().to_vec())],
    };
    parse_snapshot(&snapshot, &Filter::default())
}

/// The manifests loader for the `manifests` fuzz target (not a stable API).
#[doc(hidden)]
pub mod fuzz {
    use std::path::PathBuf;

    use super::{Filter, Snapshot, parse_snapshot};
    use crate::plugin::kubernetes::index::Index;

    /// Loads `bytes` as one manifest file (the rules of a `manifests` file: YAML or JSON, one or
    /// more documents, `List`s) and builds the index from the objects; the number of objects,
    /// or the load error as text.
    pub fn load(bytes: &[u8]) -> Result<usize, String> {
        let snapshot = Snapshot {
            files: vec![(PathBuf::from("fuzz.yaml"), bytes.to_vec())],
        };
        let objects = parse_snapshot(&snapshot, &Filter::default()).map_err(|e| e.to_string())?;
        let count = objects.len();
        let index = Index::build(objects);
        let stats = index.stats();
        // Every group holds at least a Service or a slice, so there are never more groups than
        // objects.
        assert!(stats.groups <= count, "{stats:?} from {count} objects");
        Ok(count)
    }
}

fn parse_snapshot(snapshot: &Snapshot, filter: &Filter) -> Result<Vec<Object>, ManifestError> {
    let mut collector = Collector {
        filter,
        objects: Vec::new(),
        declared: BTreeSet::new(),
        referenced: BTreeSet::new(),
        seen: HashMap::new(),
        files: Vec::new(),
    };
    for (path, bytes) in &snapshot.files {
        collector.file(path, bytes)?;
    }
    Ok(collector.finish())
}

/// Accumulates the objects of one load.
/// Where an object was first defined: (file position, document, list item).
type SeenAt = (u32, u32, Option<u32>);

struct Collector<'f> {
    filter: &'f Filter,
    objects: Vec<Object>,
    /// Namespace objects in the file set (before filtering).
    declared: BTreeSet<Str>,
    /// Namespaces of the namespaced objects (before filtering).
    referenced: BTreeSet<Str>,
    /// First definition of every (kind, namespace, name), as (file, document, item): a whole
    /// `Place` per object (with its path) was the largest allocation of a big load.
    seen: HashMap<(&'static str, Str, Str), SeenAt>,
    /// The files read so far; `seen` refers to them by position.
    files: Vec<PathBuf>,
}

impl Collector<'_> {
    fn file(&mut self, path: &Path, bytes: &[u8]) -> Result<(), ManifestError> {
        self.files.push(path.to_path_buf());
        for (index, document) in serde_yaml_ng::Deserializer::from_slice(bytes).enumerate() {
            let at = Place {
                path: path.to_path_buf(),
                document: index + 1,
                item: None,
            };
            // Stop at the first error: after one, the document iterator repeats it forever.
            let value = Value::deserialize(document).map_err(|error| ManifestError::Yaml {
                at: at.clone(),
                error,
            })?;
            self.value(value, &at, bytes)?;
        }
        Ok(())
    }

    /// One document, or one item of a List document.
    fn value(&mut self, value: Value, at: &Place, bytes: &[u8]) -> Result<(), ManifestError> {
        if value.is_null() {
            return Ok(());
        }
        if !value.is_mapping() {
            return Err(ManifestError::NotAnObject { at: at.clone() });
        }
        let api_version = value.get("apiVersion").and_then(Value::as_str);
        let kind = value.get("kind").and_then(Value::as_str);
        let (Some(api_version), Some(kind)) = (api_version, kind) else {
            return Err(ManifestError::NotAnObject { at: at.clone() });
        };
        match (api_version, kind) {
            ("v1", "Namespace") => {
                let ns: core::Namespace = typed(value, at, "Namespace", bytes)?;
                let ns = convert::namespace(&ns)
                    .map(|n| (n, labels_of(&ns.metadata).clone()))
                    .map_err(|error| convert_error(at, error))?;
                self.namespace(ns.0, &ns.1, at)
            }
            ("v1", "Service") => {
                let mut svc: core::Service = typed(value, at, "Service", bytes)?;
                if let Some(ports) = svc.spec.as_mut().and_then(|s| s.ports.as_mut()) {
                    for port in ports {
                        port.protocol.get_or_insert_with(|| "TCP".to_owned());
                    }
                }
                let model = convert::service(&svc).map_err(|error| convert_error(at, error))?;
                let key = ("Service", model.namespace.clone(), model.name.clone());
                self.namespaced(key, labels_of(&svc.metadata), Object::Service(model), at)
            }
            ("discovery.k8s.io/v1", "EndpointSlice") => {
                let mut slice: discovery::EndpointSlice = typed(value, at, "EndpointSlice", bytes)?;
                for port in slice.ports.iter_mut().flatten() {
                    port.protocol.get_or_insert_with(|| "TCP".to_owned());
                }
                let model =
                    convert::endpoint_slice(&slice).map_err(|error| convert_error(at, error))?;
                let key = ("EndpointSlice", model.namespace.clone(), model.name.clone());
                let object = Object::EndpointSlice(model);
                self.namespaced(key, labels_of(&slice.metadata), object, at)
            }
            ("v1", "Pod") => {
                let pod: core::Pod = typed(value, at, "Pod", bytes)?;
                match convert::pod(&pod).map_err(|error| convert_error(at, error))? {
                    Some(model) => {
                        let key = ("Pod", model.namespace.clone(), model.name.clone());
                        self.namespaced(key, labels_of(&pod.metadata), Object::Pod(model), at)
                    }
                    None => Ok(()),
                }
            }
            (_, kind) if kind.ends_with("List") => {
                let kind = kind.to_owned();
                let items = match value.get("items") {
                    None | Some(Value::Null) => return Ok(()),
                    Some(Value::Sequence(items)) => items.clone(),
                    Some(_) => {
                        return Err(ManifestError::BadList {
                            at: at.clone(),
                            kind,
                        });
                    }
                };
                for (index, item) in items.into_iter().enumerate() {
                    let at = Place {
                        item: Some(index),
                        ..at.clone()
                    };
                    self.value(item, &at, bytes)?;
                }
                Ok(())
            }
            (api_version, kind) => {
                debug!(plugin = "kubernetes", %at, api_version, kind, "manifest object ignored");
                Ok(())
            }
        }
    }

    fn namespace(
        &mut self,
        ns: Namespace,
        labels: &BTreeMap<String, String>,
        at: &Place,
    ) -> Result<(), ManifestError> {
        self.check_duplicate(("Namespace", "".into(), ns.name.clone()), at)?;
        self.declared.insert(ns.name.clone());
        if Filter::keeps(self.filter.namespace_labels.as_ref(), labels) {
            self.objects.push(Object::Namespace(ns));
        }
        Ok(())
    }

    fn namespaced(
        &mut self,
        key: (&'static str, Str, Str),
        labels: &BTreeMap<String, String>,
        object: Object,
        at: &Place,
    ) -> Result<(), ManifestError> {
        self.referenced.insert(key.1.clone());
        self.check_duplicate(key, at)?;
        if Filter::keeps(self.filter.labels.as_ref(), labels) {
            self.objects.push(object);
        }
        Ok(())
    }

    fn check_duplicate(
        &mut self,
        key: (&'static str, Str, Str),
        at: &Place,
    ) -> Result<(), ManifestError> {
        if let Some(&(file, document, item)) = self.seen.get(&key) {
            let (kind, namespace, name) = key;
            let first = Place {
                path: self.files.get(file as usize).cloned().unwrap_or_default(),
                document: document as usize,
                item: item.map(|i| i as usize),
            };
            return Err(ManifestError::Duplicate {
                at: at.clone(),
                kind,
                namespace,
                name,
                first: Box::new(first),
            });
        }
        // Positions beyond u32 cannot occur in files we can read; saturate rather than wrap.
        let small = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let file = small(self.files.len().saturating_sub(1));
        self.seen
            .insert(key, (file, small(at.document), at.item.map(small)));
        Ok(())
    }

    /// Adds the synthesized namespaces (first, in name order), or warns about namespaces used
    /// but not declared.
    fn finish(self) -> Vec<Object> {
        if !self.declared.is_empty() {
            let missing: Vec<&str> = self
                .referenced
                .difference(&self.declared)
                .map(|n| &**n)
                .collect();
            if !missing.is_empty() {
                warn!(
                    plugin = "kubernetes",
                    namespaces = ?missing,
                    "objects in namespaces that have no Namespace object; these namespaces do not exist"
                );
            }
            return self.objects;
        }
        let no_labels = BTreeMap::new();
        let mut objects: Vec<Object> = self
            .referenced
            .iter()
            .filter(|_| Filter::keeps(self.filter.namespace_labels.as_ref(), &no_labels))
            .map(|name| Object::Namespace(Namespace { name: name.clone() }))
            .collect();
        objects.extend(self.objects);
        objects
    }
}

fn convert_error(at: &Place, error: ConvertError) -> ManifestError {
    ManifestError::Convert {
        at: at.clone(),
        error,
    }
}

/// Deserializes a known kind. On failure of a top-level document the document is parsed again
/// straight from the text, so that the error carries its line and column.
fn typed<T: DeserializeOwned>(
    value: Value,
    at: &Place,
    kind: &'static str,
    bytes: &[u8],
) -> Result<T, ManifestError> {
    T::deserialize(value).map_err(|error| {
        let located = at.item.is_none().then(|| {
            serde_yaml_ng::Deserializer::from_slice(bytes)
                .nth(at.document.saturating_sub(1))
                .and_then(|document| T::deserialize(document).err())
        });
        ManifestError::Invalid {
            at: at.clone(),
            kind,
            error: located.flatten().unwrap_or(error),
        }
    })
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::plugin::kubernetes::model::{Port, Service, ServiceKind};

    const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/corefile/demo-cluster.yaml");

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Polls as the watch loop does: a change is read by the poll after the one that saw it.
    fn poll_settled(src: &ManifestSource) -> bool {
        assert!(
            !src.poll(),
            "a change must settle for one interval before it is read"
        );
        src.poll()
    }

    fn source(paths: Vec<PathBuf>, filter: Filter) -> ManifestSource {
        ManifestSource::new(paths, filter, Box::new(|_| {}))
    }

    /// (kind, namespace, name) of every object, in order.
    fn keys(objects: &[Object]) -> Vec<String> {
        objects
            .iter()
            .map(|o| match o {
                Object::Namespace(n) => format!("ns {}", n.name),
                Object::Service(s) => format!("svc {}/{}", s.namespace, s.name),
                Object::EndpointSlice(s) => format!("slice {}/{}", s.namespace, s.name),
                Object::Pod(p) => format!("pod {}/{}", p.namespace, p.name),
            })
            .collect()
    }

    fn services(objects: &[Object]) -> Vec<&Service> {
        objects
            .iter()
            .filter_map(|o| match o {
                Object::Service(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    fn service<'a>(objects: &'a [Object], ns: &str, name: &str) -> &'a Service {
        services(objects)
            .into_iter()
            .find(|s| &*s.namespace == ns && &*s.name == name)
            .unwrap()
    }

    fn labels_has(key: &'static str, value: &'static str) -> LabelFilter {
        Box::new(move |labels| labels.get(key).map(String::as_str) == Some(value))
    }

    #[test]
    fn demo_cluster_loads_with_expected_counts() {
        let objects = source(vec![PathBuf::from(DEMO)], Filter::default())
            .load()
            .unwrap();
        let count = |prefix: &str| {
            keys(&objects)
                .iter()
                .filter(|k| k.starts_with(prefix))
                .count()
        };
        assert_eq!(count("ns "), 4);
        assert_eq!(count("svc "), 11);
        assert_eq!(count("slice "), 9);
        assert_eq!(count("pod "), 15);

        let api = service(&objects, "demo", "api");
        assert_eq!(
            api.kind,
            ServiceKind::ClusterIp(vec![ip("10.96.100.10"), ip("fd00:10:96::100a")])
        );
        assert_eq!(service(&objects, "demo", "db").kind, ServiceKind::Headless);
        let ServiceKind::ExternalName(Some(target)) =
            &service(&objects, "demo", "internal-alias").kind
        else {
            panic!("internal-alias is not an ExternalName with a target");
        };
        assert_eq!(target.to_string(), "api.demo.svc.cluster.local.");
        assert_eq!(
            service(&objects, "kube-system", "kube-dns").ports,
            vec![
                Port {
                    name: "dns".into(),
                    protocol: "udp".into(),
                    port: 53
                },
                Port {
                    name: "dns-tcp".into(),
                    protocol: "tcp".into(),
                    port: 53
                },
                Port {
                    name: "metrics".into(),
                    protocol: "tcp".into(),
                    port: 9153
                },
            ]
        );
        assert_eq!(
            service(&objects, "demo", "portless").ports,
            vec![Port {
                name: "".into(),
                protocol: "".into(),
                port: -1
            }]
        );

        let ready: BTreeMap<String, usize> = objects
            .iter()
            .filter_map(|o| match o {
                Object::EndpointSlice(s) => Some((s.name.to_string(), s.endpoints.len())),
                _ => None,
            })
            .collect();
        let expected: BTreeMap<String, usize> = [
            ("kubernetes", 1),
            ("kube-dns-7xk2p", 2),
            ("api-4xk2p", 2),
            ("api-9mz7q", 2),
            ("db-q8r5t", 2),
            ("cache-headless-m2n4b", 2),
            ("unready-h7j3k", 0),
            ("portless-w5v6x", 1),
            ("frontend-z8c4v", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(ready, expected);
    }

    #[test]
    fn multi_document_lists_and_ignored_kinds() {
        let objects = objects_from_yaml(
            "
---
# only a comment
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: a}
---
apiVersion: v1
kind: Endpoints
metadata: {name: legacy, namespace: a}
---
apiVersion: discovery.k8s.io/v1beta1
kind: EndpointSlice
metadata: {name: old, namespace: a}
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Service, metadata: {name: s1, namespace: a}, spec: {clusterIP: 10.0.0.1}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: c, namespace: a}}
---
apiVersion: v1
kind: ServiceList
items:
- {apiVersion: v1, kind: Service, metadata: {name: s2, namespace: b}, spec: {clusterIP: None}}
---
apiVersion: v1
kind: PodList
items: []
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: a}
status: {podIP: 10.1.0.1}
",
        )
        .unwrap();
        assert_eq!(
            keys(&objects),
            vec!["ns a", "ns b", "svc a/s1", "svc b/s2", "pod a/p"]
        );
    }

    #[test]
    fn omitted_port_protocol_defaults_to_tcp() {
        let objects = objects_from_yaml(
            "apiVersion: v1
kind: Service
metadata: {name: s, namespace: a}
spec: {clusterIP: 10.0.0.1, ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s-1, namespace: a, labels: {kubernetes.io/service-name: s}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.1.0.1]}]
",
        )
        .unwrap();
        let tcp = |port| Port {
            name: "http".into(),
            protocol: "tcp".into(),
            port,
        };
        match &objects[1..] {
            [Object::Service(s), Object::EndpointSlice(e)] => {
                assert_eq!(s.ports, vec![tcp(80)]);
                assert_eq!(e.ports, vec![tcp(8080)]);
            }
            other => panic!("unexpected objects {other:?}"),
        }
    }

    #[test]
    fn json_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "ns.json",
            r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "j"}}"#,
        );
        let objects = source(vec![path], Filter::default()).load().unwrap();
        assert_eq!(keys(&objects), vec!["ns j"]);
    }

    #[test]
    fn directory_reads_manifest_files_sorted_not_recursive() {
        let dir = tempfile::tempdir().unwrap();
        let ns = |n: &str| format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {n}}}\n");
        write(dir.path(), "b.yml", &ns("b"));
        write(dir.path(), "a.yaml", &ns("a"));
        write(dir.path(), "c.JSON", &ns("c"));
        write(dir.path(), "notes.txt", &ns("txt"));
        write(dir.path(), ".hidden.yaml", &ns("hidden"));
        std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
        write(&dir.path().join("sub.yaml"), "d.yaml", &ns("nested"));
        let objects = source(vec![dir.path().to_path_buf()], Filter::default())
            .load()
            .unwrap();
        assert_eq!(keys(&objects), vec!["ns a", "ns b", "ns c"]);
    }

    fn load_err(text: &str) -> ManifestError {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "bad.yaml", text);
        source(vec![path], Filter::default()).load().unwrap_err()
    }

    #[test]
    fn bad_yaml_names_file_document_and_line() {
        let err = load_err(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nkind: [unclosed\n",
        );
        let ManifestError::Yaml { at, error } = &err else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(at.document, 2);
        assert!(at.path.ends_with("bad.yaml"));
        assert!(error.location().is_some_and(|l| l.line() >= 5), "{error}");
        let text = err.to_string();
        assert!(
            text.contains("bad.yaml: document 2: invalid YAML"),
            "{text}"
        );
        assert!(text.contains("line"), "{text}");
    }

    #[test]
    fn known_kind_that_does_not_deserialize_has_a_line() {
        let err = load_err(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: a}\nspec:\n  ports:\n  - port: eighty\n",
        );
        let ManifestError::Invalid { at, kind, error } = &err else {
            panic!("unexpected {err:?}");
        };
        assert_eq!((at.document, *kind), (2, "Service"));
        assert_eq!(error.location().map(|l| l.line()), Some(10), "{error}");
    }

    #[test]
    fn malformed_objects_are_errors() {
        let err = load_err("apiVersion: v1\nkind: Service\nmetadata: {namespace: a}\n");
        assert!(
            matches!(&err, ManifestError::Convert { at, error: ConvertError::MissingName { kind: "Service" } } if at.document == 1),
            "{err:?}"
        );
        let err = load_err("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n");
        assert!(matches!(
            err,
            ManifestError::Convert {
                error: ConvertError::MissingNamespace { .. },
                ..
            }
        ));
        assert!(matches!(
            load_err("just a string\n"),
            ManifestError::NotAnObject { .. }
        ));
        assert!(matches!(
            load_err("metadata: {name: x}\n"),
            ManifestError::NotAnObject { .. }
        ));
        assert!(matches!(
            load_err("kind: List\napiVersion: v1\nitems: 3\n"),
            ManifestError::BadList { .. }
        ));
        let err = load_err(
            "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n- {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: 7}\n",
        );
        let ManifestError::Invalid {
            at, kind: "Pod", ..
        } = &err
        else {
            panic!("unexpected {err:?}");
        };
        assert_eq!((at.document, at.item), (1, Some(1)));
        assert!(
            err.to_string()
                .contains("document 1, items[1]: invalid Pod"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_objects_are_errors() {
        let err = load_err(
            "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: a}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: S, namespace: a}\n",
        );
        let ManifestError::Duplicate { at, first, .. } = &err else {
            panic!("unexpected {err:?}");
        };
        assert_eq!((first.document, at.document), (1, 2));
        assert!(err.to_string().contains("duplicate Service a/s"), "{err}");
        // Same name, different kinds or namespaces: fine.
        objects_from_yaml(
            "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: a}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: b}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s, namespace: a}\naddressType: IPv4\n",
        )
        .unwrap();
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = source(vec![dir.path().join("nope.yaml")], Filter::default())
            .load()
            .unwrap_err();
        assert!(matches!(err, ManifestError::Read { .. }));
        assert!(err.to_string().contains("nope.yaml: cannot read"), "{err}");
    }

    #[test]
    fn namespaces_are_synthesized_only_without_namespace_objects() {
        let objects = objects_from_yaml(
            "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: zeta}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: alpha}\nstatus: {podIP: 10.0.0.1}\n",
        )
        .unwrap();
        assert_eq!(
            keys(&objects),
            vec!["ns alpha", "ns zeta", "svc zeta/s", "pod alpha/p"]
        );

        let objects = objects_from_yaml(
            "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: zeta}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: alpha}\n",
        )
        .unwrap();
        assert_eq!(keys(&objects), vec!["svc zeta/s", "ns alpha"]);
    }

    #[test]
    fn label_filters_select_objects_and_namespaces() {
        let yaml = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {env: prod}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s1, namespace: a, labels: {dns: yes-please}}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s2, namespace: a}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: e, namespace: a, labels: {dns: yes-please}}\naddressType: IPv4\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\nstatus: {podIP: 10.0.0.1}\n";
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "f.yaml", yaml);
        let filter = Filter {
            labels: Some(labels_has("dns", "yes-please")),
            namespace_labels: Some(labels_has("env", "prod")),
        };
        let objects = source(vec![path.clone()], filter).load().unwrap();
        assert_eq!(keys(&objects), vec!["ns a", "svc a/s1", "slice a/e"]);

        // A filtered-out object is still validated.
        let bad = write(
            dir.path(),
            "g.yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {name: s3}\n",
        );
        let filter = Filter {
            labels: Some(Box::new(|_| false)),
            namespace_labels: None,
        };
        assert!(source(vec![path, bad], filter).load().is_err());
    }

    #[test]
    fn namespace_labels_apply_to_synthesized_namespaces_as_unlabelled() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "f.yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: a}\n",
        );
        let only_prod = Filter {
            labels: None,
            namespace_labels: Some(labels_has("env", "prod")),
        };
        let objects = source(vec![path.clone()], only_prod).load().unwrap();
        assert_eq!(keys(&objects), vec!["svc a/s"]);
        let any = Filter {
            labels: None,
            namespace_labels: Some(Box::new(|labels| labels.is_empty())),
        };
        let objects = source(vec![path], any).load().unwrap();
        assert_eq!(keys(&objects), vec!["ns a", "svc a/s"]);
    }

    /// Counts warn events, to check that a failure is logged once.
    #[derive(Clone, Default)]
    struct WarnCounter(Arc<AtomicUsize>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for WarnCounter {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            if *event.metadata().level() == tracing::Level::WARN {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    #[test]
    fn poll_reloads_on_change_and_keeps_old_data_on_error() {
        use tracing_subscriber::layer::SubscriberExt;

        let warns = WarnCounter::default();
        let subscriber = tracing_subscriber::registry().with(warns.clone());
        tracing::subscriber::with_default(subscriber, || {
            let dir = tempfile::tempdir().unwrap();
            let ns =
                |n: &str| format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {n}}}\n");
            write(dir.path(), "a.yaml", &ns("a"));
            let received = Arc::new(Mutex::new(Vec::<Vec<String>>::new()));
            let sink_received = Arc::clone(&received);
            let src = ManifestSource::new(
                vec![dir.path().to_path_buf()],
                Filter::default(),
                Box::new(move |objects| sink_received.lock().unwrap().push(keys(&objects))),
            );
            assert_eq!(keys(&src.load().unwrap()), vec!["ns a"]);
            assert!(!src.poll(), "unchanged since load: no sink call");

            write(dir.path(), "b.yaml", &ns("b"));
            assert!(poll_settled(&src));
            assert!(!src.poll());

            // Broken edit: no sink call, one warning however often we poll.
            write(dir.path(), "b.yaml", "kind: [\n");
            assert!(!src.poll());
            assert!(!src.poll());
            assert_eq!(warns.0.load(Ordering::SeqCst), 1);
            // A different error is logged again.
            write(
                dir.path(),
                "b.yaml",
                "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n",
            );
            assert!(!src.poll());
            assert!(!src.poll());
            assert_eq!(warns.0.load(Ordering::SeqCst), 2);

            // Fixed: reloaded.
            std::fs::remove_file(dir.path().join("b.yaml")).unwrap();
            write(dir.path(), "c.yaml", &ns("c"));
            assert!(poll_settled(&src));
            // Removing a file is a change too.
            std::fs::remove_file(dir.path().join("c.yaml")).unwrap();
            assert!(poll_settled(&src));

            // The same broken content after a fix is logged again (once it has settled).
            write(dir.path(), "b.yaml", "kind: [\n");
            assert!(!src.poll());
            assert!(!src.poll());
            assert_eq!(warns.0.load(Ordering::SeqCst), 3);
            // Reverting to the loaded content logs no warning and calls no sink.
            std::fs::remove_file(dir.path().join("b.yaml")).unwrap();
            assert!(!src.poll());
            assert_eq!(warns.0.load(Ordering::SeqCst), 3);

            assert_eq!(
                *received.lock().unwrap(),
                vec![
                    vec!["ns a".to_owned(), "ns b".to_owned()],
                    vec!["ns a".to_owned(), "ns c".to_owned()],
                    vec!["ns a".to_owned()],
                ]
            );
        });
    }

    #[test]
    fn poll_without_load_delivers_the_first_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "a.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
        );
        let calls = Arc::new(AtomicUsize::new(0));
        let sink_calls = Arc::clone(&calls);
        let src = ManifestSource::new(
            vec![path],
            Filter::default(),
            Box::new(move |_| {
                sink_calls.fetch_add(1, Ordering::SeqCst);
            }),
        );
        assert!(poll_settled(&src));
        assert!(!src.poll());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    /// Sets a file's modification time to a fixed moment long past.
    fn age(path: &Path) {
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
            .unwrap();
    }

    #[test]
    fn unchanged_old_files_are_not_read_again_but_changed_ones_are() {
        let dir = tempfile::tempdir().unwrap();
        let a = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n";
        let b = "apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n";
        let path = write(dir.path(), "ns.yaml", a);
        age(&path);
        let calls = Arc::new(AtomicUsize::new(0));
        let sink_calls = Arc::clone(&calls);
        let src = ManifestSource::new(
            vec![path.clone()],
            Filter::default(),
            Box::new(move |_| {
                sink_calls.fetch_add(1, Ordering::SeqCst);
            }),
        );
        src.load().unwrap();
        // Same size, same (old) modification time: the stamp says unchanged and the file is
        // not read. This is the trade-off the racy window guards against for fresh writes.
        std::fs::write(&path, b).unwrap();
        age(&path);
        assert!(!src.poll());
        // A fresh write with the same size is not trusted to the stamp: the content is read.
        std::fs::write(&path, b).unwrap();
        assert!(poll_settled(&src));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // And a recent, unchanged file is compared by content, so nothing is delivered twice.
        assert!(!src.poll());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn spawn_watch_delivers_changes() {
        let dir = tempfile::tempdir().unwrap();
        let ns = |n: &str| format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {n}}}\n");
        write(dir.path(), "a.yaml", &ns("a"));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let src = Arc::new(ManifestSource::new(
            vec![dir.path().to_path_buf()],
            Filter::default(),
            Box::new(move |objects| {
                let _ = tx.send(keys(&objects));
            }),
        ));
        src.load().unwrap();
        let task = Arc::clone(&src).spawn_watch(Duration::from_millis(20));
        let next = async |rx: &mut tokio::sync::mpsc::UnboundedReceiver<Vec<String>>| {
            tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("no reload within 5 s")
                .expect("sink dropped")
        };

        write(dir.path(), "b.yaml", &ns("b"));
        assert_eq!(next(&mut rx).await, vec!["ns a", "ns b"]);

        // A broken file is not delivered; the next good state is.
        write(dir.path(), "b.yaml", "kind: [\n");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(rx.try_recv().is_err());
        write(dir.path(), "b.yaml", &ns("bee"));
        assert_eq!(next(&mut rx).await, vec!["ns a", "ns bee"]);

        task.abort();
    }
}
