//! The per-record queue ("record transition", protocol.md §5.5): everything that changes a
//! record or must see it consistently runs here, one operation at a time per record name.
//!
//! A queue exists while it has work. The first operation for an idle name creates the queue
//! and starts its worker; the worker loads the record once, runs the operations in arrival
//! order against that state, and removes the queue when it drains. Unlike the reference, an
//! operation that fails (INVALID_VERSION, VERSION_EXISTS, a denial, an error) only affects
//! itself: the worker always moves on to the next one, so a record never gets stuck.
//!
//! Queues live in a sharded map, so records never contend with each other on one lock, and the
//! lock is only held to push or pop.

use std::{collections::VecDeque, hash::BuildHasher, sync::Arc};

use parking_lot::Mutex;
use serde_json::Value;

use super::{
    Records, delete::Delete, notify::Refresh, request::LookupError, subscribe::Subscribe,
    write::Write,
};

/// Number of independently locked parts of the queue map.
const SHARDS: usize = 64;

/// One queued operation.
pub enum Op {
    /// UPDATE, PATCH, ERASE, PATCH_MULTI, CREATEANDUPDATE, CREATEANDPATCH.
    Write(Write),
    /// SUBSCRIBECREATEANDREAD / SUBSCRIBEANDREAD for one name: create if allowed and missing,
    /// subscribe, read.
    Subscribe(Subscribe),
    /// DELETE.
    Delete(Delete),
    /// NOTIFY for one name: forget what is known and re-read.
    Refresh(Refresh),
}

impl Op {
    async fn run(self, records: &Records, name: &str, state: &mut State) {
        match self {
            Op::Write(write) => write.run(records, name, state).await,
            Op::Subscribe(subscribe) => subscribe.run(records, name, state).await,
            Op::Delete(delete) => delete.run(records, name, state).await,
            Op::Refresh(refresh) => refresh.run(records, name, state).await,
        }
    }
}

/// What the queue knows about its record.
#[derive(Debug, Default)]
pub enum State {
    /// Not loaded yet, or unknown after a failed cache write or delete: load before use.
    #[default]
    Unknown,
    /// Neither cache nor storage has the record.
    Missing,
    /// The current version and data.
    Present(Current),
}

/// A record's current version and data.
#[derive(Debug)]
pub struct Current {
    /// The version of `data`.
    pub version: i32,
    /// JSON text, shared with the cache, storage and outgoing messages.
    pub data: Arc<str>,
    /// `data` parsed, kept for the next PATCH so it need not parse the text again; full
    /// replacements only need the text.
    parsed: Option<Value>,
}

impl Current {
    pub fn new(version: i32, data: Arc<str>, parsed: Option<Value>) -> Self {
        Current {
            version,
            data,
            parsed,
        }
    }

    /// The data as a JSON value to patch: the parsed form if there is one (taken, not copied;
    /// the commit stores the patched value back), else parsed from the text.
    pub fn take_value(&mut self) -> Result<Value, serde_json::Error> {
        match self.parsed.take() {
            Some(value) => Ok(value),
            None => serde_json::from_str(&self.data),
        }
    }
}

impl State {
    /// The record (`None`: missing), loaded through cache and storage if not known; a storage
    /// hit is copied into the cache.
    pub async fn load(
        &mut self,
        records: &Records,
        name: &str,
    ) -> Result<Option<&mut Current>, LookupError> {
        if let State::Unknown = self {
            *self = match records.store.lookup(name, true).await? {
                Some(stored) => State::Present(Current::new(stored.version, stored.data, None)),
                None => State::Missing,
            };
        }
        Ok(match self {
            State::Present(current) => Some(current),
            _ => None,
        })
    }
}

/// One shard: name → operations not started yet.
type Queues = crate::HashMap<String, VecDeque<Op>>;

/// The queues of all records with pending work.
pub struct Transitions {
    /// name → operations not started yet; an entry exists exactly while its worker runs.
    shards: Box<[Mutex<Queues>]>,
    /// Picks a name's shard.
    hasher: foldhash::fast::RandomState,
}

impl Default for Transitions {
    fn default() -> Self {
        Transitions {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

impl Transitions {
    fn shard(&self, name: &str) -> &Mutex<Queues> {
        &self.shards[self.hasher.hash_one(name) as usize % SHARDS]
    }

    /// Queues `op` behind the running one; when `name` is idle, its (empty, unallocated)
    /// queue is created instead and `op` comes back for the caller to start the worker with.
    pub fn push(&self, name: &str, op: Op) -> Option<Op> {
        let mut queues = self.shard(name).lock();
        match queues.get_mut(name) {
            Some(queue) => {
                queue.push_back(op);
                None
            }
            None => {
                queues.insert(name.to_owned(), VecDeque::new());
                Some(op)
            }
        }
    }

    /// The next operation; when none is left the queue is removed under the same lock `push`
    /// takes, so an operation is never queued without a worker.
    fn pop(&self, name: &str) -> Option<Op> {
        let mut queues = self.shard(name).lock();
        let op = queues.get_mut(name)?.pop_front();
        if op.is_none() {
            queues.remove(name);
        }
        op
    }

    /// Whether `name` has a queue (work pending or running).
    #[cfg(test)]
    pub fn is_active(&self, name: &str) -> bool {
        self.shard(name).lock().contains_key(name)
    }
}

/// The worker of `name`'s queue: runs `first`, then the queued operations in order until none
/// is left.
pub async fn drive(records: Arc<Records>, name: String, first: Op) {
    let mut guard = Abandon {
        records: &records,
        name: &name,
        drained: false,
    };
    let mut state = State::Unknown;
    let mut next = Some(first);
    while let Some(op) = next {
        op.run(&records, &name, &mut state).await;
        next = records.transitions.pop(&name);
    }
    guard.drained = true;
}

/// Removes the queue if its worker ends without draining it (a panic, a runtime shutdown), so
/// later operations start a new worker instead of waiting forever.
struct Abandon<'a> {
    /// Whose queue.
    records: &'a Records,
    /// The record name.
    name: &'a str,
    /// Set once `pop` removed the queue itself.
    drained: bool,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if !self.drained {
            self.records
                .transitions
                .shard(self.name)
                .lock()
                .remove(self.name);
        }
    }
}
