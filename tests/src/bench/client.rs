//! The client side of the binary protocol, as far as the benchmark needs it: connect (from a
//! chosen 127.0.0.x source address), log in (spec §1.6/§1.8: CHALLENGE → ACCEPT, AUTH REQUEST
//! → AUTH_SUCCESSFUL), wait for a particular reply, and classify frames cheaply.

use std::{
    fmt,
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs},
    time::Duration,
};

use bytes::Bytes;
use deepstream::protocol::{
    self, AuthAction, ConnectionAction, EventAction, Message, ParserAction, PresenceAction,
    RecordAction, RpcAction, Topic,
};
use futures_util::{SinkExt, StreamExt};
use tokio::{net::TcpSocket, net::TcpStream, time::Instant};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Message as WsMessage, protocol::WebSocketConfig},
};

/// A client WebSocket.
pub type Ws = WebSocketStream<TcpStream>;

/// Why a scenario (or one of its steps) could not produce figures.
#[derive(Debug, Clone)]
pub enum Fail {
    /// The server does not implement what the scenario needs: it answered PARSER UNKNOWN_TOPIC,
    /// or never answered a setup request.
    Unsupported(String),
    /// Anything else: refused connections, error replies, closed sockets.
    Error(String),
}

impl Fail {
    pub fn reason(&self) -> &str {
        match self {
            Fail::Unsupported(reason) | Fail::Error(reason) => reason,
        }
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// The server to drive: a `ws://` URL on a loopback address.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub url: String,
    /// CONNECTION CHALLENGE as the JS client 7.0.5 sends it, encoded once.
    challenge: Bytes,
}

impl Target {
    /// Parses `ws://HOST:PORT/PATH` (path default `/deepstream`). Only IPv4 loopback hosts are
    /// accepted: the benchmark never drives anything off this machine.
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| format!("{url}: only ws:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/deepstream"),
        };
        let addr = authority
            .to_socket_addrs()
            .map_err(|e| format!("{url}: {e}"))?
            .find(|a| a.is_ipv4())
            .ok_or_else(|| format!("{url}: host has no IPv4 address"))?;
        if !addr.ip().is_loopback() {
            return Err(format!(
                "{url}: only loopback addresses (127.0.0.0/8) may be driven"
            ));
        }
        let url = format!("ws://{authority}{path}");
        let challenge = protocol::encode(&Message {
            url: Some(url.clone()),
            protocol_version: Some("0.1a".into()),
            sdk_version: Some("7.0.5".into()),
            sdk_type: Some("javascript".into()),
            ..Message::new(Topic::Connection, ConnectionAction::Challenge)
        });
        Ok(Target {
            addr,
            url,
            challenge,
        })
    }
}

/// Client WebSocket settings: small read buffers, since up to ~10,000 sockets share a process.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(8 * 1024)
}

/// Opens a TCP connection (from `source`, if given) and performs the WebSocket handshake.
///
/// Sockets close abortively (`SO_LINGER` 0, i.e. RST on drop): the scenarios open and drop
/// hundreds of thousands of connections, and orderly closes would leave every client port in
/// TIME_WAIT for a minute and exhaust the ephemeral range.
pub async fn open(target: &Target, source: Option<Ipv4Addr>) -> Result<Ws, Fail> {
    let io = |what: &str, e: std::io::Error| Fail::Error(format!("{what}: {e}"));
    let socket = TcpSocket::new_v4().map_err(|e| io("socket", e))?;
    socket
        .set_reuseaddr(true)
        .map_err(|e| io("SO_REUSEADDR", e))?;
    if let Some(ip) = source {
        socket
            .bind(SocketAddr::V4(SocketAddrV4::new(ip, 0)))
            .map_err(|e| io(&format!("bind {ip}"), e))?;
    }
    #[allow(deprecated)]
    socket
        .set_linger(Some(Duration::ZERO))
        .map_err(|e| io("SO_LINGER", e))?;
    socket.set_nodelay(true).map_err(|e| io("TCP_NODELAY", e))?;
    let stream = socket
        .connect(target.addr)
        .await
        .map_err(|e| io(&format!("connect to {}", target.addr), e))?;
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(target.url.as_str(), stream, Some(ws_config()))
            .await
            .map_err(|e| Fail::Error(format!("WebSocket handshake with {}: {e}", target.url)))?;
    Ok(ws)
}

/// Sends CHALLENGE and AUTH REQUEST `{"username": …}` and waits for AUTH_SUCCESSFUL.
pub async fn login(
    ws: &mut Ws,
    target: &Target,
    username: &str,
    timeout: Duration,
) -> Result<(), Fail> {
    let deadline = Instant::now() + timeout;
    send(ws, target.challenge.clone()).await?;
    expect_until(ws, "CONNECTION ACCEPT", deadline, |m| {
        m.topic == Topic::Connection && m.action == ConnectionAction::Accept as i32
    })
    .await
    .map_err(login_failure)?;
    let auth = Message::new(Topic::Auth, AuthAction::Request)
        .with_data(serde_json::json!({ "username": username }).to_string());
    send(ws, protocol::encode(&auth)).await?;
    let reply = expect_until(ws, "AUTH reply", deadline, |m| m.topic == Topic::Auth)
        .await
        .map_err(login_failure)?;
    if reply.action == AuthAction::AuthSuccessful as i32 {
        Ok(())
    } else {
        Err(Fail::Error(format!("login refused: {}", describe(&reply))))
    }
}

/// A login that does not complete is an error, never "unsupported": every server logs in.
fn login_failure(fail: Fail) -> Fail {
    Fail::Error(fail.reason().to_owned())
}

/// [`open`] then [`login`], both within `timeout`.
pub async fn connect_login(
    target: &Target,
    source: Option<Ipv4Addr>,
    username: &str,
    timeout: Duration,
) -> Result<Ws, Fail> {
    let attempt = async {
        let mut ws = open(target, source).await?;
        login(&mut ws, target, username, timeout).await?;
        Ok(ws)
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(Fail::Error(format!(
                "connect and login did not complete within {timeout:?}"
            )))
        })
}

/// Sends one frame and flushes.
pub async fn send(ws: &mut Ws, frame: Bytes) -> Result<(), Fail> {
    ws.send(WsMessage::Binary(frame))
        .await
        .map_err(|e| Fail::Error(format!("send failed: {e}")))
}

/// Why no frame was received.
#[derive(Debug)]
pub enum RecvError {
    Timeout,
    Closed,
    Failed(String),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Timeout => f.write_str("timed out"),
            RecvError::Closed => f.write_str("connection closed by the server"),
            RecvError::Failed(e) => write!(f, "connection failed: {e}"),
        }
    }
}

/// The next binary frame, skipping WebSocket control frames.
pub async fn recv_until(ws: &mut Ws, deadline: Instant) -> Result<Bytes, RecvError> {
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Err(RecvError::Timeout),
            Ok(None) | Ok(Some(Ok(WsMessage::Close(_)))) => return Err(RecvError::Closed),
            Ok(Some(Err(e))) => return Err(RecvError::Failed(e.to_string())),
            Ok(Some(Ok(WsMessage::Binary(frame)))) => return Ok(frame),
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// Waits for the first message matching `wanted`; see [`expect_until`].
pub async fn expect(
    ws: &mut Ws,
    what: &str,
    timeout: Duration,
    wanted: impl FnMut(&Message) -> bool,
) -> Result<Message, Fail> {
    expect_until(ws, what, Instant::now() + timeout, wanted).await
}

/// Waits for the first message matching `wanted`, skipping unrelated non-error messages.
///
/// PARSER UNKNOWN_TOPIC and silence until `deadline` mean the server lacks the feature
/// ([`Fail::Unsupported`]); an error reply (`isError`, or an action number ≥ 100, which is where
/// every topic keeps its errors) or a closed socket is a [`Fail::Error`].
pub async fn expect_until(
    ws: &mut Ws,
    what: &str,
    deadline: Instant,
    mut wanted: impl FnMut(&Message) -> bool,
) -> Result<Message, Fail> {
    loop {
        let frame = recv_until(ws, deadline).await.map_err(|e| match e {
            RecvError::Timeout => Fail::Unsupported(format!("no {what} (timeout)")),
            other => Fail::Error(format!("waiting for {what}: {other}")),
        })?;
        let msg = protocol::decode(frame)
            .map_err(|e| Fail::Error(format!("waiting for {what}: undecodable frame: {e}")))?;
        if wanted(&msg) {
            return Ok(msg);
        }
        if is_unknown_topic(&msg) {
            return Err(Fail::Unsupported(format!(
                "{what}: server answers PARSER UNKNOWN_TOPIC"
            )));
        }
        if is_failure(&msg) {
            return Err(Fail::Error(format!(
                "waiting for {what}: got {}",
                describe(&msg)
            )));
        }
    }
}

pub fn is_unknown_topic(msg: &Message) -> bool {
    msg.topic == Topic::Parser && msg.action == ParserAction::UnknownTopic as i32
}

/// Error replies: `isError`, or an action number ≥ 100 (errors in every topic), or anything on
/// the PARSER topic.
pub fn is_failure(msg: &Message) -> bool {
    msg.is_error || msg.action >= 100 || msg.topic == Topic::Parser
}

/// `TOPIC ACTION` with names, plus the fields that explain an error reply.
pub fn describe(msg: &Message) -> String {
    let mut out = format!("{:?} {}", msg.topic, action_name(msg.topic, msg.action));
    if let Some(original) = msg.original_action {
        out += &format!(" (originalAction {})", action_name(msg.topic, original));
    }
    if msg.is_error {
        out += " isError";
    }
    if let Some(name) = &msg.name {
        out += &format!(" name={name}");
    }
    out
}

/// The name of an action number of `topic` (the number itself when unknown).
pub fn action_name(topic: Topic, action: i32) -> String {
    fn name<A: TryFrom<i32> + fmt::Debug>(action: i32) -> Option<String> {
        A::try_from(action).ok().map(|a| format!("{a:?}"))
    }
    match topic {
        Topic::Parser => name::<ParserAction>(action),
        Topic::Connection => name::<ConnectionAction>(action),
        Topic::Auth => name::<AuthAction>(action),
        Topic::Event => name::<EventAction>(action),
        Topic::Record => name::<RecordAction>(action),
        Topic::Rpc => name::<RpcAction>(action),
        Topic::Presence => name::<PresenceAction>(action),
        _ => None,
    }
    .unwrap_or_else(|| action.to_string())
}

/// `(topic, action)` of a frame, read from its first bytes without decoding it: the envelope
/// starts `varint(len) 0x10 topic 0x1a varint(len)` and the inner message with `0x08 action`
/// (both encoders write fields in ascending order). `None` if the frame is laid out otherwise.
pub fn peek(frame: &[u8]) -> Option<(i32, i32)> {
    let mut rest = frame;
    varint(&mut rest)?;
    tag(&mut rest, 0x10)?;
    let topic = varint(&mut rest)?;
    tag(&mut rest, 0x1a)?;
    varint(&mut rest)?;
    tag(&mut rest, 0x08)?;
    let action = varint(&mut rest)?;
    Some((topic as i32, action as i32))
}

/// `(topic, action)` by [`peek`], falling back to a full decode.
pub fn kind(frame: &Bytes) -> Option<(i32, i32)> {
    peek(frame).or_else(|| {
        protocol::decode(frame.clone())
            .ok()
            .map(|m| (m.topic as i32, m.action))
    })
}

fn tag(rest: &mut &[u8], expected: u8) -> Option<()> {
    let (&first, tail) = rest.split_first()?;
    (first == expected).then(|| *rest = tail)
}

fn varint(rest: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, tail) = rest.split_first()?;
        *rest = tail;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Pre-encoded CONNECTION PING (keeps idle connections inside the server's heartbeat window).
pub fn ping_frame() -> Bytes {
    protocol::encode(&Message::new(Topic::Connection, ConnectionAction::Ping))
}

/// A JSON string of `n` filler characters, for payload padding.
pub fn padding(n: usize) -> String {
    "x".repeat(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_reads_topic_and_action() {
        // Appendix A: EVENT EMIT {name:"a", data:"{\"x\":1}"}.
        let frame = [
            0x12, 0x10, 0x04, 0x1a, 0x0e, 0x08, 0x02, 0x12, 0x07, b'{', b'"', b'x', b'"', b':',
            b'1', b'}', 0x32, 0x01, b'a',
        ];
        assert_eq!(peek(&frame), Some((4, 2)));
        let ack = protocol::encode(
            &Message::new(Topic::Record, RecordAction::WriteAcknowledgement).with_name("r"),
        );
        assert_eq!(peek(&ack), Some((5, 14)));
        assert_eq!(peek(&[0x01]), None);
    }

    #[test]
    fn only_loopback_targets() {
        assert!(Target::parse("ws://127.0.0.1:6020/deepstream").is_ok());
        assert_eq!(
            Target::parse("ws://127.0.0.1:6020").unwrap().url,
            "ws://127.0.0.1:6020/deepstream"
        );
        assert!(Target::parse("ws://10.0.0.1:6020/deepstream").is_err());
        assert!(Target::parse("wss://127.0.0.1:6020/deepstream").is_err());
    }
}
