//! The one in-memory message type for every topic, so the core (permissions, subscription
//! registries, buffering) can treat all topics alike.

use bytes::Bytes;

use super::{ParserAction, Topic};

/// A deepstream message of any topic.
///
/// Presence is significant on the wire (§1.4): every `Some` scalar is written, even `Some(0)` or
/// `Some("")`, and `None` is never written. Empty lists are never written. Fields the topic's
/// message does not have are dropped by the encoder and never set by the decoder.
///
/// Build messages with [`Message::new`] and the `with_*` helpers, or with struct-update syntax:
/// `Message { name: Some(n), ..Message::new(Topic::Record, RecordAction::Read) }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// Which per-topic message this is; selects the field numbers on the wire.
    pub topic: Topic,
    /// Raw action number, kept raw so unknown actions reach handlers, which ignore them (§3.3).
    pub action: i32,
    /// The subject: event, record, RPC or presence user name, or a listen pattern.
    pub name: Option<String>,
    /// Subjects of bulk messages; on the wire an empty list and no list are the same.
    pub names: Vec<String>,
    /// Request/response matching id, client-chosen and only unique per connection (§11.6).
    pub correlation_id: Option<String>,
    /// Raw JSON text, forwarded byte-for-byte so payloads are never re-serialised (§1.5).
    pub data: Option<Bytes>,
    /// Marks an acknowledgement; written only when true since receivers read absent as false.
    pub is_ack: bool,
    /// Marks replies the client must route as errors; written only when true.
    pub is_error: bool,
    /// Records: write ack wanted/echoed; an `Option` because broadcasts write `false` (§5.5).
    pub is_write_ack: Option<bool>,
    /// On error and denial replies: the client action that caused them (§11.8).
    pub original_action: Option<i32>,
    /// Listening: the concrete event/record name a pattern matched.
    pub subscription: Option<String>,
    /// Records: the path a PATCH/ERASE applies to.
    pub path: Option<String>,
    /// Records: version; `Some(0)` must still be written, -1 means "missing" or "force" (§11.9).
    pub version: Option<i32>,
    /// Records: `map<string,int32>` of HEAD_RESPONSE_BULK, one entry per key, written in order.
    pub versions: Vec<(String, i32)>,
    /// CONNECTION CHALLENGE/REDIRECT: the URL the client used / should use.
    pub url: Option<String>,
    /// CONNECTION CHALLENGE: the client's protocol version (`"0.1a"`).
    pub protocol_version: Option<String>,
    /// CONNECTION CHALLENGE: the client SDK's version.
    pub sdk_version: Option<String>,
    /// CONNECTION CHALLENGE: the client SDK's type (`"javascript"`).
    pub sdk_type: Option<String>,
    /// RPC REQUEST to a provider: the requester's user name, if the server is set to provide it.
    pub requestor_name: Option<String>,
    /// RPC REQUEST to a provider: the requester's client data as JSON text.
    pub requestor_data: Option<Bytes>,
    /// CLUSTER STATUS: the node's leader-election score (int32 in cluster.proto).
    pub leader_score: Option<i32>,
    /// CLUSTER STATUS: the node's role.
    pub role: Option<String>,
    /// LOCK RESPONSE: whether the leader granted the lock.
    pub locked: Option<bool>,
    /// STATE_REGISTRY CHECKSUM: sum of the hashes of the names the sender holds.
    pub checksum: Option<i32>,
    /// STATE_REGISTRY FULL_STATE: every name the sender holds.
    pub full_state: Vec<String>,
    /// STATE_REGISTRY: the node the message is about.
    pub server_name: Option<String>,
    /// STATE_REGISTRY: which registry the message belongs to (a `StateRegistryTopic` number).
    pub registry_topic: Option<i32>,
}

impl Message {
    /// A message with only `topic` and `action` set.
    pub fn new(topic: Topic, action: impl Into<i32>) -> Self {
        Message {
            topic,
            action: action.into(),
            ..Default::default()
        }
    }

    /// PARSER UNKNOWN_TOPIC `{}`: the reply to unhandled topics and undecodable frames (§3.3).
    pub fn unknown_topic() -> Self {
        Message::new(Topic::Parser, ParserAction::UnknownTopic)
    }

    /// A bulk-style ack: same topic and action, the request's `correlationId`, `isAck` (§11.5).
    /// Acks that echo the whole request are `request.clone().with_ack()`.
    pub fn ack(&self) -> Self {
        Message {
            correlation_id: self.correlation_id.clone(),
            is_ack: true,
            ..Message::new(self.topic, self.action)
        }
    }

    /// The action as `A`, or `None` for numbers `A` does not know.
    pub fn action_as<A: TryFrom<i32>>(&self) -> Option<A> {
        A::try_from(self.action).ok()
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn with_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.names = names.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_correlation_id(mut self, correlation_id: impl Into<String>) -> Self {
        self.correlation_id = Some(correlation_id.into());
        self
    }

    /// Sets `data` to raw JSON text; the caller vouches that it is valid JSON (§1.5).
    pub fn with_data(mut self, json_text: impl Into<Bytes>) -> Self {
        self.data = Some(json_text.into());
        self
    }

    /// Sets `data` to the JSON text of `value` (`null` becomes `"null"`, as in the reference).
    pub fn with_json(mut self, value: &serde_json::Value) -> Self {
        self.data = Some(Bytes::from(value.to_string()));
        self
    }

    pub fn with_ack(mut self) -> Self {
        self.is_ack = true;
        self
    }

    pub fn with_error(mut self) -> Self {
        self.is_error = true;
        self
    }

    pub fn with_write_ack(mut self, is_write_ack: bool) -> Self {
        self.is_write_ack = Some(is_write_ack);
        self
    }

    pub fn with_original_action(mut self, action: impl Into<i32>) -> Self {
        self.original_action = Some(action.into());
        self
    }

    pub fn with_subscription(mut self, subscription: impl Into<String>) -> Self {
        self.subscription = Some(subscription.into());
        self
    }

    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    pub fn with_version(mut self, version: i32) -> Self {
        self.version = Some(version);
        self
    }

    /// Parses `data` as JSON; `Ok(None)` when absent. Parsing is lazy because most payloads are
    /// only forwarded (§1.5).
    pub fn parse_data(&self) -> Result<Option<serde_json::Value>, serde_json::Error> {
        self.data.as_deref().map(serde_json::from_slice).transpose()
    }
}
