//! Frame codec (spec §1.2–§1.4): `frame = varint(len(M)) ++ M`, where `M` is the envelope
//! `{topic: field 2, message: field 3}` around the serialised per-topic message.
//!
//! Written with prost's low-level encoding functions rather than generated types, because the
//! JS client's field-presence rules (every set scalar written, even 0) differ from plain proto3.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::DecodeError;
use prost::encoding::{
    self, DecodeContext, WireType, decode_key, decode_varint, encode_key, encode_varint,
    encoded_len_varint, key_len, skip_field,
};

use super::schema::{self, Field};
use super::{Message, Topic};

/// Envelope (general.proto `Message`) field numbers; there is no field 1.
const ENVELOPE_TOPIC: u32 = 2;
const ENVELOPE_MESSAGE: u32 = 3;
/// `action` is field 1 of every topic message.
const ACTION: u32 = 1;
/// Field numbers inside a `versions` map entry.
const ENTRY_KEY: u32 = 1;
const ENTRY_VALUE: u32 = 2;

/// Why a frame could not be decoded. Every variant is the reference parser's PARSER_ERROR
/// pseudo-message (§1.4); what to reply is the connection handler's decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("frame does not start with a valid varint length prefix")]
    LengthPrefix,
    #[error("length prefix announces {declared} bytes but only {available} follow")]
    LengthBeyondFrame { declared: u64, available: usize },
    #[error("malformed envelope: {0}")]
    Envelope(DecodeError),
    #[error("topic {0} has no binary codec")]
    UnknownTopic(i32),
    #[error("topic {0:?} is not decodable on a client connection")]
    NotFromClient(Topic),
    #[error("malformed {topic:?} message: {cause}")]
    Body { topic: Topic, cause: DecodeError },
    #[error("{topic:?} field `{field}` is not valid UTF-8")]
    InvalidUtf8 { topic: Topic, field: &'static str },
}

/// Encodes `msg` as one complete binary frame.
pub fn encode(msg: &Message) -> Bytes {
    let mut buf = BytesMut::new();
    encode_into(msg, &mut buf);
    buf.freeze()
}

/// Appends the frame for `msg` to `buf`, reserving its exact size first so at most one
/// allocation happens.
pub fn encode_into(msg: &Message, buf: &mut BytesMut) {
    let mut body = Counter(0);
    walk(msg, &mut body);
    let body_len = body.0;
    let topic = i32::from(msg.topic) as u64;
    let envelope_len = key_len(ENVELOPE_TOPIC)
        + encoded_len_varint(topic)
        + key_len(ENVELOPE_MESSAGE)
        + encoded_len_varint(body_len as u64)
        + body_len;
    buf.reserve(encoded_len_varint(envelope_len as u64) + envelope_len);

    encode_varint(envelope_len as u64, buf);
    encode_key(ENVELOPE_TOPIC, WireType::Varint, buf);
    encode_varint(topic, buf);
    encode_key(ENVELOPE_MESSAGE, WireType::LengthDelimited, buf);
    encode_varint(body_len as u64, buf);
    walk(msg, &mut Writer(buf));
}

/// Decodes the first message of a frame from a trusted peer; any topic with a codec is accepted.
pub fn decode(frame: Bytes) -> Result<Message, ParseError> {
    decode_frame(frame, false)
}

/// Decodes the first message of a frame from a client. STATE_REGISTRY additionally fails, as the
/// client-side codec of the reference has no parser for it (§2.9).
pub fn decode_from_client(frame: Bytes) -> Result<Message, ParseError> {
    decode_frame(frame, true)
}

/// Receives the fields of a message in wire order; one walk both sizes and writes a frame.
trait Sink {
    fn varint(&mut self, tag: u32, value: u64);
    fn bytes(&mut self, tag: u32, value: &[u8]);
    /// One `map<string,int32>` entry, written as a nested message `{key: 1, value: 2}`.
    fn entry(&mut self, tag: u32, key: &str, value: i32);
}

/// Sizes a message body without writing it.
struct Counter(usize);

/// Writes a message body.
struct Writer<'a>(&'a mut BytesMut);

impl Sink for Counter {
    fn varint(&mut self, tag: u32, value: u64) {
        self.0 += key_len(tag) + encoded_len_varint(value);
    }

    fn bytes(&mut self, tag: u32, value: &[u8]) {
        self.0 += key_len(tag) + encoded_len_varint(value.len() as u64) + value.len();
    }

    fn entry(&mut self, tag: u32, key: &str, value: i32) {
        let len = entry_len(key, value);
        self.0 += key_len(tag) + encoded_len_varint(len as u64) + len;
    }
}

impl Sink for Writer<'_> {
    fn varint(&mut self, tag: u32, value: u64) {
        encode_key(tag, WireType::Varint, self.0);
        encode_varint(value, self.0);
    }

    fn bytes(&mut self, tag: u32, value: &[u8]) {
        encode_key(tag, WireType::LengthDelimited, self.0);
        encode_varint(value.len() as u64, self.0);
        self.0.put_slice(value);
    }

    fn entry(&mut self, tag: u32, key: &str, value: i32) {
        encode_key(tag, WireType::LengthDelimited, self.0);
        encode_varint(entry_len(key, value) as u64, self.0);
        self.bytes(ENTRY_KEY, key.as_bytes());
        self.varint(ENTRY_VALUE, int32(value));
    }
}

/// Length of a map entry's content; the value is written even when 0 (§1.4 rule 4).
fn entry_len(key: &str, value: i32) -> usize {
    key_len(ENTRY_KEY)
        + encoded_len_varint(key.len() as u64)
        + key.len()
        + key_len(ENTRY_VALUE)
        + encoded_len_varint(int32(value))
}

/// An int32 as protobuf writes it: negative values are sign-extended to 10 bytes.
fn int32(value: i32) -> u64 {
    i64::from(value) as u64
}

/// A field's value as the wire sees it: `None` and empty lists are not written.
enum Value<'a> {
    Bytes(Option<&'a [u8]>),
    Int32(Option<i32>),
    Bool(Option<bool>),
    List(&'a [String]),
    Map(&'a [(String, i32)]),
}

fn value<'a>(msg: &'a Message, field: Field) -> Value<'a> {
    let text = |value: &'a Option<String>| Value::Bytes(value.as_deref().map(str::as_bytes));
    match field {
        Field::Data => Value::Bytes(msg.data.as_deref()),
        Field::RequestorData => Value::Bytes(msg.requestor_data.as_deref()),
        Field::CorrelationId => text(&msg.correlation_id),
        Field::Name => text(&msg.name),
        Field::Subscription => text(&msg.subscription),
        Field::Path => text(&msg.path),
        Field::Url => text(&msg.url),
        Field::ProtocolVersion => text(&msg.protocol_version),
        Field::SdkVersion => text(&msg.sdk_version),
        Field::SdkType => text(&msg.sdk_type),
        Field::RequestorName => text(&msg.requestor_name),
        Field::Role => text(&msg.role),
        Field::ServerName => text(&msg.server_name),
        // Written only when true: receivers treat absent and false alike.
        Field::IsError => Value::Bool(msg.is_error.then_some(true)),
        Field::IsAck => Value::Bool(msg.is_ack.then_some(true)),
        Field::IsWriteAck => Value::Bool(msg.is_write_ack),
        Field::Locked => Value::Bool(msg.locked),
        Field::OriginalAction => Value::Int32(msg.original_action),
        Field::Version => Value::Int32(msg.version),
        Field::LeaderScore => Value::Int32(msg.leader_score),
        Field::Checksum => Value::Int32(msg.checksum),
        Field::RegistryTopic => Value::Int32(msg.registry_topic),
        Field::Names => Value::List(&msg.names),
        Field::FullState => Value::List(&msg.full_state),
        Field::Versions => Value::Map(&msg.versions),
    }
}

/// Hands every field `msg` carries for its topic to `sink`, in ascending field-number order.
fn walk(msg: &Message, sink: &mut impl Sink) {
    sink.varint(ACTION, int32(msg.action));
    for &(tag, field) in schema::fields(msg.topic) {
        match value(msg, field) {
            Value::Bytes(Some(bytes)) => sink.bytes(tag, bytes),
            Value::Int32(Some(value)) => sink.varint(tag, int32(value)),
            Value::Bool(Some(value)) => sink.varint(tag, u64::from(value)),
            Value::List(items) => {
                for item in items {
                    sink.bytes(tag, item.as_bytes());
                }
            }
            Value::Map(entries) => {
                for (key, value) in entries {
                    sink.entry(tag, key, *value);
                }
            }
            Value::Bytes(None) | Value::Int32(None) | Value::Bool(None) => {}
        }
    }
}

fn decode_frame(mut frame: Bytes, from_client: bool) -> Result<Message, ParseError> {
    let declared = decode_varint(&mut frame).map_err(|_| ParseError::LengthPrefix)?;
    if declared > frame.len() as u64 {
        return Err(ParseError::LengthBeyondFrame {
            declared,
            available: frame.len(),
        });
    }
    // Anything after the first message is ignored, like the reference parser does (§1.2).
    frame.truncate(declared as usize);

    let (topic, body) = decode_envelope(frame).map_err(ParseError::Envelope)?;
    let topic = Topic::try_from(topic).map_err(|unknown| ParseError::UnknownTopic(unknown.0))?;
    if from_client && topic == Topic::StateRegistry {
        return Err(ParseError::NotFromClient(topic));
    }
    decode_body(topic, body)
}

/// Splits the envelope into the raw topic number and the (zero-copy) per-topic message bytes.
/// A missing topic reads as 0 and so fails as unknown; a missing message reads as empty.
fn decode_envelope(mut buf: Bytes) -> Result<(i32, Bytes), DecodeError> {
    let ctx = DecodeContext::default();
    let (mut topic, mut body) = (0, Bytes::new());
    while buf.has_remaining() {
        let (tag, wire_type) = decode_key(&mut buf)?;
        match tag {
            ENVELOPE_TOPIC => encoding::int32::merge(wire_type, &mut topic, &mut buf, ctx.clone())?,
            ENVELOPE_MESSAGE => {
                encoding::bytes::merge(wire_type, &mut body, &mut buf, ctx.clone())?
            }
            _ => skip_field(wire_type, tag, &mut buf, ctx.clone())?,
        }
    }
    Ok((topic, body))
}

/// Decodes a per-topic message through the topic's field table; unknown fields are skipped and
/// a missing action reads as 0 (UNKNOWN), which handlers ignore.
fn decode_body(topic: Topic, body: Bytes) -> Result<Message, ParseError> {
    let mut msg = Message::new(topic, 0);
    let fields = schema::fields(topic);
    let mut r = Reader::new(topic, body);
    while r.buf.has_remaining() {
        let tag = r.key()?;
        if tag == ACTION {
            msg.action = r.int32()?;
            continue;
        }
        let Some(&(_, field)) = fields.iter().find(|(number, _)| *number == tag) else {
            r.skip(tag)?;
            continue;
        };
        r.field = field.proto_name();
        match field {
            Field::Data => msg.data = Some(r.text()?),
            Field::RequestorData => msg.requestor_data = Some(r.text()?),
            Field::CorrelationId => msg.correlation_id = Some(r.string()?),
            Field::Name => msg.name = Some(r.string()?),
            Field::Subscription => msg.subscription = Some(r.string()?),
            Field::Path => msg.path = Some(r.string()?),
            Field::Url => msg.url = Some(r.string()?),
            Field::ProtocolVersion => msg.protocol_version = Some(r.string()?),
            Field::SdkVersion => msg.sdk_version = Some(r.string()?),
            Field::SdkType => msg.sdk_type = Some(r.string()?),
            Field::RequestorName => msg.requestor_name = Some(r.string()?),
            Field::Role => msg.role = Some(r.string()?),
            Field::ServerName => msg.server_name = Some(r.string()?),
            Field::IsError => msg.is_error = r.bool()?,
            Field::IsAck => msg.is_ack = r.bool()?,
            Field::IsWriteAck => msg.is_write_ack = Some(r.bool()?),
            Field::Locked => msg.locked = Some(r.bool()?),
            Field::OriginalAction => msg.original_action = Some(r.int32()?),
            Field::Version => msg.version = Some(r.int32()?),
            Field::LeaderScore => msg.leader_score = Some(r.int32()?),
            Field::Checksum => msg.checksum = Some(r.int32()?),
            Field::RegistryTopic => msg.registry_topic = Some(r.int32()?),
            Field::Names => msg.names.push(r.string()?),
            Field::FullState => msg.full_state.push(r.string()?),
            // Repeated keys are kept in wire order; as in protobuf, the last one wins.
            Field::Versions => msg.versions.push(r.entry()?),
        }
    }
    Ok(msg)
}

/// Reads the fields of one per-topic message, turning failures into [`ParseError`]s that name
/// the topic and field.
struct Reader {
    topic: Topic,
    buf: Bytes,
    /// Wire type of the key read last.
    wire_type: WireType,
    /// Proto name of the field being read, for UTF-8 errors.
    field: &'static str,
}

impl Reader {
    fn new(topic: Topic, buf: Bytes) -> Self {
        Reader {
            topic,
            buf,
            wire_type: WireType::Varint,
            field: "",
        }
    }

    fn malformed(&self, cause: DecodeError) -> ParseError {
        ParseError::Body {
            topic: self.topic,
            cause,
        }
    }

    /// Reads the next key and returns its field number.
    fn key(&mut self) -> Result<u32, ParseError> {
        let (tag, wire_type) = decode_key(&mut self.buf).map_err(|e| self.malformed(e))?;
        self.wire_type = wire_type;
        Ok(tag)
    }

    fn skip(&mut self, tag: u32) -> Result<(), ParseError> {
        skip_field(self.wire_type, tag, &mut self.buf, DecodeContext::default())
            .map_err(|e| self.malformed(e))
    }

    fn int32(&mut self) -> Result<i32, ParseError> {
        let mut value = 0;
        encoding::int32::merge(
            self.wire_type,
            &mut value,
            &mut self.buf,
            DecodeContext::default(),
        )
        .map_err(|e| self.malformed(e))?;
        Ok(value)
    }

    fn bool(&mut self) -> Result<bool, ParseError> {
        let mut value = false;
        encoding::bool::merge(
            self.wire_type,
            &mut value,
            &mut self.buf,
            DecodeContext::default(),
        )
        .map_err(|e| self.malformed(e))?;
        Ok(value)
    }

    /// A length-delimited field as a zero-copy slice of the frame.
    fn raw(&mut self) -> Result<Bytes, ParseError> {
        let mut value = Bytes::new();
        encoding::bytes::merge(
            self.wire_type,
            &mut value,
            &mut self.buf,
            DecodeContext::default(),
        )
        .map_err(|e| self.malformed(e))?;
        Ok(value)
    }

    fn utf8<'v>(&self, value: &'v [u8]) -> Result<&'v str, ParseError> {
        std::str::from_utf8(value).map_err(|_| ParseError::InvalidUtf8 {
            topic: self.topic,
            field: self.field,
        })
    }

    /// JSON text (`data`, `requestorData`): checked to be UTF-8, kept zero-copy.
    fn text(&mut self) -> Result<Bytes, ParseError> {
        let value = self.raw()?;
        self.utf8(&value)?;
        Ok(value)
    }

    fn string(&mut self) -> Result<String, ParseError> {
        let value = self.raw()?;
        self.utf8(&value).map(str::to_owned)
    }

    /// One `versions` map entry; a missing key reads as `""` and a missing value as 0, as in
    /// protobufjs.
    fn entry(&mut self) -> Result<(String, i32), ParseError> {
        let mut entry = Reader::new(self.topic, self.raw()?);
        entry.field = self.field;
        let (mut key, mut value) = (String::new(), 0);
        while entry.buf.has_remaining() {
            match entry.key()? {
                ENTRY_KEY => key = entry.string()?,
                ENTRY_VALUE => value = entry.int32()?,
                tag => entry.skip(tag)?,
            }
        }
        Ok((key, value))
    }
}
