//! The rule-selection cache (spec §3.5).
//!
//! Key: (section, rule type, name) → the selected candidate (or "no rule").
//! Only the *selection* is cached, never a result; a new document means a new
//! `Valve` and therefore an empty cache.
//!
//! Evacuation follows the reference's mark-and-sweep: every
//! `cacheEvacuationInterval` ms a purge drops the entries that were not used
//! since the previous purge and marks the others unused. The module has no
//! timers (it does no I/O and spawns nothing): the purge runs lazily on the
//! first lookup whose request time (`Request::now_ms`) is at least one
//! interval after the previous purge. Because a lazily-driven purge alone
//! would not bound memory under a burst of distinct names (or a clock that
//! goes backwards), the cache is also size-bounded: when it holds
//! `MAX_ENTRIES` entries, an insert first purges unused entries and, if that
//! frees nothing, clears the cache.
//!
//! The cache is only consulted when a (section, rule type) has more than
//! `MIN_CANDIDATES` candidate patterns: for fewer, matching the patterns
//! directly is cheaper than hashing the name and taking the lock.

use std::collections::HashMap;

use parking_lot::Mutex;

/// Upper bound on cached selections (all sections together).
pub(crate) const MAX_ENTRIES: usize = 10_000;

/// Candidate-list length above which selections are cached.
pub(crate) const MIN_CANDIDATES: usize = 4;

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Index into the candidate list, `None` = no pattern matches.
    selected: Option<u32>,
    used: bool,
}

#[derive(Debug, Default)]
struct Inner {
    maps: Vec<HashMap<Box<str>, Slot>>,
    len: usize,
    last_purge_ms: Option<u64>,
}

#[derive(Debug)]
pub(crate) struct SelectionCache {
    interval_ms: u64,
    inner: Mutex<Inner>,
}

impl SelectionCache {
    pub(crate) fn new(slots: usize, interval_ms: u64) -> SelectionCache {
        SelectionCache {
            interval_ms,
            inner: Mutex::new(Inner {
                maps: (0..slots).map(|_| HashMap::new()).collect(),
                len: 0,
                last_purge_ms: None,
            }),
        }
    }

    /// The cached selection for `name`, if any (`Some(None)` = cached "no match").
    pub(crate) fn get(&self, slot: usize, name: &str, now_ms: u64) -> Option<Option<u32>> {
        let mut inner = self.inner.lock();
        self.maybe_purge(&mut inner, now_ms);
        let entry = inner.maps[slot].get_mut(name)?;
        entry.used = true;
        Some(entry.selected)
    }

    pub(crate) fn insert(&self, slot: usize, name: &str, selected: Option<u32>) {
        let mut inner = self.inner.lock();
        if inner.len >= MAX_ENTRIES {
            sweep(&mut inner);
            if inner.len >= MAX_ENTRIES {
                for m in &mut inner.maps {
                    m.clear();
                }
                inner.len = 0;
            }
        }
        let previous = inner.maps[slot].insert(
            name.into(),
            Slot {
                selected,
                used: true,
            },
        );
        if previous.is_none() {
            inner.len += 1;
        }
    }

    fn maybe_purge(&self, inner: &mut Inner, now_ms: u64) {
        match inner.last_purge_ms {
            None => inner.last_purge_ms = Some(now_ms),
            Some(last) if now_ms.saturating_sub(last) >= self.interval_ms => {
                sweep(inner);
                inner.last_purge_ms = Some(now_ms);
            }
            Some(_) => {}
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().len
    }
}

/// Drops entries not used since the previous sweep; marks the rest unused.
fn sweep(inner: &mut Inner) {
    let mut len = 0;
    for m in &mut inner.maps {
        m.retain(|_, s| std::mem::replace(&mut s.used, false));
        len += m.len();
    }
    inner.len = len;
}
