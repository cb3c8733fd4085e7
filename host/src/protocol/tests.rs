//! Byte-level tests: raw frames in, raw frames out. Expected bytes are written from the spec
//! (Appendix A and the §2 field tables), never produced by the codec under test.

use bytes::{Bytes, BytesMut};
use serde_json::json;

use super::*;

/// Parses spec-style hex (`"06 10 02 1a"`, runs of digits allowed).
fn hex(text: &str) -> Bytes {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect::<Vec<u8>>()
        .into()
}

/// The messages of spec Appendix A with their frames.
fn appendix_a() -> Vec<(Message, &'static str)> {
    let event = |action: EventAction| Message::new(Topic::Event, action);
    let record = |action: RecordAction| Message::new(Topic::Record, action);
    vec![
        (
            Message::new(Topic::Connection, ConnectionAction::Ping),
            "06 10 02 1a 02 08 02",
        ),
        (
            Message::new(Topic::Connection, ConnectionAction::Pong),
            "06 10 02 1a 02 08 03",
        ),
        (
            Message::new(Topic::Connection, ConnectionAction::Accept),
            "06 10 02 1a 02 08 04",
        ),
        (
            Message {
                url: Some("ws://h/deepstream".into()),
                protocol_version: Some("0.1a".into()),
                sdk_version: Some("7.0.5".into()),
                sdk_type: Some("javascript".into()),
                ..Message::new(Topic::Connection, ConnectionAction::Challenge)
            },
            "32 10 02 1a 2e 08 05 2a 11 77733a2f2f682f6465657073747265616d 32 04 302e3161 \
             3a 05 372e302e35 42 0a 6a617661736372697074",
        ),
        (
            Message::new(Topic::Auth, AuthAction::Request).with_data(r#"{"username":"a"}"#),
            "18 10 03 1a 14 08 02 12 10 7b22757365726e616d65223a2261227d",
        ),
        (
            Message::new(Topic::Auth, AuthAction::AuthSuccessful),
            "06 10 03 1a 02 08 03",
        ),
        (
            Message::new(Topic::Auth, AuthAction::AuthSuccessful).with_json(&json!(null)),
            "0c 10 03 1a 08 08 03 12 04 6e756c6c",
        ),
        (
            event(EventAction::Subscribe)
                .with_names(["a", "b"])
                .with_correlation_id("0"),
            "0f 10 04 1a 0b 08 03 1a 01 30 3a 01 61 3a 01 62",
        ),
        (
            event(EventAction::Subscribe)
                .with_correlation_id("0")
                .with_ack(),
            "0b 10 04 1a 07 08 03 1a 01 30 28 01",
        ),
        (
            event(EventAction::Emit)
                .with_name("a")
                .with_data(r#"{"x":1}"#),
            "12 10 04 1a 0e 08 02 12 07 7b2278223a317d 32 01 61",
        ),
        (
            record(RecordAction::ReadResponse)
                .with_name("r")
                .with_version(0)
                .with_data("{}"),
            "0f 10 05 1a 0b 08 04 12 02 7b7d 32 01 72 68 00",
        ),
        (
            record(RecordAction::HeadResponse)
                .with_name("r")
                .with_version(-1),
            "14 10 05 1a 10 08 06 32 01 72 68 ff ff ff ff ff ff ff ff ff 01",
        ),
        (
            Message {
                versions: vec![("r".into(), 3)],
                ..record(RecordAction::HeadResponseBulk)
            },
            "0d 10 05 1a 09 08 08 72 05 0a 01 72 10 03",
        ),
        (
            record(RecordAction::HeadResponseBulk),
            "06 10 05 1a 02 08 08",
        ),
        (
            record(RecordAction::Update)
                .with_name("r")
                .with_version(2)
                .with_data(r#"{"a":1}"#)
                .with_write_ack(false),
            "16 10 05 1a 12 08 12 12 07 7b2261223a317d 32 01 72 58 00 68 02",
        ),
        (
            event(EventAction::MessageDenied)
                .with_original_action(EventAction::Subscribe)
                .with_name("a")
                .with_error()
                .with_correlation_id("0"),
            "10 10 04 1a 0c 08 68 1a 01 30 20 01 32 01 61 58 03",
        ),
        (Message::unknown_topic(), "06 10 01 1a 02 08 01"),
    ]
}

#[test]
fn appendix_a_encodes_byte_exact() {
    for (msg, frame) in appendix_a() {
        assert_eq!(encode(&msg), hex(frame), "encoding {msg:?}");
    }
}

#[test]
fn appendix_a_decodes() {
    for (msg, frame) in appendix_a() {
        assert_eq!(decode(hex(frame)), Ok(msg.clone()), "decoding {frame}");
        assert_eq!(decode_from_client(hex(frame)), Ok(msg), "decoding {frame}");
    }
}

#[test]
fn bulk_ack_matches_appendix_a() {
    let request = Message::new(Topic::Event, EventAction::Subscribe)
        .with_names(["a", "b"])
        .with_correlation_id("0");
    assert_eq!(
        encode(&request.ack()),
        hex("0b 10 04 1a 07 08 03 1a 01 30 28 01")
    );
}

#[test]
fn version_zero_is_written_and_none_is_not() {
    let read = Message::new(Topic::Record, RecordAction::ReadResponse).with_name("r");
    assert_eq!(encode(&read), hex("09 10 05 1a 05 08 04 32 01 72"));
    let zero = read.with_version(0);
    assert_eq!(encode(&zero), hex("0b 10 05 1a 07 08 04 32 01 72 68 00"));
    assert_eq!(decode(encode(&zero)).unwrap().version, Some(0));
}

#[test]
fn negative_int32_is_ten_bytes() {
    let msg = Message {
        original_action: Some(-2),
        ..Message::new(Topic::Parser, -1)
    };
    assert_eq!(
        encode(&msg),
        hex("1a 10 01 1a 16 08 ff ff ff ff ff ff ff ff ff 01 48 fe ff ff ff ff ff ff ff ff 01")
    );
    assert_eq!(decode(encode(&msg)), Ok(msg));
}

#[test]
fn versions_map_writes_one_entry_per_key_with_zero_values() {
    let msg = Message {
        versions: vec![("a".into(), 0), ("b".into(), -1)],
        ..Message::new(Topic::Record, RecordAction::HeadResponseBulk)
    };
    assert_eq!(
        encode(&msg),
        hex("1d 10 05 1a 19 08 08 72 05 0a 01 61 10 00 \
             72 0e 0a 01 62 10 ff ff ff ff ff ff ff ff ff 01")
    );
    assert_eq!(decode(encode(&msg)), Ok(msg));
}

#[test]
fn versions_entries_default_missing_key_and_value() {
    // Entries `{}` and `{key:"x"}` with an unknown field 3.
    let frame = hex("0f 10 05 1a 0b 08 08 72 00 72 05 0a 01 78 18 01");
    let msg = decode(frame).unwrap();
    assert_eq!(msg.versions, vec![(String::new(), 0), ("x".into(), 0)]);
}

#[test]
fn empty_lists_are_not_written() {
    let empty = Message::new(Topic::Presence, PresenceAction::QueryAllResponse)
        .with_names(Vec::<String>::new());
    assert_eq!(encode(&empty), hex("06 10 07 1a 02 08 03"));
    let state = Message::new(Topic::StateRegistry, StateAction::FullState);
    assert_eq!(encode(&state), hex("06 10 0b 1a 02 08 05"));
}

#[test]
fn fields_a_topic_lacks_are_dropped() {
    let msg = Message {
        name: Some("dropped".into()),
        original_action: Some(5),
        version: Some(1),
        ..Message::new(Topic::Auth, AuthAction::Request)
    };
    assert_eq!(encode(&msg), hex("06 10 03 1a 02 08 02"));
}

#[test]
fn unknown_fields_are_skipped() {
    // Envelope: unknown field 1 (varint) and 4 (bytes) around topic EVENT and the message.
    // Message: EMIT with originalTOPIC (10), fixed32 (15), fixed64 (16), bytes (17) and a group
    // (18, holding a varint) before `name`.
    let body = "08 02 50 04 7d 01020304 81 01 0102030405060708 8a 01 02 6869 \
                93 01 08 05 94 01 32 01 61";
    let frame = format!("2b 08 07 10 04 22 02 6869 1a 21 {body}");
    let expected = Message::new(Topic::Event, EventAction::Emit).with_name("a");
    assert_eq!(decode(hex(&frame)), Ok(expected));
}

#[test]
fn missing_action_reads_as_unknown_and_unknown_actions_stay_raw() {
    let msg = decode(hex("04 10 04 1a 00")).unwrap();
    assert_eq!(msg, Message::new(Topic::Event, EventAction::Unknown));

    let msg = decode(hex("07 10 04 1a 03 08 e7 07")).unwrap();
    assert_eq!(msg.action, 999);
    assert_eq!(msg.action_as::<EventAction>(), None);
    assert_eq!(
        msg.action_as::<RecordAction>(),
        None,
        "999 is no action of any topic"
    );
}

#[test]
fn missing_envelope_message_reads_as_empty() {
    assert_eq!(
        decode(hex("02 10 05")),
        Ok(Message::new(Topic::Record, RecordAction::Unknown))
    );
}

#[test]
fn only_the_first_message_of_a_frame_is_read() {
    let frame = hex("06 10 02 1a 02 08 02  06 10 07 1a 02 08 02");
    assert_eq!(
        decode_from_client(frame),
        Ok(Message::new(Topic::Connection, ConnectionAction::Ping))
    );
    // Trailing garbage is ignored as well.
    assert!(decode(hex("06 10 02 1a 02 08 02 ff ff ff")).is_ok());
}

#[test]
fn framing_errors() {
    assert_eq!(decode(Bytes::new()), Err(ParseError::LengthPrefix));
    assert_eq!(decode(hex("ff ff ff")), Err(ParseError::LengthPrefix));
    assert_eq!(
        decode(hex("ff ff ff ff ff ff ff ff ff ff 01")),
        Err(ParseError::LengthPrefix)
    );
    assert_eq!(
        decode(hex("07 10 02 1a 02 08 02")),
        Err(ParseError::LengthBeyondFrame {
            declared: 7,
            available: 6
        })
    );
    assert!(matches!(
        decode(hex("06 10 02 1a 05 08 02")),
        Err(ParseError::Envelope(_))
    ));
    assert!(matches!(
        decode(hex("03 10 02 1f")),
        Err(ParseError::Envelope(_)),
    ));
}

#[test]
fn every_truncation_of_a_frame_is_an_error() {
    for (_, frame) in appendix_a() {
        let frame = hex(frame);
        for len in 0..frame.len() {
            assert!(
                decode(frame.slice(..len)).is_err(),
                "{:02x?}",
                &frame[..len]
            );
        }
    }
}

#[test]
fn topics_without_codec_are_errors() {
    for (frame, topic) in [
        ("04 10 00 1a 00", 0),
        ("02 1a 00", 0),
        ("06 10 64 1a 02 08 01", 100),
        ("07 10 e7 07 1a 02 08 01", 999),
        ("0f 10 ff ff ff ff ff ff ff ff ff 01 1a 02 08 01", -1),
    ] {
        assert_eq!(decode(hex(frame)), Err(ParseError::UnknownTopic(topic)));
        assert_eq!(
            decode_from_client(hex(frame)),
            Err(ParseError::UnknownTopic(topic))
        );
    }
}

#[test]
fn state_registry_is_decodable_only_from_servers() {
    let frame = hex("09 10 0b 1a 05 08 02 b0 01 0c");
    assert_eq!(
        decode_from_client(frame.clone()),
        Err(ParseError::NotFromClient(Topic::StateRegistry))
    );
    let msg = decode(frame).unwrap();
    assert_eq!(msg.action_as(), Some(StateAction::Add));
    assert_eq!(
        msg.registry_topic.map(StateRegistryTopic::try_from),
        Some(Ok(StateRegistryTopic::RecordSubscriptions))
    );
}

#[test]
fn malformed_bodies_are_errors() {
    let body_error = |frame: &str| {
        let result = decode(hex(frame));
        assert!(
            matches!(
                result,
                Err(ParseError::Body {
                    topic: Topic::Event,
                    ..
                })
            ),
            "{frame}: {result:?}"
        );
    };
    body_error("05 10 04 1a 01 08"); // truncated action varint
    body_error("07 10 04 1a 03 08 02 32"); // key without value
    body_error("08 10 04 1a 04 08 02 32 05"); // string longer than the message
    body_error("08 10 04 1a 04 08 02 30 01"); // `name` sent as a varint
    body_error("08 10 04 1a 04 08 02 0a 00"); // `action` sent as bytes
    body_error("07 10 04 1a 03 08 02 37"); // wire type 7 does not exist
    body_error("07 10 04 1a 03 08 02 54"); // end group without a start
}

#[test]
fn invalid_utf8_is_an_error() {
    let cases = [
        ("09 10 04 1a 05 08 02 32 01 ff", Topic::Event, "name"),
        ("09 10 04 1a 05 08 02 12 01 c3", Topic::Event, "data"),
        ("09 10 06 1a 05 08 02 5a 01 80", Topic::Rpc, "requestorData"),
        (
            "0c 10 05 1a 08 08 08 72 04 0a 02 c3 28",
            Topic::Record,
            "versions",
        ),
    ];
    for (frame, topic, field) in cases {
        assert_eq!(
            decode(hex(frame)),
            Err(ParseError::InvalidUtf8 { topic, field }),
            "{frame}"
        );
    }
    let error = decode(hex(cases[0].0)).unwrap_err();
    assert_eq!(error.to_string(), "Event field `name` is not valid UTF-8");
}

#[test]
fn data_is_a_zero_copy_slice_of_the_frame() {
    let frame = hex("12 10 04 1a 0e 08 02 12 07 7b2278223a317d 32 01 61");
    let range = frame.as_ptr_range();
    let data = decode(frame.clone()).unwrap().data.unwrap();
    assert_eq!(&data[..], br#"{"x":1}"#);
    assert!(range.contains(&data.as_ptr()));
}

#[test]
fn encode_into_appends_to_the_buffer() {
    let mut buf = BytesMut::from(&b"xy"[..]);
    encode_into(
        &Message::new(Topic::Connection, ConnectionAction::Pong),
        &mut buf,
    );
    assert_eq!(&buf[..], &b"xy\x06\x10\x02\x1a\x02\x08\x03"[..]);
}

/// Writes a protobuf varint; test-only, so expected bytes do not come from the codec under test.
fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A field value in a spec-derived expected message.
enum Wire {
    Int(i64),
    Str(&'static str),
    Entry(&'static str, i64),
}

/// Builds a frame from `(field number, value)` pairs taken straight from the spec tables.
fn spec_frame(topic: u64, fields: &[(u64, Wire)]) -> Bytes {
    let mut body = Vec::new();
    for (number, value) in fields {
        match value {
            Wire::Int(value) => {
                varint(number << 3, &mut body);
                varint(*value as u64, &mut body);
            }
            Wire::Str(text) => {
                varint(number << 3 | 2, &mut body);
                varint(text.len() as u64, &mut body);
                body.extend_from_slice(text.as_bytes());
            }
            Wire::Entry(key, value) => {
                let mut entry = vec![0x0a, key.len() as u8];
                entry.extend_from_slice(key.as_bytes());
                entry.push(0x10);
                varint(*value as u64, &mut entry);
                varint(number << 3 | 2, &mut body);
                varint(entry.len() as u64, &mut body);
                body.extend_from_slice(&entry);
            }
        }
    }
    let mut envelope = vec![0x10];
    varint(topic, &mut envelope);
    envelope.push(0x1a);
    varint(body.len() as u64, &mut envelope);
    envelope.extend_from_slice(&body);
    let mut frame = Vec::new();
    varint(envelope.len() as u64, &mut frame);
    frame.extend_from_slice(&envelope);
    frame.into()
}

/// A message with every field set, to show which ones each topic carries.
fn kitchen_sink(topic: Topic) -> Message {
    Message {
        topic,
        action: 2,
        name: Some("n".into()),
        names: vec!["a".into(), "b".into()],
        correlation_id: Some("c".into()),
        data: Some(Bytes::from_static(b"{}")),
        is_ack: true,
        is_error: true,
        is_write_ack: Some(true),
        original_action: Some(3),
        subscription: Some("s".into()),
        path: Some("p".into()),
        version: Some(0),
        versions: vec![("k".into(), -1)],
        url: Some("u".into()),
        protocol_version: Some("pv".into()),
        sdk_version: Some("sv".into()),
        sdk_type: Some("st".into()),
        requestor_name: Some("rn".into()),
        requestor_data: Some(Bytes::from_static(b"1")),
        leader_score: Some(9),
        role: Some("r".into()),
        locked: Some(false),
        checksum: Some(-2),
        full_state: vec!["f".into()],
        server_name: Some("sn".into()),
        registry_topic: Some(12),
    }
}

#[test]
fn every_topic_uses_its_spec_field_numbers_and_round_trips() {
    use Wire::{Entry, Int, Str};
    let expected: [(Topic, Vec<(u64, Wire)>); 11] = [
        (
            Topic::Parser,
            vec![(1, Int(2)), (2, Str("{}")), (9, Int(3))],
        ),
        (
            Topic::Connection,
            vec![
                (1, Int(2)),
                (2, Str("{}")),
                (3, Int(1)),
                (4, Int(1)),
                (5, Str("u")),
                (6, Str("pv")),
                (7, Str("sv")),
                (8, Str("st")),
            ],
        ),
        (
            Topic::Auth,
            vec![(1, Int(2)), (2, Str("{}")), (3, Int(1)), (4, Int(1))],
        ),
        (
            Topic::Event,
            vec![
                (1, Int(2)),
                (2, Str("{}")),
                (3, Str("c")),
                (4, Int(1)),
                (5, Int(1)),
                (6, Str("n")),
                (7, Str("a")),
                (7, Str("b")),
                (8, Str("s")),
                (11, Int(3)),
            ],
        ),
        (
            Topic::Record,
            vec![
                (1, Int(2)),
                (2, Str("{}")),
                (3, Str("c")),
                (4, Int(1)),
                (5, Int(1)),
                (6, Str("n")),
                (7, Str("a")),
                (7, Str("b")),
                (9, Str("s")),
                (10, Int(3)),
                (11, Int(1)),
                (12, Str("p")),
                (13, Int(0)),
                (14, Entry("k", -1)),
            ],
        ),
        (
            Topic::Rpc,
            vec![
                (1, Int(2)),
                (2, Str("{}")),
                (3, Str("c")),
                (4, Int(1)),
                (5, Int(1)),
                (6, Str("a")),
                (6, Str("b")),
                (7, Str("n")),
                (9, Int(3)),
                (10, Str("rn")),
                (11, Str("1")),
            ],
        ),
        (
            Topic::Presence,
            vec![
                (1, Int(2)),
                (3, Int(3)),
                (4, Str("{}")),
                (5, Str("c")),
                (6, Int(1)),
                (7, Int(1)),
                (8, Str("n")),
                (9, Str("a")),
                (9, Str("b")),
            ],
        ),
        (
            Topic::Monitoring,
            vec![
                (1, Int(2)),
                (2, Str("{}")),
                (3, Str("c")),
                (4, Int(1)),
                (5, Int(1)),
            ],
        ),
        (
            Topic::Cluster,
            vec![
                (1, Int(2)),
                (2, Str("{}")),
                (3, Int(1)),
                (4, Int(1)),
                (5, Int(9)),
                (7, Str("r")),
            ],
        ),
        (Topic::Lock, vec![(1, Int(2)), (3, Int(0))]),
        (
            Topic::StateRegistry,
            vec![
                (1, Int(2)),
                (2, Str("{}")),
                (3, Int(1)),
                (19, Int(-2)),
                (20, Str("f")),
                (21, Str("sn")),
                (22, Int(12)),
            ],
        ),
    ];

    for (topic, fields) in expected {
        let sink = kitchen_sink(topic);
        let frame = encode(&sink);
        assert_eq!(
            frame,
            spec_frame(i32::from(topic) as u64, &fields),
            "{topic:?}"
        );

        let decoded = decode(frame.clone()).unwrap();
        assert_eq!(encode(&decoded), frame, "{topic:?} round trip");
        // Whatever the topic has survives; whatever it lacks comes back empty.
        macro_rules! kept_or_dropped {
            ($($field:ident),+) => {$(
                assert!(
                    decoded.$field == sink.$field || decoded.$field == Message::default().$field,
                    "{topic:?}.{}", stringify!($field)
                );
            )+};
        }
        kept_or_dropped!(
            topic,
            action,
            name,
            names,
            correlation_id,
            data,
            is_ack,
            is_error,
            is_write_ack,
            original_action,
            subscription,
            path,
            version,
            versions,
            url,
            protocol_version,
            sdk_version,
            sdk_type,
            requestor_name,
            requestor_data,
            leader_score,
            role,
            locked,
            checksum,
            full_state,
            server_name,
            registry_topic
        );
    }
}

/// Deterministic pseudo-random numbers (Knuth's MMIX LCG), so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Decodes `frame` both ways; anything that decodes must re-encode to an equal message.
fn decode_never_panics(frame: Bytes) {
    for msg in [decode(frame.clone()), decode_from_client(frame)]
        .into_iter()
        .flatten()
    {
        assert_eq!(decode(encode(&msg)), Ok(msg));
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Lcg(0x5eed);
    for _ in 0..5000 {
        let len = (rng.next() % 48) as usize;
        let frame: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        decode_never_panics(frame.into());
    }
}

#[test]
fn random_bodies_never_panic() {
    // Well-framed envelopes around random fields (numbers 1..=23, varint or bytes of mostly
    // ASCII), so decoding gets past the framing and exercises every field of every topic.
    let mut rng = Lcg(7);
    for _ in 0..5000 {
        let mut body = Vec::new();
        for _ in 0..rng.next() % 8 {
            let number = rng.next() % 23 + 1;
            if rng.next().is_multiple_of(2) {
                varint(number << 3, &mut body);
                varint(rng.next() % 300, &mut body);
            } else {
                varint(number << 3 | 2, &mut body);
                let len = rng.next() % 5;
                body.push(len as u8);
                body.extend((0..len).map(|_| (rng.next() % 0x90) as u8));
            }
        }
        let topic = rng.next() % 13;
        let mut frame = vec![
            body.len() as u8 + 4,
            0x10,
            topic as u8,
            0x1a,
            body.len() as u8,
        ];
        frame.extend_from_slice(&body);
        decode_never_panics(frame.into());
    }
}

#[test]
fn mutated_frames_never_panic() {
    let mut rng = Lcg(42);
    let frames: Vec<Bytes> = appendix_a().iter().map(|(_, frame)| hex(frame)).collect();
    for _ in 0..5000 {
        let mut frame = frames[rng.next() as usize % frames.len()].to_vec();
        for _ in 0..=rng.next() % 3 {
            let at = rng.next() as usize % frame.len();
            frame[at] = rng.next() as u8;
        }
        decode_never_panics(frame.into());
    }
}

#[test]
fn enums_convert_from_and_to_wire_numbers() {
    assert_eq!(Topic::try_from(11), Ok(Topic::StateRegistry));
    assert_eq!(Topic::try_from(0), Err(UnknownNumber(0)));
    assert_eq!(Topic::try_from(100), Err(UnknownNumber(100)));
    assert_eq!(RecordAction::try_from(35), Ok(RecordAction::PatchMulti));
    assert_eq!(RpcAction::try_from(3), Err(UnknownNumber(3)));
    assert_eq!(i32::from(PresenceAction::UnsubscribeAll), 13);
    assert_eq!(i32::from(StateRegistryTopic::MonitoringSubscriptions), 24);
    assert_eq!(LockAction::try_from(4), Ok(LockAction::Release));
    assert_eq!(ClusterAction::try_from(2), Ok(ClusterAction::Status));
    assert_eq!(ParserAction::try_from(6), Ok(ParserAction::Error));
}

#[test]
fn json_helpers() {
    let msg = Message::new(Topic::Event, EventAction::Emit);
    assert!(matches!(msg.parse_data(), Ok(None)));
    let msg = msg.with_json(&json!({"a": [1, "x"]}));
    assert_eq!(msg.data.as_deref(), Some(&br#"{"a":[1,"x"]}"#[..]));
    assert_eq!(msg.parse_data().unwrap(), Some(json!({"a": [1, "x"]})));
    assert!(msg.with_data("").parse_data().is_err());
}

#[test]
fn field_tables_are_strictly_ascending() {
    for number in 1..=11 {
        let topic = Topic::try_from(number).unwrap();
        let fields = schema::fields(topic);
        assert!(
            fields.windows(2).all(|pair| pair[0].0 < pair[1].0),
            "{topic:?}"
        );
        assert!(fields.iter().all(|&(number, _)| number > 1), "{topic:?}");
    }
}
