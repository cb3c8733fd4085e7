//! DELETE (protocol.md §5.8).
//!
//! The delete is queued like a write: writes that arrived before it are applied (and
//! broadcast) first, writes after it find the record missing. The reference instead drops the
//! queued writes without telling their senders.

use std::sync::Arc;

use super::{Op, Records, name_of, transition::State};
use crate::{
    connection::ConnectionHandle,
    protocol::{Message, RecordAction, Topic},
};

/// DELETE for one record, queued on it.
pub struct Delete {
    /// Who asked; gets DELETE_SUCCESS or RECORD_DELETE_ERROR, and no DELETED.
    connection: ConnectionHandle,
}

pub fn receive(records: &Arc<Records>, connection: &ConnectionHandle, message: Message) {
    if let Some(name) = name_of(connection, &message) {
        records.enqueue(
            &name,
            Op::Delete(Delete {
                connection: connection.clone(),
            }),
        );
    }
}

impl Delete {
    /// Deletes from cache and storage; on success DELETE_SUCCESS to the requester, DELETED to
    /// every other subscriber, and every local subscription of the name ends.
    pub async fn run(self, records: &Records, name: &str, state: &mut State) {
        match records.store.delete(name).await {
            Ok(()) => {
                *state = State::Missing;
                self.connection.send(
                    &Message::new(Topic::Record, RecordAction::DeleteSuccess).with_name(name),
                );
                records.deleted(name, Some(&self.connection));
            }
            Err(error) => {
                // Whatever part did succeed, the record's state is no longer known.
                *state = State::Unknown;
                tracing::error!(
                    event = "RECORD_DELETE_ERROR",
                    "deleting {name} failed: {error}"
                );
                self.connection.send(
                    &Message::new(Topic::Record, RecordAction::RecordDeleteError).with_name(name),
                );
            }
        }
    }
}
