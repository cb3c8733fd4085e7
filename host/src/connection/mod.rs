//! Client connections, whatever carries them.
//!
//! A [`Connection`] is the handle the handlers and registries keep: an id, who logged in, and
//! a queue of encoded frames its transport writes out. A [`Session`] runs the deepstream
//! connection state machine (challenge → login → messages, protocol.md §1.6) on decoded frames
//! and is shared by every transport; [`websocket`] is the `ws-binary` transport.

pub mod frame;
mod session;
pub mod websocket;

use std::{
    collections::VecDeque,
    future::poll_fn,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use parking_lot::Mutex;

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
    /// Frames for the transport to write, in order. An empty `VecDeque` holds no memory, so
    /// idle connections pay nothing for their queue.
    outbound: Mutex<VecDeque<Outbound>>,
    /// Wakes the transport when the queue stops being empty. Polled directly, so the
    /// transport's task keeps no wait-list entry for it.
    waker: AtomicWaker,
    /// Set with a wake-up, cleared when the transport takes it.
    woken: AtomicBool,
    /// Set once, when the login succeeds.
    user: OnceLock<User>,
    /// Set when the connection is gone; later sends are dropped.
    closed: AtomicBool,
}

impl Connection {
    /// A new connection and the receiving end its transport drains.
    pub fn new(id: u64, endpoint_type: &'static str) -> (ConnectionHandle, Outbox) {
        let connection = Arc::new(Connection {
            id,
            endpoint_type,
            outbound: Mutex::new(VecDeque::new()),
            waker: AtomicWaker::new(),
            woken: AtomicBool::new(false),
            user: OnceLock::new(),
            closed: AtomicBool::new(false),
        });
        (connection.clone(), Outbox(connection))
    }

    /// Queues `item` unless the connection is closed: checked under the lock `mark_closed`
    /// empties the queue with, so nothing is left in a closed connection's queue.
    fn push(&self, item: Outbound) {
        let was_empty = {
            let mut queue = self.outbound.lock();
            if self.is_closed() {
                return;
            }
            let was_empty = queue.is_empty();
            queue.push_back(item);
            was_empty
        };
        // The transport drains the whole queue once woken, so only the first item wakes it.
        if was_empty {
            self.wake();
        }
    }

    /// Queues an already encoded frame (the broadcast path encodes once for every recipient).
    pub fn send_frame(&self, frame: Bytes) {
        self.push(Outbound::Frame(frame));
    }

    /// Encodes and queues one message (not even encoded for a closed connection).
    pub fn send(&self, message: &Message) {
        if !self.is_closed() {
            self.push(Outbound::Frame(protocol::encode(message)));
        }
    }

    /// Flushes what is queued, then closes.
    pub fn close(&self) {
        self.push(Outbound::Close);
    }

    /// Takes up to `max` queued items into `into`; returns how many.
    pub(crate) fn take_queued(&self, into: &mut Vec<Outbound>, max: usize) -> usize {
        let mut queue = self.outbound.lock();
        let count = queue.len().min(max);
        into.extend(queue.drain(..count));
        if queue.is_empty() {
            // Idle connections keep no queue memory (a few replies would otherwise leave a
            // small block behind in every connection).
            *queue = VecDeque::new();
        }
        count
    }

    /// Whether anything is queued.
    pub(crate) fn has_queued(&self) -> bool {
        !self.outbound.lock().is_empty()
    }

    /// Makes the next [`poll_queued`](Self::poll_queued) ready.
    pub(crate) fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Ready once something was queued since the last ready poll (maybe spuriously). One
    /// task polls it: the transport, or the HTTP API's reader.
    pub(crate) fn poll_queued(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.woken.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        if self.woken.swap(false, Ordering::AcqRel) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Called by the transport once the connection is gone.
    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::Relaxed);
        // Whoever still holds the handle must not keep the undelivered frames alive.
        *self.outbound.lock() = VecDeque::new();
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

/// The receiving end of a connection's queue, for transports that are not a socket (the HTTP
/// API's virtual connections, tests).
#[derive(Debug)]
pub struct Outbox(ConnectionHandle);

impl Outbox {
    /// The next queued item, if any.
    pub fn try_recv(&self) -> Option<Outbound> {
        self.0.outbound.lock().pop_front()
    }

    /// Waits for the next queued item.
    pub async fn recv(&self) -> Outbound {
        loop {
            if let Some(item) = self.try_recv() {
                return item;
            }
            poll_fn(|cx| self.0.poll_queued(cx)).await;
        }
    }
}
