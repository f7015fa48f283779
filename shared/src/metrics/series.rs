//! Metric series resolved once per label combination. `Family::get_or_create` hashes a label
//! set built for the call (route and method strings copied) on every request; here a request
//! compares its labels against the few combinations seen so far and bumps shared handles.

use std::sync::RwLock;

/// Most combinations kept. Labels are bounded (route templates, known methods, status codes),
/// so this is never reached in practice; past it, lookups go to the family each time.
const MAX_ENTRIES: usize = 512;

/// Handles (`V`, cheap clones sharing the family's series) by label combination (`K`).
pub(crate) struct SeriesCache<K, V> {
    entries: RwLock<Vec<(K, V)>>,
}

impl<K, V> Default for SeriesCache<K, V> {
    fn default() -> Self {
        Self {
            entries: RwLock::new(Vec::new()),
        }
    }
}

impl<K, V: Clone> SeriesCache<K, V> {
    /// The handles whose key `matches`, resolved by `resolve` (and kept) the first time.
    pub(crate) fn get(&self, matches: impl Fn(&K) -> bool, resolve: impl FnOnce() -> (K, V)) -> V {
        // A poisoned lock only means a panic elsewhere mid-update of this list of handles.
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        if let Some((_, v)) = entries.iter().find(|(k, _)| matches(k)) {
            return v.clone();
        }
        drop(entries);
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if let Some((_, v)) = entries.iter().find(|(k, _)| matches(k)) {
            return v.clone();
        }
        let (key, value) = resolve();
        if entries.len() < MAX_ENTRIES {
            entries.push((key, value.clone()));
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;

    #[test]
    fn handles_share_the_familys_series() {
        let family: Family<Vec<(String, String)>, Counter> = Family::default();
        let cache: SeriesCache<String, Counter> = SeriesCache::default();
        let labels = |r: &str| vec![("route".to_owned(), r.to_owned())];
        for route in ["/a", "/b", "/a"] {
            cache
                .get(
                    |k| k == route,
                    || {
                        (
                            route.to_owned(),
                            family.get_or_create(&labels(route)).clone(),
                        )
                    },
                )
                .inc();
        }
        assert_eq!(family.get_or_create(&labels("/a")).get(), 2);
        assert_eq!(family.get_or_create(&labels("/b")).get(), 1);
        assert_eq!(cache.entries.read().unwrap().len(), 2);
    }
}
