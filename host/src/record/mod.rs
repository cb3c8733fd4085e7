//! Records (protocol.md §5): named JSON objects or arrays (lists) with a version, kept in the
//! cache and storage services and kept in sync between clients by broadcasting every accepted
//! write to the record's other subscribers.
//!
//! * `request`: cache/storage access — read-through lookups with their timeouts, deletes.
//! * `transition`: the per-record queue. Writes, creates, deletes and notify refreshes of one
//!   record run there one at a time, in arrival order, against the record's loaded state.
//! * `write`: UPDATE/PATCH/ERASE/PATCH_MULTI and the upserts (§5.5–§5.7, §5.9).
//! * `subscribe`: the subscribe variants (§5.3); `read`: READ and HEAD (§5.4).
//! * `delete` (§5.8), `notify` (§5.10), [`json_path`] (§5.12).
//!
//! # Where a write's data is
//!
//! An accepted write is issued to storage (unless the name is storage-excluded) and to the
//! cache at once; storage writes of one record land in version order, each after the one
//! before it. The queue moves on, and subscribers get the broadcast, as soon as the
//! **cache** write succeeded: from then on every reader on this server sees the new version,
//! but storage may still be writing. The WRITE_ACKNOWLEDGEMENT (requested with `isWriteAck`)
//! fires only when the cache write **and** the storage write have both succeeded, so when a
//! client holds an ack its data is in the cache and as durable as the storage service makes
//! it. If either write fails the writer gets RECORD_UPDATE_ERROR instead of the ack (one reply
//! per write, never both); a failed cache write is also not broadcast. Storage-excluded records
//! live in the cache only, so their ack follows the cache write. A record created by
//! `getRecord` (version 0, `{}`) is readable once cached; its storage write is not waited for.
//!
//! # Listening
//!
//! Record LISTEN/UNLISTEN/LISTEN_ACCEPT/LISTEN_REJECT belong to the listening feature: they
//! are forwarded to the `listen` delegate given to [`RecordHandler::new`], which also attaches
//! to the RECORD subscription registry (`SubscriptionRegistry::set_listener`) for its
//! subscription hooks and has-provider notices.

mod delete;
pub mod json_path;
mod notify;
mod read;
mod request;
mod subscribe;
mod transition;
mod write;

#[cfg(test)]
mod tests;

use std::{future::Future, sync::Arc};

use crate::{
    connection::ConnectionHandle,
    protocol::{Message, RecordAction, Topic},
    server::{TopicHandler, check_permission},
    services::Permission,
    subscription_registry::{RegistryActions, SubscriptionRegistry},
};

pub use request::{LookupError, Store};

use transition::{Op, Transitions};

/// Reply actions of the record registry.
pub const RECORD_ACTIONS: RegistryActions = RegistryActions {
    multiple_subscriptions: RecordAction::MultipleSubscriptions as i32,
};

/// The RECORD topic handler.
pub struct RecordHandler {
    /// What the record operations share; their tasks hold it too.
    records: Arc<Records>,
    /// The record listening handler, which owns the four listen actions.
    listen: Option<Arc<dyn TopicHandler>>,
}

/// State shared by every record operation.
struct Records {
    /// Record name → subscribed connections; broadcasts go through it.
    subscriptions: Arc<SubscriptionRegistry>,
    /// Cache, storage and the `record` options.
    store: Arc<Store>,
    /// For the secondary checks the pipeline cannot make (CREATE, READ, UPDATE/PATCH of upserts).
    permission: Arc<dyn Permission>,
    /// The per-record queues.
    transitions: Transitions,
}

impl RecordHandler {
    /// `subscriptions` is the RECORD registry (state registry topic 12); `listen` receives
    /// the record listen actions and connection opens/closes (`None`: listen actions are
    /// logged and ignored like unknown ones).
    pub fn new(
        store: Arc<Store>,
        permission: Arc<dyn Permission>,
        subscriptions: Arc<SubscriptionRegistry>,
        listen: Option<Arc<dyn TopicHandler>>,
    ) -> Self {
        let records = Records {
            subscriptions,
            store,
            permission,
            transitions: Transitions::default(),
        };
        RecordHandler {
            records: Arc::new(records),
            listen,
        }
    }

    fn unknown_action(connection: &ConnectionHandle, message: &Message) {
        tracing::warn!(
            event = "UNKNOWN_ACTION",
            "record action {} from {}",
            message.action,
            connection.user_id()
        );
    }
}

impl TopicHandler for RecordHandler {
    fn handle(&self, connection: &ConnectionHandle, message: Message) {
        use RecordAction as A;
        let records = &self.records;
        match message.action_as() {
            Some(A::SubscribeCreateAndRead | A::SubscribeAndRead) => {
                subscribe::subscribe_and_read(records, connection, message)
            }
            Some(A::SubscribeAndHead) => {
                subscribe::subscribe_and_head(records, connection, message)
            }
            Some(A::Subscribe) => records.subscriptions.subscribe_bulk(connection, &message),
            Some(A::Unsubscribe) => records.subscriptions.unsubscribe_bulk(connection, &message),
            Some(A::Read) => read::read(records, connection, message),
            Some(A::Head) => read::head(records, connection, message),
            Some(
                action @ (A::Update
                | A::Patch
                | A::Erase
                | A::CreateAndUpdate
                | A::CreateAndPatch
                | A::PatchMulti),
            ) => write::receive(records, connection, action, message),
            Some(A::Delete) => delete::receive(records, connection, message),
            Some(A::Notify) => notify::receive(records, connection, message),
            Some(A::Listen | A::Unlisten | A::ListenAccept | A::ListenReject) => match &self.listen
            {
                Some(listen) => listen.handle(connection, message),
                None => Self::unknown_action(connection, &message),
            },
            _ => Self::unknown_action(connection, &message),
        }
    }

    fn client_connected(&self, connection: &ConnectionHandle) {
        if let Some(listen) = &self.listen {
            listen.client_connected(connection);
        }
    }

    fn client_disconnected(&self, connection: &ConnectionHandle) {
        self.records.subscriptions.remove_connection(connection);
        if let Some(listen) = &self.listen {
            listen.client_disconnected(connection);
        }
    }
}

impl Records {
    /// Queues `op` on `name`'s queue, starting its worker if the queue was idle.
    fn enqueue(self: &Arc<Self>, name: &str, op: Op) {
        if let Some(op) = self.transitions.push(name, op) {
            execute(transition::drive(self.clone(), name.to_owned(), op));
        }
    }

    /// A secondary permission check; denials are answered as denials of `request`.
    async fn allowed(
        &self,
        connection: &ConnectionHandle,
        request: &Message,
        action: RecordAction,
        name: &str,
    ) -> bool {
        check_permission(
            self.permission.as_ref(),
            connection,
            request,
            action as i32,
            name,
        )
        .await
    }

    /// `name` is gone: tell its subscribers (except `sender`) and drop their subscriptions
    /// (§5.8 step 3, §5.10 step 3).
    fn deleted(&self, name: &str, sender: Option<&ConnectionHandle>) {
        let deleted = Message::new(Topic::Record, RecordAction::Deleted).with_name(name);
        self.subscriptions
            .send_to_subscribers(name, &deleted, sender);
        self.subscriptions.remove_name(name);
    }
}

/// The `name` of a single-name request; without one the request is refused with
/// INVALID_MESSAGE_DATA (the echo of the request).
fn name_of(connection: &ConnectionHandle, message: &Message) -> Option<String> {
    if message.name.is_none() {
        connection.send(&echo(
            message,
            RecordAction::InvalidMessageData,
            message.action,
        ));
    }
    message.name.clone()
}

/// `request` echoed with `action` replaced and `originalAction` set (INVALID_VERSION,
/// INVALID_MESSAGE_DATA).
fn echo(request: &Message, action: RecordAction, original_action: impl Into<i32>) -> Message {
    Message {
        action: action as i32,
        original_action: Some(original_action.into()),
        ..request.clone()
    }
}

/// The reply to a failed lookup (§5.2): `{action: <error>, originalAction, name, isError}`.
fn lookup_failed(name: &str, original_action: impl Into<i32>, error: &LookupError) -> Message {
    tracing::warn!(event = error.event(), "record {name}: {error}");
    Message::new(Topic::Record, error.action())
        .with_original_action(original_action)
        .with_name(name)
        .with_error()
}

/// Runs `future` on the caller's task until it first has to wait, then hands it to tokio.
///
/// The services answer synchronously when they can (`Answer::Ready`: memory cache, open
/// permissions), so the common path finishes right here, without a task, and a connection's
/// requests take effect in arrival order. Anything that does wait (I/O, timers) continues on
/// its own task, so the connection task is never blocked.
fn execute(future: impl Future<Output = ()> + Send + 'static) {
    let mut future = Box::pin(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    if future.as_mut().poll(&mut context).is_pending() {
        // The first poll left a no-op waker behind; tokio polls again at once with its own.
        tokio::spawn(future);
    }
}
