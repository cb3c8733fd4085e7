//! NOTIFY (protocol.md §5.10): the storage changed behind the server's back. The names are
//! dropped from the cache, then each is refreshed in its queue — so a queue that had the old
//! data loaded forgets it — and its subscribers get the new data, or DELETED when storage no
//! longer has it.

use std::sync::Arc;

use futures_util::future::join_all;
use tokio::sync::oneshot;

use super::{
    Records, execute, lookup_failed,
    request::payload,
    transition::{Op, State},
};
use crate::{
    connection::ConnectionHandle,
    protocol::{Message, RecordAction, Topic},
};

/// The refresh of one notified name, queued on it.
pub struct Refresh {
    /// Who notified; told about lookup errors.
    notifier: ConnectionHandle,
    /// Fired when this name is done, so the NOTIFY can be acked after all of them.
    done: oneshot::Sender<()>,
}

/// Drops the names from the cache, refreshes each, then acks with the request echoed.
pub fn receive(records: &Arc<Records>, connection: &ConnectionHandle, message: Message) {
    let (records, connection) = (records.clone(), connection.clone());
    execute(async move {
        if let Err(error) = records
            .store
            .cache
            .delete_bulk(&message.names)
            .resolve()
            .await
        {
            tracing::error!(
                event = "RECORD_NOTIFY_ERROR",
                "notify could not clear the cache: {error}"
            );
            let mut reply = Message::new(Topic::Record, RecordAction::RecordNotifyError)
                .with_json(&error.into())
                .with_error();
            reply.correlation_id = message.correlation_id.clone();
            connection.send(&reply);
            return;
        }
        let refreshed = message.names.iter().map(|name| {
            let (done, refreshed) = oneshot::channel();
            records.enqueue(
                name,
                Op::Refresh(Refresh {
                    notifier: connection.clone(),
                    done,
                }),
            );
            refreshed
        });
        // A refresh that was dropped (its queue abandoned) counts as done too.
        join_all(refreshed.collect::<Vec<_>>()).await;
        connection.send(&message.with_ack());
    });
}

impl Refresh {
    /// Forgets the loaded state; with local subscribers, re-reads the record and sends them
    /// all (the notifier too) UPDATE `{name, version, data}`, or DELETED if it is gone.
    pub async fn run(self, records: &Records, name: &str, state: &mut State) {
        *state = State::Unknown;
        if records.subscriptions.has_local_subscribers(name) {
            match state.load(records, name).await {
                Ok(Some(current)) => {
                    let update = Message::new(Topic::Record, RecordAction::Update)
                        .with_name(name)
                        .with_version(current.version)
                        .with_data(payload(&current.data));
                    records
                        .subscriptions
                        .send_to_subscribers(name, &update, None);
                }
                Ok(None) => records.deleted(name, None),
                Err(error) => {
                    self.notifier
                        .send(&lookup_failed(name, RecordAction::Notify, &error))
                }
            }
        }
        let _ = self.done.send(());
    }
}
