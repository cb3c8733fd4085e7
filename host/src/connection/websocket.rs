//! The `ws-binary` transport: one WebSocket per client, one binary frame per message
//! (protocol.md §1.2, §1.7, §1.9, §1.10).
//!
//! One task per connection reads frames into the [`Session`] and writes the connection's
//! queued frames, feeding every frame that is ready before one flush (so a burst of broadcasts
//! costs one write). Idle connections hold small buffers: the read buffer starts at a few KB.

use std::{sync::Arc, time::Duration};

use futures_util::{SinkExt, StreamExt};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    time::{Instant, MissedTickBehavior},
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Message as WsMessage,
        protocol::{CloseFrame, WebSocketConfig, frame::coding::CloseCode},
    },
};

use super::{Connection, Flow, Outbound, Session};
use crate::{
    config::WebSocketEndpointOptions,
    protocol::{ConnectionAction, Message, Topic},
    server::Server,
};

/// Frames written per flush at most, so one busy connection cannot starve its reader.
const MAX_BATCH: usize = 256;

/// The WebSocket settings for an endpoint's options.
pub fn websocket_config(options: &WebSocketEndpointOptions) -> WebSocketConfig {
    let max = usize::try_from(options.max_message_size).unwrap_or(usize::MAX);
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// Runs one client connection until it closes.
pub async fn serve<S>(
    server: Arc<Server>,
    socket: WebSocketStream<S>,
    options: Arc<WebSocketEndpointOptions>,
    handshake: serde_json::Value,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (connection, mut outbound) = Connection::new(server.next_connection_id(), "ws-binary");
    let _registered = server.register_connection(&connection);
    let mut session = Session::new(
        server.clone(),
        connection.clone(),
        options.max_auth_attempts,
        handshake,
    );
    let (mut sink, mut stream) = socket.split();
    let mut shutdown = server.shutdown_signal();

    let auth_deadline = options
        .unauthenticated_client_timeout
        .map(|timeout| Instant::now() + timeout);
    let heartbeat = options.heartbeat_interval.max(Duration::from_millis(100));
    let mut heartbeat_check = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
    heartbeat_check.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_received = Instant::now();
    // Once a close is queued, timers and shutdown must not queue more.
    let mut closing = false;

    loop {
        tokio::select! {
            incoming = stream.next() => match incoming {
                Some(Ok(WsMessage::Binary(frame))) => {
                    last_received = Instant::now();
                    // After a close is queued, nothing more from the client is processed.
                    if !closing && session.receive(frame).await == Flow::Close {
                        closing = true;
                        connection.close();
                    }
                }
                Some(Ok(WsMessage::Text(_))) => {
                    tracing::warn!(event = "INVALID_MESSAGE", connection = connection.id, "text frame on the binary endpoint; closing");
                    closing = true;
                    connection.close();
                }
                Some(Ok(WsMessage::Close(_))) | None => break,
                Some(Ok(_)) => last_received = Instant::now(),
                Some(Err(tokio_tungstenite::tungstenite::Error::Capacity(error))) => {
                    tracing::warn!(event = "MAXIMUM_MESSAGE_SIZE_EXCEEDED", connection = connection.id, "{error}; closing");
                    let frame = CloseFrame { code: CloseCode::Size, reason: "message too big".into() };
                    let _ = sink.send(WsMessage::Close(Some(frame))).await;
                    break;
                }
                Some(Err(error)) => {
                    tracing::debug!(connection = connection.id, "websocket error: {error}");
                    break;
                }
            },
            queued = outbound.recv() => {
                let mut next = queued;
                let mut done = false;
                let mut fed = 0;
                while let Some(item) = next {
                    match item {
                        Outbound::Frame(frame) => {
                            if sink.feed(WsMessage::Binary(frame)).await.is_err() {
                                done = true;
                                break;
                            }
                        }
                        Outbound::Close => {
                            done = true;
                            break;
                        }
                    }
                    fed += 1;
                    next = if fed < MAX_BATCH { outbound.try_recv().ok() } else { None };
                }
                if sink.flush().await.is_err() || done {
                    let _ = sink.send(WsMessage::Close(None)).await;
                    break;
                }
            },
            _ = sleep_until(auth_deadline), if !closing && !session.is_authenticated() => {
                connection.send(&Message::new(Topic::Connection, ConnectionAction::AuthenticationTimeout));
                closing = true;
                connection.close();
            },
            _ = heartbeat_check.tick() => {
                if last_received.elapsed() > heartbeat * 2 {
                    tracing::error!(event = "HEARTBEAT_MISSING", connection = connection.id, "Heartbeat missing on websocket, terminating connection");
                    break;
                }
            },
            _ = shutdown.recv(), if !closing => {
                closing = true;
                connection.close();
            },
        }
    }
    session.closed();
}

/// Sleeps until the deadline, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
