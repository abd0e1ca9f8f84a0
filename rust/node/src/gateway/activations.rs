//! The activations the gateway remembers, for `GET .../activations/{id}`: the latest
//! `capacity` of them, each for `ttl` at most.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;

/// A bounded store of activation records by id.
#[derive(Debug)]
pub struct Activations {
    capacity: usize,
    ttl: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<String, (Instant, Arc<Value>)>,
    /// Ids, oldest first.
    order: VecDeque<String>,
}

impl Activations {
    /// Keeps the latest `capacity` records, each for `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Activations {
            capacity: capacity.max(1),
            ttl,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Stores `record` under `id` at `now`; the oldest and expired records go.
    pub fn insert(&self, id: String, record: Value, now: Instant) {
        let mut inner = self.inner.lock();
        inner.order.push_back(id.clone());
        inner.by_id.insert(id, (now, Arc::new(record)));
        while inner.order.len() > self.capacity || inner.front_expired(now, self.ttl) {
            if let Some(old) = inner.order.pop_front() {
                inner.by_id.remove(&old);
            }
        }
    }

    /// The record of `id`, unless it expired or was pushed out.
    pub fn get(&self, id: &str, now: Instant) -> Option<Arc<Value>> {
        let inner = self.inner.lock();
        let (at, record) = inner.by_id.get(id)?;
        (now.duration_since(*at) < self.ttl).then(|| Arc::clone(record))
    }

    /// The records that `keep` accepts, newest first: `skip` of them left out, `limit` at most.
    pub fn list(
        &self,
        now: Instant,
        skip: usize,
        limit: usize,
        keep: impl Fn(&Value) -> bool,
    ) -> Vec<Arc<Value>> {
        let inner = self.inner.lock();
        inner
            .order
            .iter()
            .rev()
            .filter_map(|id| inner.by_id.get(id))
            .filter(|(at, record)| now.duration_since(*at) < self.ttl && keep(record))
            .skip(skip)
            .take(limit)
            .map(|(_, record)| Arc::clone(record))
            .collect()
    }

    /// Records held (expired ones included until they are pushed out).
    pub fn len(&self) -> usize {
        self.inner.lock().by_id.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn front_expired(&self, now: Instant, ttl: Duration) -> bool {
        self.order
            .front()
            .and_then(|id| self.by_id.get(id))
            .is_some_and(|(at, _)| now.duration_since(*at) >= ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_the_latest_records_for_a_bounded_time() {
        let store = Activations::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        store.insert("a".into(), json!(1), t0);
        store.insert("b".into(), json!(2), t0);
        store.insert("c".into(), json!(3), t0);
        assert_eq!(store.len(), 2);
        assert!(store.get("a", t0).is_none());
        assert_eq!(*store.get("c", t0).unwrap(), json!(3));
        let listed: Vec<Value> = store
            .list(t0, 0, 10, |_| true)
            .iter()
            .map(|v| (**v).clone())
            .collect();
        assert_eq!(listed, vec![json!(3), json!(2)]);
        assert_eq!(store.list(t0, 1, 10, |_| true).len(), 1);
        let later = t0 + Duration::from_secs(11);
        assert!(store.get("c", later).is_none());
        store.insert("d".into(), json!(4), later);
        assert_eq!(store.len(), 1);
    }
}
