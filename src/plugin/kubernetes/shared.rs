//! Keeps a `kubernetes` block's cluster index across a reload: a process-wide map from what
//! decides an index's content (zones and source settings) to the live `Store` and source, so an
//! unchanged block in a reloaded Corefile reuses them instead of starting empty.
//!
//! Only setup touches the map (a mutex, never on the query path). It holds weak references: an
//! index lives exactly as long as some plugin instance uses it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use hickory_proto::rr::Name;

use super::config::Config;
use super::index::Store;
use super::source::manifests::ManifestSource;

/// What decides the content of an index: the block's zones, the source settings and the label
/// selectors (options that only shape answers, such as `ttl` or `pods`, are not part of it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key(String);

impl Key {
    pub(crate) fn new(zones: &[Name], config: &Config) -> Key {
        Key(format!(
            "{zones:?}|{:?}|{:?}|{:?}|{:?}",
            config.manifests.as_ref().map(|(_, paths)| paths),
            config.api,
            config.labels,
            config.namespace_labels,
        ))
    }
}

/// The store and source of one index.
pub(crate) type Shared = (Arc<Store>, Option<Arc<ManifestSource>>);

type Entry = (Weak<Store>, Option<Weak<ManifestSource>>);

static LIVE: Mutex<Option<HashMap<Key, Entry>>> = Mutex::new(None);

fn live() -> MutexGuard<'static, Option<HashMap<Key, Entry>>> {
    // The map holds only weak references: a panic elsewhere cannot leave it inconsistent.
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The store and source still in use for `key`, if any.
pub(crate) fn find(key: &Key) -> Option<Shared> {
    let guard = live();
    let (store, source) = guard.as_ref()?.get(key)?;
    let store = store.upgrade()?;
    let source = match source {
        Some(weak) => Some(weak.upgrade()?),
        None => None,
    };
    Some((store, source))
}

/// Remembers `shared` as the index of `key` (forgetting entries no longer in use).
pub(crate) fn remember(key: Key, shared: &Shared) {
    let mut guard = live();
    let map = guard.get_or_insert_with(HashMap::new);
    map.retain(|_, (store, _)| store.strong_count() > 0);
    map.insert(
        key,
        (
            Arc::downgrade(&shared.0),
            shared.1.as_ref().map(Arc::downgrade),
        ),
    );
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(text: &str) -> Config {
        crate::plugin::test_support::parse_first(text, |d| {
            super::super::config::parse(
                d,
                &[Name::from_ascii("cluster.local.").unwrap()],
                Path::new("/"),
            )
        })
        .unwrap()
    }

    #[test]
    fn key_ignores_answer_options_but_not_the_source() {
        let zones = [Name::from_ascii("cluster.local.").unwrap()];
        let base = Key::new(
            &zones,
            &config("kubernetes cluster.local {\n manifests a.yaml\n}"),
        );
        let ttl = Key::new(
            &zones,
            &config("kubernetes cluster.local {\n manifests a.yaml\n ttl 30\n}"),
        );
        let other = Key::new(
            &zones,
            &config("kubernetes cluster.local {\n manifests b.yaml\n}"),
        );
        let zone = Key::new(
            &[Name::from_ascii("example.").unwrap()],
            &config("kubernetes cluster.local {\n manifests a.yaml\n}"),
        );
        assert_eq!(base, ttl);
        assert_ne!(base, other);
        assert_ne!(base, zone);
    }

    #[test]
    fn an_index_is_found_while_in_use_and_forgotten_after() {
        let key = Key("shared-test-key".to_owned());
        let store = Arc::new(Store::new());
        remember(key.clone(), &(Arc::clone(&store), None));
        let (found, source) = find(&key).expect("in use");
        assert!(Arc::ptr_eq(&found, &store));
        assert!(source.is_none());
        drop((found, store));
        assert!(find(&key).is_none());
    }
}
