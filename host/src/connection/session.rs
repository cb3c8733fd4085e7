//! The connection state machine every stateful transport runs (protocol.md §1.6, §1.8):
//! awaiting challenge → awaiting auth → authenticated.

use std::sync::Arc;

use bytes::Bytes;

use super::{ConnectionHandle, User};
use crate::{
    protocol::{self, AuthAction, ConnectionAction, Message, Topic},
    server::Server,
};

/// What the transport does after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Flush what is queued and close.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingChallenge,
    AwaitingAuth,
    Authenticated,
}

/// One connection's protocol state.
pub struct Session {
    /// The server whose handlers process the messages.
    server: Arc<Server>,
    /// The connection the session speaks on.
    connection: ConnectionHandle,
    /// Where in the login sequence the connection is.
    state: State,
    /// Failed logins so far.
    auth_attempts: u32,
    /// Failed logins allowed before TOO_MANY_AUTH_ATTEMPTS.
    max_auth_attempts: u32,
    /// `{remoteAddress, headers, referer}`, handed to authentication; dropped after login so
    /// idle connections do not keep their HTTP headers.
    handshake: Option<Box<serde_json::Value>>,
}

impl Session {
    pub fn new(
        server: Arc<Server>,
        connection: ConnectionHandle,
        max_auth_attempts: u32,
        handshake: Box<serde_json::Value>,
    ) -> Self {
        Session {
            server,
            connection,
            state: State::AwaitingChallenge,
            auth_attempts: 0,
            max_auth_attempts,
            handshake: Some(handshake),
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.state == State::Authenticated
    }

    /// Handles one frame from the client.
    pub async fn receive(&mut self, frame: Bytes) -> Flow {
        let message = match protocol::decode_from_client(frame) {
            Ok(message) => Some(message),
            Err(error) => {
                tracing::warn!(
                    event = "MESSAGE_PARSE_ERROR",
                    connection = self.connection.id,
                    "undecodable frame: {error}"
                );
                None
            }
        };
        match self.state {
            State::AwaitingChallenge => self.awaiting_challenge(message),
            State::AwaitingAuth => self.awaiting_auth(message).await,
            State::Authenticated => {
                match message {
                    Some(message) => self.server.process(&self.connection, message).await,
                    None => self.connection.send(&Message::unknown_topic()),
                }
                Flow::Continue
            }
        }
    }

    fn awaiting_challenge(&mut self, message: Option<Message>) -> Flow {
        match message {
            Some(message) if message.topic == Topic::Connection => {
                if message.action_as() == Some(ConnectionAction::Challenge) {
                    self.server.note_client_version(
                        message.sdk_type.as_deref(),
                        message.sdk_version.as_deref(),
                    );
                    self.connection
                        .send(&Message::new(Topic::Connection, ConnectionAction::Accept));
                    self.state = State::AwaitingAuth;
                }
                // PING and other CONNECTION actions before the challenge are ignored.
            }
            _ => self.connection.send(&Message::new(
                Topic::Connection,
                ConnectionAction::InvalidMessage,
            )),
        }
        Flow::Continue
    }

    async fn awaiting_auth(&mut self, message: Option<Message>) -> Flow {
        let message = match message {
            Some(message) if message.topic == Topic::Auth => message,
            Some(message)
                if message.topic == Topic::Connection
                    && message.action_as() == Some(ConnectionAction::Ping) =>
            {
                return Flow::Continue;
            }
            _ => {
                self.connection
                    .send(&Message::new(Topic::Auth, AuthAction::InvalidMessage));
                return Flow::Continue;
            }
        };
        // The login parameters must be a JSON object (an array is accepted, as the reference
        // does); anything else, including text that is not JSON, is refused without crashing.
        let auth_data = match (message.action_as(), message.parse_data()) {
            (Some(AuthAction::Request), Ok(Some(data))) if data.is_object() || data.is_array() => {
                data
            }
            _ => {
                self.connection
                    .send(&Message::new(Topic::Auth, AuthAction::InvalidMessageData));
                return Flow::Close;
            }
        };
        let handshake = self
            .handshake
            .as_deref()
            .unwrap_or(&serde_json::Value::Null);
        let verdict = self.server.authenticate(handshake, &auth_data).await;
        let valid = verdict.as_ref().is_some_and(|v| v.is_valid);
        self.server.services.monitoring.on_login(valid, "websocket");
        match verdict {
            Some(verdict) if verdict.is_valid => {
                let mut reply = Message::new(Topic::Auth, AuthAction::AuthSuccessful);
                if let Some(client_data) = &verdict.client_data {
                    reply = reply.with_json(client_data);
                }
                self.connection.set_user(User::from(verdict));
                self.connection.send(&reply);
                self.state = State::Authenticated;
                self.handshake = None;
                self.server.on_authenticated(&self.connection);
                Flow::Continue
            }
            verdict => {
                let mut reply = Message::new(Topic::Auth, AuthAction::AuthUnsuccessful);
                if let Some(client_data) = verdict.and_then(|v| v.client_data) {
                    reply = reply.with_json(&client_data);
                }
                self.connection.send(&reply);
                self.auth_attempts += 1;
                if self.auth_attempts >= self.max_auth_attempts {
                    self.connection
                        .send(&Message::new(Topic::Auth, AuthAction::TooManyAuthAttempts));
                    return Flow::Close;
                }
                Flow::Continue
            }
        }
    }

    /// The connection is gone: drop its subscriptions, presence and provider roles.
    pub fn closed(self) {
        self.connection.mark_closed();
        if self.state == State::Authenticated {
            self.server.on_connection_closed(&self.connection);
        }
    }
}
