//! Writes (protocol.md §5.5–§5.7, §5.9): UPDATE, PATCH, ERASE, PATCH_MULTI and the upserts
//! CREATEANDUPDATE / CREATEANDPATCH.
//!
//! On arrival a write is normalised (a `path` makes it a PATCH, else an UPDATE; PATCH_MULTI
//! stays) and everything that does not depend on the record is validated, so bad input is
//! refused before it is queued. In the queue it is checked against the current version:
//!
//! * version −1 ("force", `setData`) means current + 1;
//! * current + 1 is applied, stored, broadcast to the other subscribers;
//! * anything higher is INVALID_VERSION, anything else VERSION_EXISTS with the current version
//!   and data (the client merges from it).
//!
//! A refused write consumes no version and never stops the queue.
//!
//! Upserts are checked for `create` and for `write` (as UPDATE/PATCH), whether or not the
//! record exists yet (server.md §3.2: setData must be allowed to create). Hot-path upserts (§5.7) skip the version check: they are stored and
//! broadcast as version 0, and their write ack carries `isWriteAck` so the client can match it.

use std::sync::Arc;

use serde::de::IgnoredAny;
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::{
    Records, echo, execute,
    json_path::Path,
    name_of,
    request::{Written, payload},
    transition::{Current, Op, State},
};
use crate::{
    connection::ConnectionHandle,
    protocol::{Message, RecordAction, Topic},
    services::{Answer, ServiceError},
};

/// A validated write, queued on its record.
pub struct Write {
    /// The writer: gets errors, conflicts and the write ack, but not the broadcast.
    connection: ConnectionHandle,
    /// The message as the client sent it: echoed in errors, its action named in denials.
    request: Message,
    /// UPDATE, PATCH or PATCH_MULTI: the normalised action, broadcast and named as
    /// `originalAction` in echoes and conflicts.
    action: RecordAction,
    /// The version the client wrote; −1 forces the next version.
    version: i32,
    /// What the write does to the data.
    change: Change,
    /// CREATEANDUPDATE / CREATEANDPATCH: a missing record starts at version 0 with `{}`; checked
    /// for `create` and, as UPDATE/PATCH, for `write`.
    upsert: bool,
}

/// What a write does to the record's data.
enum Change {
    /// UPDATE: new data, a JSON object or array (text as received).
    Replace(Arc<str>),
    /// Hot-path CREATEANDUPDATE (§5.7): new data stored as version 0, no version check.
    Overwrite(Arc<str>),
    /// PATCH, ERASE (one change) and PATCH_MULTI (several, one version): set each path to
    /// its value, or erase it when there is none, in order.
    Patch(Vec<(Path, Option<Value>)>),
}

/// Validates a write and queues it, or answers the client with the error.
pub fn receive(
    records: &Arc<Records>,
    connection: &ConnectionHandle,
    client_action: RecordAction,
    request: Message,
) {
    let Some(name) = name_of(connection, &request) else {
        return;
    };
    match Write::new(records, connection, client_action, request, &name) {
        Ok(write) => records.enqueue(&name, Op::Write(write)),
        Err(reply) => connection.send(&reply),
    }
}

impl Write {
    /// Normalises and validates `request`; `Err` is the reply.
    fn new(
        records: &Records,
        connection: &ConnectionHandle,
        client_action: RecordAction,
        request: Message,
        name: &str,
    ) -> Result<Write, Box<Message>> {
        let upsert = matches!(
            client_action,
            RecordAction::CreateAndUpdate | RecordAction::CreateAndPatch
        );
        let action = match client_action {
            RecordAction::PatchMulti => RecordAction::PatchMulti,
            _ if request.path.is_some() => RecordAction::Patch,
            _ => RecordAction::Update,
        };
        let hot_path = upsert && records.store.is_hot_path(name);
        if hot_path && action == RecordAction::Patch {
            let mut reply = Message::new(Topic::Record, RecordAction::InvalidPatchOnHotpath)
                .with_original_action(client_action)
                .with_name(name);
            reply.correlation_id = request.correlation_id.clone();
            return Err(Box::new(reply));
        }
        let invalid = || Box::new(echo(&request, RecordAction::InvalidMessageData, action));
        let version = request.version.ok_or_else(invalid)?;
        // Text that is not JSON is not echoed back: the client would throw parsing it.
        let unparsable = || {
            Box::new(Message {
                data: None,
                ..*invalid()
            })
        };
        let change = match action {
            RecordAction::Patch => {
                let path = request
                    .path
                    .as_deref()
                    .and_then(|path| Path::parse(path).ok())
                    .ok_or_else(invalid)?;
                let value = request
                    .data
                    .as_deref()
                    .map(serde_json::from_slice)
                    .transpose()
                    .map_err(|_| unparsable())?;
                Change::Patch(vec![(path, value)])
            }
            RecordAction::PatchMulti => {
                let operations = request
                    .parse_data()
                    .map_err(|_| unparsable())?
                    .ok_or_else(invalid)?;
                Change::Patch(operations_of(operations).ok_or_else(invalid)?)
            }
            _ => {
                let data = request.data.as_deref().ok_or_else(invalid)?;
                let text = std::str::from_utf8(data).map_err(|_| unparsable())?;
                serde_json::from_str::<IgnoredAny>(text).map_err(|_| unparsable())?;
                if !text.trim_start().starts_with(['{', '[']) {
                    return Err(invalid());
                }
                if hot_path {
                    Change::Overwrite(Arc::from(text))
                } else {
                    Change::Replace(Arc::from(text))
                }
            }
        };
        Ok(Write {
            connection: connection.clone(),
            request,
            action,
            version,
            change,
            upsert,
        })
    }

    /// Applies the write to the record (see the module doc).
    pub async fn run(self, records: &Records, name: &str, state: &mut State) {
        if let Change::Overwrite(data) = &self.change {
            if self.allowed(records, RecordAction::Create, name).await
                && self.allowed(records, self.action, name).await
            {
                self.commit(records, name, state, 0, data.clone(), None)
                    .await;
            }
            return;
        }
        if let Err(error) = state.load(records, name).await {
            tracing::error!(
                event = "RECORD_UPDATE_ERROR",
                "cannot load {name} to write it: {error}"
            );
            return self.connection.send(&self.update_error(name));
        }
        if !self.upsert && matches!(state, State::Missing) {
            tracing::warn!(
                event = "RECORD_UPDATE_ERROR",
                "{name} does not exist; use an upsert to create it"
            );
            return self.connection.send(&self.update_error(name));
        }
        // Upserts need `create` and `write`, whether or not the record exists (server.md §3.2).
        if self.upsert
            && !(self.allowed(records, RecordAction::Create, name).await
                && self.allowed(records, self.action, name).await)
        {
            return;
        }
        let current = match state {
            State::Present(current) => Some(current),
            _ => None,
        };
        let version = current.as_ref().map_or(0, |current| current.version);
        let Some(next) = version.checked_add(1) else {
            return self.connection.send(&self.update_error(name));
        };
        let wanted = if self.version == -1 {
            next
        } else {
            self.version
        };
        if wanted > next {
            let reply = Message {
                version: Some(version),
                ..echo(&self.request, RecordAction::InvalidVersion, self.action)
            };
            return self.connection.send(&reply);
        }
        if wanted != next {
            let data = current.map_or_else(|| Arc::from("{}"), |current| current.data.clone());
            return self
                .connection
                .send(&self.version_exists(name, version, &data));
        }
        let (data, parsed) = match self.changed(name, current) {
            Ok(changed) => changed,
            Err(reply) => return self.connection.send(&reply),
        };
        self.commit(records, name, state, next, data, parsed).await;
    }

    /// The new data (and its parsed form, when it was built as a value); `Err` is the reply.
    fn changed(
        &self,
        name: &str,
        current: Option<&mut Current>,
    ) -> Result<(Arc<str>, Option<Value>), Box<Message>> {
        let changes = match &self.change {
            Change::Replace(data) | Change::Overwrite(data) => return Ok((data.clone(), None)),
            Change::Patch(changes) => changes,
        };
        let mut data = match current {
            Some(current) => current.take_value().map_err(|error| {
                tracing::error!(
                    event = "RECORD_UPDATE_ERROR",
                    "stored data of {name} is not JSON: {error}"
                );
                Box::new(self.update_error(name))
            })?,
            None => Value::Object(Map::new()),
        };
        for (path, value) in changes {
            path.apply(&mut data, value.clone()).map_err(|_| {
                Box::new(echo(
                    &self.request,
                    RecordAction::InvalidMessageData,
                    self.action,
                ))
            })?;
        }
        Ok((Arc::from(data.to_string()), Some(data)))
    }

    /// Makes `version`/`data` current, writes it to storage and cache, broadcasts it once the
    /// cache has it, and answers the writer once both writes are done (module doc of
    /// [`super`]).
    async fn commit(
        &self,
        records: &Records,
        name: &str,
        state: &mut State,
        version: i32,
        data: Arc<str>,
        parsed: Option<Value>,
    ) {
        *state = State::Present(Current::new(version, data.clone(), parsed));
        let Written { cache, storage } = records.store.write(name, version, &data);
        let stored = match storage {
            Answer::Ready(stored) => Stored::Now(stored),
            Answer::Pending(storing) => {
                let (cached_sender, cached) = oneshot::channel();
                let outcome = self.outcome(name);
                execute(async move {
                    let stored = storing.await;
                    let cached = cached
                        .await
                        .unwrap_or_else(|_| Err("the write was abandoned".into()));
                    outcome.finish(cached, stored);
                });
                Stored::Later(cached_sender)
            }
        };
        let cached = cache.resolve().await;
        let broadcast = cached.is_ok();
        if !broadcast {
            // The cache may or may not hold the write: reload before the next operation.
            *state = State::Unknown;
        }
        match stored {
            Stored::Now(stored) => self.outcome(name).finish(cached, stored),
            Stored::Later(cached_sender) => {
                let _ = cached_sender.send(cached);
            }
        }
        if broadcast {
            let update = Message {
                action: self.action as i32,
                name: Some(name.to_owned()),
                version: Some(version),
                path: self.request.path.clone(),
                data: self.request.data.clone(),
                is_write_ack: Some(false),
                ..Message::new(Topic::Record, self.action)
            };
            records
                .subscriptions
                .send_to_subscribers(name, &update, Some(&self.connection));
        }
    }

    /// A secondary permission check of this write as `action`.
    async fn allowed(&self, records: &Records, action: RecordAction, name: &str) -> bool {
        records
            .allowed(&self.connection, &self.request, action, name)
            .await
    }

    /// VERSION_EXISTS with the record's current version and data (§5.5); no `isError`.
    fn version_exists(&self, name: &str, version: i32, data: &Arc<str>) -> Message {
        let mut reply = Message::new(Topic::Record, RecordAction::VersionExists)
            .with_original_action(self.action)
            .with_name(name)
            .with_version(version)
            .with_data(payload(data));
        self.outcome(name).address(&mut reply);
        reply
    }

    /// RECORD_UPDATE_ERROR `{name, isError, isWriteAck?, correlationId?}`.
    fn update_error(&self, name: &str) -> Message {
        self.outcome(name).failed()
    }

    fn outcome(&self, name: &str) -> Outcome {
        Outcome {
            connection: self.connection.clone(),
            name: name.to_owned(),
            correlation_id: self.request.correlation_id.clone(),
            write_ack: self.request.is_write_ack == Some(true),
        }
    }
}

/// The storage write of a commit: already answered, or answered later by a task that needs the
/// cache result to finish the write (`Outcome::finish`).
enum Stored {
    Now(Result<(), ServiceError>),
    Later(oneshot::Sender<Result<(), ServiceError>>),
}

/// Who to tell how a committed write ended, once cache and storage have answered.
struct Outcome {
    /// The writer.
    connection: ConnectionHandle,
    /// The record written.
    name: String,
    /// Matches the reply to the write on the client.
    correlation_id: Option<String>,
    /// Whether the writer wants WRITE_ACKNOWLEDGEMENT.
    write_ack: bool,
}

impl Outcome {
    /// WRITE_ACKNOWLEDGEMENT if both writes succeeded and one was asked for; RECORD_UPDATE_ERROR
    /// if either failed.
    fn finish(&self, cached: Result<(), ServiceError>, stored: Result<(), ServiceError>) {
        let failures = [("cache", cached), ("storage", stored)];
        let mut failed = false;
        for (service, result) in failures {
            if let Err(error) = result {
                tracing::error!(
                    event = "RECORD_UPDATE_ERROR",
                    "{service} write of {} failed: {error}",
                    self.name
                );
                failed = true;
            }
        }
        if failed {
            self.connection.send(&self.failed());
        } else if self.write_ack {
            let mut ack = Message::new(Topic::Record, RecordAction::WriteAcknowledgement)
                .with_name(self.name.as_str());
            self.address(&mut ack);
            self.connection.send(&ack);
        }
    }

    /// RECORD_UPDATE_ERROR `{name, isError, isWriteAck?, correlationId?}`.
    fn failed(&self) -> Message {
        let mut reply = Message::new(Topic::Record, RecordAction::RecordUpdateError)
            .with_name(self.name.as_str())
            .with_error();
        self.address(&mut reply);
        reply
    }

    /// Adds `correlationId` and, when the writer asked for a write ack, `isWriteAck: true`, so
    /// the client routes the reply to the write's callback (§5.6).
    fn address(&self, reply: &mut Message) {
        reply.correlation_id = self.correlation_id.clone();
        if self.write_ack {
            reply.is_write_ack = Some(true);
        }
    }
}

/// PATCH_MULTI operations: a non-empty array of `{"path": <valid path>, "data"?: any}`.
fn operations_of(operations: Value) -> Option<Vec<(Path, Option<Value>)>> {
    let Value::Array(operations) = operations else {
        return None;
    };
    if operations.is_empty() {
        return None;
    }
    operations
        .into_iter()
        .map(|operation| {
            let Value::Object(mut operation) = operation else {
                return None;
            };
            let path = Path::parse(operation.get("path")?.as_str()?).ok()?;
            Some((path, operation.remove("data")))
        })
        .collect()
}
