//! Subscribing to records (protocol.md §5.3).
//!
//! SUBSCRIBECREATEANDREAD (what `getRecord` sends) and SUBSCRIBEANDREAD run per name in the
//! record's queue: the create, the subscription and the read all see the same state, no write
//! can slip in between (the reference's "version of the first lookup, data of the second"
//! quirk cannot happen), and two concurrent creates cannot overwrite a write made between them.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::join_all;
use serde_json::{Map, Value};

use super::{
    Records, execute, lookup_failed,
    request::payload,
    transition::{Current, Op, State},
};
use crate::{
    connection::ConnectionHandle,
    protocol::{Message, RecordAction, Topic},
};

/// SUBSCRIBECREATEANDREAD / SUBSCRIBEANDREAD for one name, queued on the record.
pub struct Subscribe {
    /// Who subscribes.
    connection: ConnectionHandle,
    /// The request's action and bulk `correlationId`: denials answer it, errors name it.
    request: Message,
}

/// Acks at once (the whole request echoed), then queues every name (§5.3).
pub fn subscribe_and_read(records: &Arc<Records>, connection: &ConnectionHandle, message: Message) {
    connection.send(&message.clone().with_ack());
    let request = Message {
        correlation_id: message.correlation_id,
        ..Message::new(Topic::Record, message.action)
    };
    for name in &message.names {
        let subscribe = Subscribe {
            connection: connection.clone(),
            request: request.clone(),
        };
        records.enqueue(name, Op::Subscribe(subscribe));
    }
}

impl Subscribe {
    /// Create (SUBSCRIBECREATEANDREAD on a missing record, permission `create`), check `read`,
    /// subscribe, then READ_RESPONSE with the state as of the subscription (version −1 and
    /// `{}` for a missing record of SUBSCRIBEANDREAD).
    pub async fn run(self, records: &Records, name: &str, state: &mut State) {
        let create = self.request.action == RecordAction::SubscribeCreateAndRead as i32;
        let exists = match state.load(records, name).await {
            Ok(current) => current.is_some(),
            Err(error) => {
                return self
                    .connection
                    .send(&lookup_failed(name, self.request.action, &error));
            }
        };
        if !exists && create {
            if !records
                .allowed(&self.connection, &self.request, RecordAction::Create, name)
                .await
            {
                return;
            }
            if !self.create(records, name, state).await {
                return;
            }
        }
        if !records
            .allowed(&self.connection, &self.request, RecordAction::Read, name)
            .await
        {
            return;
        }
        records
            .subscriptions
            .subscribe(name, &self.connection, RecordAction::Subscribe as i32);
        let (version, data) = match state {
            State::Present(current) => (current.version, payload(&current.data)),
            _ => (-1, Bytes::from_static(b"{}")),
        };
        let response = Message::new(Topic::Record, RecordAction::ReadResponse)
            .with_name(name)
            .with_version(version)
            .with_data(data);
        self.connection.send(&response);
    }

    /// Writes version 0 `{}`; waits for the cache only (a storage failure is logged).
    async fn create(&self, records: &Records, name: &str, state: &mut State) -> bool {
        let data: Arc<str> = Arc::from("{}");
        let written = records.store.write(name, 0, &data);
        let storage = written.storage;
        let storage_name = name.to_owned();
        execute(async move {
            if let Err(error) = storage.resolve().await {
                tracing::error!(
                    event = "RECORD_CREATE_ERROR",
                    "storing new record {storage_name} failed: {error}"
                );
            }
        });
        match written.cache.resolve().await {
            Ok(()) => {
                *state = State::Present(Current::new(0, data, Some(Value::Object(Map::new()))));
                true
            }
            Err(error) => {
                tracing::error!(
                    event = "RECORD_CREATE_ERROR",
                    "caching new record {name} failed: {error}"
                );
                *state = State::Unknown;
                let reply = Message::new(Topic::Record, RecordAction::RecordCreateError)
                    .with_original_action(self.request.action)
                    .with_name(name);
                self.connection.send(&reply);
                false
            }
        }
    }
}

/// SUBSCRIBEANDHEAD (the client's re-subscribe): cache versions in one HEAD_RESPONSE_BULK, the
/// bulk subscription and its ack, then a full lookup per name the cache lacked.
pub fn subscribe_and_head(records: &Arc<Records>, connection: &ConnectionHandle, message: Message) {
    let records = records.clone();
    let connection = connection.clone();
    execute(async move {
        let cached = match records
            .store
            .cache
            .head_bulk(&message.names)
            .resolve()
            .await
        {
            Ok(cached) => cached,
            Err(error) => {
                // As the reference: no reply at all; the client times the subscription out.
                tracing::error!(
                    event = "RECORD_LOAD_ERROR",
                    "cache headBulk failed: {error}"
                );
                return;
            }
        };
        let bulk = Message {
            versions: cached,
            ..Message::new(Topic::Record, RecordAction::HeadResponseBulk)
        };
        connection.send(&bulk);
        records.subscriptions.subscribe_bulk(&connection, &message);
        let missing = message
            .names
            .iter()
            .filter(|name| !bulk.versions.iter().any(|(cached, _)| cached == *name));
        join_all(missing.map(|name| async {
            let reply = match records.store.lookup(name, false).await {
                Ok(found) => Message::new(Topic::Record, RecordAction::HeadResponse)
                    .with_name(name.as_str())
                    .with_version(found.map_or(-1, |record| record.version)),
                Err(error) => lookup_failed(name, RecordAction::SubscribeAndHead, &error),
            };
            connection.send(&reply);
        }))
        .await;
    });
}
