//! Cache and storage access for records (protocol.md §5.1–§5.2, server.md §2.4.3–§2.4.4): the
//! read-through lookup with its timeouts, deletes, and issuing the writes of a committed step.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::{
    HashMap,
    config::RecordConfig,
    protocol::RecordAction,
    services::{Answer, RecordStore, ServiceError, StoredRecord},
};

/// Why a lookup failed; each maps to the error action the client is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("cache did not answer within cacheRetrievalTimeout")]
    CacheTimeout,
    #[error("storage did not answer within storageRetrievalTimeout")]
    StorageTimeout,
    #[error("{0}")]
    Load(ServiceError),
}

impl LookupError {
    /// The reply action: CACHE_RETRIEVAL_TIMEOUT, STORAGE_RETRIEVAL_TIMEOUT or RECORD_LOAD_ERROR.
    pub fn action(&self) -> RecordAction {
        match self {
            LookupError::CacheTimeout => RecordAction::CacheRetrievalTimeout,
            LookupError::StorageTimeout => RecordAction::StorageRetrievalTimeout,
            LookupError::Load(_) => RecordAction::RecordLoadError,
        }
    }

    /// The log event: the reply action's name.
    pub fn event(&self) -> &'static str {
        match self {
            LookupError::CacheTimeout => "CACHE_RETRIEVAL_TIMEOUT",
            LookupError::StorageTimeout => "STORAGE_RETRIEVAL_TIMEOUT",
            LookupError::Load(_) => "RECORD_LOAD_ERROR",
        }
    }
}

/// The cache and storage services plus the `record` options that decide how they are used.
pub struct Store {
    /// Authoritative copy of live records; every read asks it first.
    pub cache: Arc<dyn RecordStore>,
    /// Durable copy; read on cache misses, written alongside the cache.
    pub storage: Arc<dyn RecordStore>,
    /// Limit for cache get/delete (`record.cacheRetrievalTimeout`).
    cache_timeout: Duration,
    /// Limit for storage get/delete (`record.storageRetrievalTimeout`).
    storage_timeout: Duration,
    /// Names that never touch storage (`record.storageExclusionPrefixes`).
    exclusion_prefixes: Vec<String>,
    /// Names whose upserts skip the version check (`record.storageHotPathPrefixes`, §5.7).
    hot_path_prefixes: Vec<String>,
    /// Keeps each record's storage operations in the order they were issued.
    storage_order: Arc<StorageOrder>,
}

/// Storage operations of one record (writes, deletes, and reads after a cache miss) run in the
/// order they were issued. A record's queue waits for the cache only, so versions N and N+1
/// can both be on their way to storage; were they sent at once, a storage with several
/// connections (a pool) could apply N after N+1 and leave an older version behind an
/// acknowledged newer one. Each storage operation therefore starts only when the previous one
/// of the same record has finished (operations of different records still run side by side).
#[derive(Default)]
struct StorageOrder {
    /// name → (id, finishes when the latest operation issued for it finishes).
    latest: Mutex<HashMap<String, (u64, oneshot::Receiver<()>)>>,
    /// Ids telling operations apart, so only the latest one clears its entry.
    next_id: AtomicU64,
}

impl StorageOrder {
    /// Runs `operation` after every earlier storage operation on `name`.
    fn after_previous<T: Send + 'static>(
        self: &Arc<Self>,
        name: &str,
        operation: Answer<T>,
    ) -> Answer<T> {
        let Answer::Pending(operation) = operation else {
            // Answered already: it took effect when it was issued, in order.
            return operation;
        };
        let (finished, finishes) = oneshot::channel::<()>();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let previous = self
            .latest
            .lock()
            .insert(name.to_owned(), (id, finishes))
            .map(|(_, previous)| previous);
        let (order, name) = (self.clone(), name.to_owned());
        Answer::Pending(Box::pin(async move {
            if let Some(previous) = previous {
                // Err: the previous operation was dropped unfinished; nothing left to wait for.
                let _ = previous.await;
            }
            let result = operation.await;
            let mut latest = order.latest.lock();
            if latest
                .get(&name)
                .is_some_and(|(latest_id, _)| *latest_id == id)
            {
                latest.remove(&name);
            }
            drop(finished);
            result
        }))
    }
}

impl Store {
    pub fn new(
        config: &RecordConfig,
        cache: Arc<dyn RecordStore>,
        storage: Arc<dyn RecordStore>,
    ) -> Self {
        Store {
            cache,
            storage,
            cache_timeout: config.cache_retrieval_timeout,
            storage_timeout: config.storage_retrieval_timeout,
            exclusion_prefixes: config.storage_exclusion_prefixes.clone(),
            hot_path_prefixes: config.storage_hot_path_prefixes.clone(),
            storage_order: Arc::default(),
        }
    }

    /// Whether `name` is kept in storage as well as in the cache.
    pub fn uses_storage(&self, name: &str) -> bool {
        !self
            .exclusion_prefixes
            .iter()
            .any(|prefix| name.starts_with(prefix.as_str()))
    }

    pub fn is_hot_path(&self, name: &str) -> bool {
        self.hot_path_prefixes
            .iter()
            .any(|prefix| name.starts_with(prefix.as_str()))
    }

    /// Cache first, then (unless excluded) storage; `None` when neither has the record.
    ///
    /// With `promote`, a storage hit is copied into the cache before returning. Only a
    /// record's queue asks for that: a copy made outside it could land after a newer write
    /// and roll the cache back.
    pub async fn lookup(
        &self,
        name: &str,
        promote: bool,
    ) -> Result<Option<StoredRecord>, LookupError> {
        let cached = within(self.cache.get(name), self.cache_timeout).await;
        if let Some(record) = cached
            .ok_or(LookupError::CacheTimeout)?
            .map_err(LookupError::Load)?
        {
            return Ok(Some(record));
        }
        if !self.uses_storage(name) {
            return Ok(None);
        }
        // Behind this record's storage writes still in flight: a read overtaking them would
        // return (and copy into the cache) an older version than the one acknowledged.
        let read = self
            .storage_order
            .after_previous(name, self.storage.get(name));
        let stored = within(read, self.storage_timeout).await;
        let stored = stored
            .ok_or(LookupError::StorageTimeout)?
            .map_err(LookupError::Load)?;
        if promote
            && let Some(record) = &stored
            && let Err(error) = self
                .cache
                .set(name, record.version, record.data.clone())
                .resolve()
                .await
        {
            tracing::warn!(
                event = "RECORD_LOAD_ERROR",
                "could not copy {name} from storage into the cache: {error}"
            );
        }
        Ok(stored)
    }

    /// Deletes from cache and (unless excluded) storage in parallel, each within its timeout.
    pub async fn delete(&self, name: &str) -> Result<(), ServiceError> {
        let cache = within(self.cache.delete(name), self.cache_timeout);
        let storage = async {
            if !self.uses_storage(name) {
                return Some(Ok(()));
            }
            let delete = self
                .storage_order
                .after_previous(name, self.storage.delete(name));
            within(delete, self.storage_timeout).await
        };
        let (cached, stored) = futures_util::future::join(cache, storage).await;
        cached.ok_or("cache delete timed out")??;
        stored.ok_or("storage delete timed out")??;
        Ok(())
    }

    /// Issues the storage write (unless excluded) and then the cache write of one version; the
    /// caller decides what waits for which.
    pub fn write(&self, name: &str, version: i32, data: &Arc<str>) -> Written {
        let storage = if self.uses_storage(name) {
            let set = self.storage.set(name, version, data.clone());
            self.storage_order.after_previous(name, set)
        } else {
            Answer::Ready(Ok(()))
        };
        let cache = self.cache.set(name, version, data.clone());
        Written { cache, storage }
    }
}

/// The two outstanding writes of one record version.
pub struct Written {
    /// The cache write: broadcasts and the next queued step wait for it.
    pub cache: Answer<()>,
    /// The storage write (`Ready(Ok)` for excluded names): only write acks wait for it.
    pub storage: Answer<()>,
}

/// Waits for `answer` at most `limit`; `None` when the limit passed (a late answer is dropped).
async fn within<T: Send + 'static>(
    answer: Answer<T>,
    limit: Duration,
) -> Option<Result<T, ServiceError>> {
    match answer {
        Answer::Ready(result) => Some(result),
        Answer::Pending(future) => tokio::time::timeout(limit, future).await.ok(),
    }
}

/// Record data as message payload without copying: `Bytes` can own the shared text.
pub fn payload(data: &Arc<str>) -> Bytes {
    Bytes::from_owner(Text(data.clone()))
}

/// Lets `Bytes` own an `Arc<str>` (which is not `AsRef<[u8]>` itself).
struct Text(Arc<str>);

impl AsRef<[u8]> for Text {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}
