//! One-off reads (protocol.md §5.4): READ (`snapshot()`) and HEAD (`head()`, `has()`), for
//! records the client does not hold. No subscription, no queue: they read what the cache or
//! storage has right now.

use std::sync::Arc;

use super::{Records, execute, lookup_failed, name_of, request::payload};
use crate::{
    connection::ConnectionHandle,
    protocol::{Message, RecordAction, Topic},
};

/// READ → READ_RESPONSE `{name, version, data}`, or RECORD_NOT_FOUND `{originalAction, name,
/// isError}`.
pub fn read(records: &Arc<Records>, connection: &ConnectionHandle, message: Message) {
    let Some(name) = name_of(connection, &message) else {
        return;
    };
    let (records, connection) = (records.clone(), connection.clone());
    execute(async move {
        let reply = match records.store.lookup(&name, false).await {
            Ok(Some(record)) => Message::new(Topic::Record, RecordAction::ReadResponse)
                .with_name(name)
                .with_version(record.version)
                .with_data(payload(&record.data)),
            Ok(None) => Message::new(Topic::Record, RecordAction::RecordNotFound)
                .with_original_action(RecordAction::Read)
                .with_name(name)
                .with_error(),
            Err(error) => lookup_failed(&name, RecordAction::Read, &error),
        };
        connection.send(&reply);
    });
}

/// HEAD → HEAD_RESPONSE `{name, version}`, version −1 when the record does not exist.
pub fn head(records: &Arc<Records>, connection: &ConnectionHandle, message: Message) {
    let Some(name) = name_of(connection, &message) else {
        return;
    };
    let (records, connection) = (records.clone(), connection.clone());
    execute(async move {
        let reply = match records.store.lookup(&name, false).await {
            Ok(found) => Message::new(Topic::Record, RecordAction::HeadResponse)
                .with_name(name)
                .with_version(found.map_or(-1, |record| record.version)),
            Err(error) => lookup_failed(&name, RecordAction::Head, &error),
        };
        connection.send(&reply);
    });
}
