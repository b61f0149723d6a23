//! A hash map whose clones share their storage. The change feed applies each
//! change to a *copy* of the admission snapshot (admissions in flight keep
//! reading the old one); with plain maps, copying a snapshot of 100,000 windows
//! to change one of them costs tens of milliseconds. Here the entries are
//! spread over [`SHARDS`] maps, each behind an `Arc`: a clone copies the shard
//! pointers only, and a write copies only the one shard it touches.

use std::borrow::Borrow;
use std::collections::hash_map::{self, HashMap, RandomState};
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

/// Shards per map: a clone copies this many pointers, a write one shard of
/// `len / SHARDS` entries.
pub const SHARDS: usize = 256;

/// A copy-on-write hash map (see the module documentation), with the parts of
/// `HashMap`'s interface the snapshot's builders and readers use.
#[derive(Clone)]
pub struct SharedMap<K, V> {
    /// Empty until the first write, else exactly [`SHARDS`] shards.
    shards: Vec<Arc<HashMap<K, V>>>,
    /// Picks the shard. Distinct from each shard's own hasher, so that the keys
    /// of one shard do not all share the low bits the shard's table indexes on.
    hasher: RandomState,
}

impl<K, V> Default for SharedMap<K, V> {
    fn default() -> Self {
        Self {
            shards: Vec::new(),
            hasher: RandomState::new(),
        }
    }
}

impl<K: Hash + Eq, V> SharedMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    fn shard_of<Q: Hash + ?Sized>(&self, k: &Q) -> usize {
        // Truncating the hash is fine: only its spread matters.
        (self.hasher.hash_one(k) % SHARDS as u64) as usize
    }

    fn shard<Q: Hash + ?Sized>(&self, k: &Q) -> Option<&HashMap<K, V>> {
        self.shards.get(self.shard_of(k)).map(Arc::as_ref)
    }

    /// The value of `k`.
    pub fn get<Q>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shard(k)?.get(k)
    }

    /// Whether `k` has a value.
    pub fn contains_key<Q>(&self, k: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(k).is_some()
    }

    /// Number of entries (sums the shards).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len()).sum()
    }

    /// Whether the map has no entry.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.is_empty())
    }

    /// The entries, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flat_map(|s| s.iter())
    }

    /// The keys, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }

    /// The values, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.shards.clear();
    }

    /// Whether both maps share all their storage (one is an unmodified clone of
    /// the other): then they are equal without comparing entries.
    pub fn ptr_eq(&self, other: &Self) -> bool {
        self.shards.len() == other.shards.len()
            && self.shards.iter().zip(&other.shards).all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

impl<K: Hash + Eq + Clone, V: Clone> SharedMap<K, V> {
    /// The shard of `k`, copied first if another clone shares it.
    fn shard_mut<Q: Hash + ?Sized>(&mut self, k: &Q) -> &mut HashMap<K, V> {
        if self.shards.is_empty() {
            let empty = Arc::new(HashMap::new());
            self.shards = vec![empty; SHARDS];
        }
        let i = self.shard_of(k);
        // `i < SHARDS == self.shards.len()`: the index cannot be out of range.
        #[allow(clippy::indexing_slicing)]
        let shard = &mut self.shards[i];
        Arc::make_mut(shard)
    }

    /// The value of `k`, to modify.
    pub fn get_mut<Q>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // Do not copy a shared shard only to find the key absent.
        if !self.contains_key(k) {
            return None;
        }
        self.shard_mut(k).get_mut(k)
    }

    /// Sets the value of `k`; returns the previous one.
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        self.shard_mut(&k).insert(k, v)
    }

    /// Removes `k`; returns its value.
    pub fn remove<Q>(&mut self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if !self.contains_key(k) {
            return None;
        }
        self.shard_mut(k).remove(k)
    }

    /// The entry of `k`, to fill or modify in place.
    pub fn entry(&mut self, k: K) -> hash_map::Entry<'_, K, V> {
        self.shard_mut(&k).entry(k)
    }

    /// The values, to modify (copies every shared shard).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.shards.iter_mut().flat_map(|s| Arc::make_mut(s).values_mut())
    }

    /// Keeps only the entries `keep` accepts (copies the shards it changes).
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        for s in &mut self.shards {
            if s.iter().any(|(k, v)| !keep(k, v)) {
                Arc::make_mut(s).retain(|k, v| keep(k, v));
            }
        }
    }
}

impl<K, V, Q> std::ops::Index<&Q> for SharedMap<K, V>
where
    K: Hash + Eq + Borrow<Q>,
    Q: Hash + Eq + ?Sized,
{
    type Output = V;

    /// Like `HashMap`'s: panics if `k` is absent (for tests, and callers that checked).
    #[allow(clippy::expect_used)]
    fn index(&self, k: &Q) -> &V {
        self.get(k).expect("key absent from SharedMap")
    }
}

impl<K: Hash + Eq + Clone, V: Clone> FromIterator<(K, V)> for SharedMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = Self::new();
        m.extend(iter);
        m
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Extend<(K, V)> for SharedMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<K: Hash + Eq + fmt::Debug, V: fmt::Debug> fmt::Debug for SharedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Hash + Eq, V: PartialEq> PartialEq for SharedMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other)
            || (self.len() == other.len() && self.iter().all(|(k, v)| other.get(k).is_some_and(|o| o == v)))
    }
}

impl<K: Hash + Eq, V: Eq> Eq for SharedMap<K, V> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_copies_only_the_touched_shard() {
        let a: SharedMap<u32, String> = (0..10_000).map(|i| (i, i.to_string())).collect();
        let mut b = a.clone();
        assert!(a.ptr_eq(&b));
        b.insert(7, "seven".into());
        let shared = a.shards.iter().zip(&b.shards).filter(|(x, y)| Arc::ptr_eq(x, y)).count();
        assert_eq!(shared, SHARDS - 1);
        assert_eq!(a.get(&7).map(String::as_str), Some("7"));
        assert_eq!(b.get(&7).map(String::as_str), Some("seven"));
        assert_eq!((a.len(), b.len()), (10_000, 10_000));
        assert_ne!(a, b);
        b.insert(7, "7".into());
        assert_eq!(a, b);
    }

    #[test]
    fn behaves_like_a_hash_map() {
        let mut m: SharedMap<String, Vec<u8>> = SharedMap::new();
        assert!(m.is_empty());
        assert_eq!(m.get("x"), None);
        assert_eq!(m.get_mut("x"), None);
        assert_eq!(m.remove("x"), None);
        m.entry("x".into()).or_default().push(1);
        m.entry("x".into()).or_default().push(2);
        m.insert("y".into(), vec![3]);
        assert_eq!(m["x"], vec![1, 2]);
        if let Some(v) = m.get_mut("y") {
            v.push(4);
        }
        assert_eq!(m.get("y"), Some(&vec![3, 4]));
        for v in m.values_mut() {
            v.retain(|b| b % 2 == 0);
        }
        assert_eq!(m.values().map(Vec::len).sum::<usize>(), 2);
        m.retain(|k, _| k == "x");
        assert_eq!(m.keys().collect::<Vec<_>>(), vec!["x"]);
        assert_eq!(m.remove("x"), Some(vec![2]));
        assert_eq!(m.len(), 0);
        m.insert("z".into(), vec![]);
        m.clear();
        assert!(m.is_empty());
    }
}
