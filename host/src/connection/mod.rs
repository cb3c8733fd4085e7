//! Client connections, whatever carries them.
//!
//! A [`Connection`] is the handle the handlers and registries keep: an id, who logged in, and
//! a queue of encoded frames its transport writes out. A [`Session`] runs the deepstream
//! connection state machine (challenge → login → messages, protocol.md §1.6) on decoded frames
//! and is shared by every transport; [`websocket`] is the `ws-binary` transport.

mod session;
pub mod websocket;

use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicBool, Ordering},
};

use bytes::Bytes;
use tokio::sync::mpsc;

pub use session::{Flow, Session};

use crate::protocol::{self, Message};

/// Shared handle to a connection.
pub type ConnectionHandle = Arc<Connection>;

/// What a transport is asked to do.
#[derive(Debug)]
pub enum Outbound {
    /// Write one encoded frame.
    Frame(Bytes),
    /// Write everything queued before, then close.
    Close,
}

/// Who a connection logged in as (server.md §2.4.1).
#[derive(Debug, Clone)]
pub struct User {
    /// The user id (`"OPEN"` when authentication gave none).
    pub id: String,
    /// Sent to the client at login; offered to RPC providers as `requestorData`.
    pub client_data: Option<serde_json::Value>,
    /// Visible to permission rules as `user.data`.
    pub server_data: Option<serde_json::Value>,
}

impl From<crate::services::AuthVerdict> for User {
    /// The user a successful login makes: an empty or missing id becomes `"OPEN"`.
    fn from(verdict: crate::services::AuthVerdict) -> Self {
        User {
            id: verdict
                .id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| "OPEN".into()),
            client_data: verdict.client_data,
            server_data: verdict.server_data,
        }
    }
}

/// One client connection.
#[derive(Debug)]
pub struct Connection {
    /// Server-unique id; registries key reverse indexes by it.
    pub id: u64,
    /// Which endpoint carries it (`ws-binary`, …), for listeners and monitoring.
    pub endpoint_type: &'static str,
    /// Frames for the transport to write, in order.
    outbound: mpsc::UnboundedSender<Outbound>,
    /// Set once, when the login succeeds.
    user: OnceLock<User>,
    /// Set when the connection is gone; later sends are dropped.
    closed: AtomicBool,
}

impl Connection {
    /// A new connection and the receiving end its transport drains.
    pub fn new(
        id: u64,
        endpoint_type: &'static str,
    ) -> (ConnectionHandle, mpsc::UnboundedReceiver<Outbound>) {
        let (outbound, receiver) = mpsc::unbounded_channel();
        let connection = Connection {
            id,
            endpoint_type,
            outbound,
            user: OnceLock::new(),
            closed: AtomicBool::new(false),
        };
        (Arc::new(connection), receiver)
    }

    /// Queues an already encoded frame (the broadcast path encodes once for every recipient).
    pub fn send_frame(&self, frame: Bytes) {
        if !self.is_closed() {
            // The receiver only goes away with the transport, which marks us closed.
            let _ = self.outbound.send(Outbound::Frame(frame));
        }
    }

    /// Encodes and queues one message.
    pub fn send(&self, message: &Message) {
        self.send_frame(protocol::encode(message));
    }

    /// Flushes what is queued, then closes.
    pub fn close(&self) {
        let _ = self.outbound.send(Outbound::Close);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Called by the transport once the connection is gone.
    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// The logged-in user, once authenticated.
    pub fn user(&self) -> Option<&User> {
        self.user.get()
    }

    /// The user id, or `""` before login.
    pub fn user_id(&self) -> &str {
        self.user.get().map_or("", |user| user.id.as_str())
    }

    pub(crate) fn set_user(&self, user: User) {
        // A second login is impossible: AUTH after login is an unknown topic (protocol.md §1.6).
        let _ = self.user.set(user);
    }
}
