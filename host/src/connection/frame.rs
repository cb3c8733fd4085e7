//! The server side of the WebSocket framing (RFC 6455 §5): decoding client frames into
//! messages and encoding server frames.
//!
//! Why not tungstenite here: tungstenite keeps a read buffer and a write buffer in every
//! connection for its whole life, and its stream/sink split adds a shared lock and task state.
//! At tens of thousands of idle connections those buffers alone exceed the per-connection
//! memory budget (2 KB). This layer holds nothing while a connection is idle: the transport
//! reads into a per-thread scratch buffer and hands it to [`Decoder::feed`], which only copies
//! the bytes of an incomplete frame (or an incomplete fragmented message) into the connection.
//! The handshake still uses tungstenite's `derive_accept_key`.

use bytes::Bytes;

/// Close codes the server sends (RFC 6455 §7.4.1).
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;
pub const CLOSE_TOO_BIG: u16 = 1009;

/// At most this much is reserved for an incomplete frame before its bytes arrive (the size of
/// the transport's read buffer).
const RESERVE_AHEAD: usize = 64 * 1024;

/// A close frame without a payload (what a server-initiated close sends).
pub const EMPTY_CLOSE: [u8; 2] = [0x80 | OP_CLOSE, 0];

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// What the client sent, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete binary message.
    Message(Bytes),
    /// A ping: answer with a pong carrying this payload.
    Ping(Bytes),
    /// The client closes: answer with this close frame payload (the echoed code) and end.
    Close(Bytes),
    /// The client broke the protocol: send a close frame with this code and end.
    Fail(u16, &'static str),
    /// A text message on the binary endpoint (protocol.md §1.2): close the connection.
    Text,
}

/// A fragmented message in progress.
#[derive(Debug)]
struct Fragments {
    /// The unmasked payload so far.
    payload: Vec<u8>,
}

/// Turns the client's bytes into [`Event`]s. Holds no memory between complete frames.
#[derive(Debug)]
pub struct Decoder {
    /// The largest message accepted (`maxMessageSize`); larger ones fail with 1009.
    max_message_size: u64,
    /// The bytes of an incomplete frame, kept until the rest arrives.
    partial: Vec<u8>,
    /// A fragmented message being assembled; boxed so that idle connections pay one pointer.
    fragments: Option<Box<Fragments>>,
    /// Set after a close or failure: nothing more is decoded.
    done: bool,
}

/// A parsed frame header.
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Header length in bytes.
    header_len: usize,
    payload_len: u64,
}

enum Parsed {
    /// More bytes are needed.
    Incomplete,
    Frame(Header),
    /// A text message starts: refused without waiting for its payload.
    Text,
    Fail(u16, &'static str),
}

impl Decoder {
    pub fn new(max_message_size: u64) -> Self {
        Decoder {
            max_message_size,
            partial: Vec::new(),
            fragments: None,
            done: false,
        }
    }

    /// Whether the decoder holds any memory (an incomplete frame or message).
    #[cfg(test)]
    pub fn is_idle(&self) -> bool {
        self.partial.capacity() == 0 && self.fragments.is_none()
    }

    /// Decodes what `input` completes, appending events to `events`. `input` is scratch
    /// space: it is unmasked in place. After a `Close`, `Fail` or `Text` event, nothing more is
    /// decoded.
    pub fn feed(&mut self, input: &mut [u8], events: &mut Vec<Event>) {
        if self.done {
            return;
        }
        let mut wanted = 0;
        if self.partial.is_empty() {
            let used = self.decode(input, events, &mut wanted);
            if !self.done && used < input.len() {
                // Room for the whole frame, so that it is copied once; but no more than a
                // read's worth up front, so a header alone cannot make us reserve its length.
                self.partial
                    .reserve_exact(wanted.min(RESERVE_AHEAD).max(input.len() - used));
                self.partial.extend_from_slice(&input[used..]);
            }
        } else {
            let mut partial = std::mem::take(&mut self.partial);
            partial.extend_from_slice(input);
            let used = self.decode(&mut partial, events, &mut wanted);
            if self.done || used == partial.len() {
                // Nothing left over: free the buffer.
                return;
            }
            if used > 0 {
                partial.drain(..used);
                partial.shrink_to(wanted);
            }
            self.partial = partial;
        }
    }

    /// Decodes the complete frames at the start of `buffer`; returns the bytes consumed.
    /// `wanted` is set to the size of an incomplete frame whose header is complete.
    fn decode(&mut self, buffer: &mut [u8], events: &mut Vec<Event>, wanted: &mut usize) -> usize {
        let mut at = 0;
        while !self.done {
            let header = match self.parse(&buffer[at..]) {
                Parsed::Incomplete => break,
                Parsed::Text => {
                    self.end(Event::Text, events);
                    break;
                }
                Parsed::Fail(code, reason) => {
                    self.end(Event::Fail(code, reason), events);
                    break;
                }
                Parsed::Frame(header) => header,
            };
            // `parse` checked the length against the limit, which fits in memory.
            let len = header.payload_len as usize;
            let start = at + header.header_len;
            if buffer.len() - start < len {
                *wanted = header.header_len + len;
                break;
            }
            let payload = &mut buffer[start..start + len];
            unmask(payload, header.mask);
            at = start + len;
            self.frame(header.fin, header.opcode, payload, events);
        }
        at
    }

    /// Parses one header and checks it against the protocol and the size limit.
    fn parse(&self, buffer: &[u8]) -> Parsed {
        if buffer.len() < 2 {
            return Parsed::Incomplete;
        }
        let (first, second) = (buffer[0], buffer[1]);
        let fin = first & 0x80 != 0;
        let opcode = first & 0x0F;
        if first & 0x70 != 0 {
            return Parsed::Fail(CLOSE_PROTOCOL_ERROR, "reserved bits set");
        }
        let is_control = opcode & 0x08 != 0;
        match opcode {
            OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG => {}
            _ => return Parsed::Fail(CLOSE_PROTOCOL_ERROR, "unknown opcode"),
        }
        if second & 0x80 == 0 {
            return Parsed::Fail(CLOSE_PROTOCOL_ERROR, "unmasked client frame");
        }
        if opcode == OP_TEXT && self.fragments.is_none() {
            return Parsed::Text;
        }
        let (payload_len, len_bytes) = match second & 0x7F {
            126 => {
                if buffer.len() < 4 {
                    return Parsed::Incomplete;
                }
                (u64::from(u16::from_be_bytes([buffer[2], buffer[3]])), 2)
            }
            127 => {
                if buffer.len() < 10 {
                    return Parsed::Incomplete;
                }
                let mut length = [0; 8];
                length.copy_from_slice(&buffer[2..10]);
                let length = u64::from_be_bytes(length);
                if length >> 63 != 0 {
                    return Parsed::Fail(CLOSE_PROTOCOL_ERROR, "invalid frame length");
                }
                (length, 8)
            }
            short => (u64::from(short), 0),
        };
        if is_control && (!fin || payload_len > 125) {
            return Parsed::Fail(CLOSE_PROTOCOL_ERROR, "invalid control frame");
        }
        if !is_control {
            match (opcode, &self.fragments) {
                (OP_CONTINUATION, None) => {
                    return Parsed::Fail(CLOSE_PROTOCOL_ERROR, "continuation without a message");
                }
                (OP_TEXT | OP_BINARY, Some(_)) => {
                    return Parsed::Fail(
                        CLOSE_PROTOCOL_ERROR,
                        "new message inside a fragmented one",
                    );
                }
                _ => {}
            }
            let so_far = self
                .fragments
                .as_ref()
                .map_or(0, |fragments| fragments.payload.len() as u64);
            if so_far.saturating_add(payload_len) > self.max_message_size {
                return Parsed::Fail(CLOSE_TOO_BIG, "message too big");
            }
        }
        let header_len = 2 + len_bytes + 4;
        if buffer.len() < header_len {
            return Parsed::Incomplete;
        }
        let mut mask = [0; 4];
        mask.copy_from_slice(&buffer[2 + len_bytes..header_len]);
        Parsed::Frame(Header {
            fin,
            opcode,
            mask,
            header_len,
            payload_len,
        })
    }

    /// Handles one complete, unmasked frame.
    fn frame(&mut self, fin: bool, opcode: u8, payload: &[u8], events: &mut Vec<Event>) {
        match opcode {
            OP_BINARY if fin => events.push(Event::Message(Bytes::copy_from_slice(payload))),
            OP_BINARY => {
                self.fragments = Some(Box::new(Fragments {
                    payload: payload.to_vec(),
                }));
            }
            OP_CONTINUATION => {
                // `parse` refused a continuation without a message.
                if let Some(fragments) = self.fragments.as_mut() {
                    fragments.payload.extend_from_slice(payload);
                }
                if fin && let Some(fragments) = self.fragments.take() {
                    events.push(Event::Message(Bytes::from(fragments.payload)));
                }
            }
            OP_PING => events.push(Event::Ping(Bytes::copy_from_slice(payload))),
            OP_PONG => {}
            OP_CLOSE => match close_reply(payload) {
                Ok(reply) => self.end(Event::Close(reply), events),
                Err((code, reason)) => self.end(Event::Fail(code, reason), events),
            },
            _ => self.end(Event::Fail(CLOSE_PROTOCOL_ERROR, "unknown opcode"), events),
        }
    }

    /// The last event: nothing more is decoded and nothing is kept.
    fn end(&mut self, event: Event, events: &mut Vec<Event>) {
        self.done = true;
        self.partial = Vec::new();
        self.fragments = None;
        events.push(event);
    }
}

/// The close payload that answers a client's close (RFC 6455 §5.5.1, §7.4): its code echoed,
/// or an error for a malformed close.
fn close_reply(payload: &[u8]) -> Result<Bytes, (u16, &'static str)> {
    match payload.len() {
        0 => Ok(Bytes::new()),
        1 => Err((CLOSE_PROTOCOL_ERROR, "close payload of one byte")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !valid {
                return Err((CLOSE_PROTOCOL_ERROR, "invalid close code"));
            }
            if std::str::from_utf8(&payload[2..]).is_err() {
                return Err((CLOSE_INVALID_PAYLOAD, "close reason is not UTF-8"));
            }
            Ok(Bytes::copy_from_slice(&code.to_be_bytes()))
        }
    }
}

/// XORs `payload` with the masking key (RFC 6455 §5.3).
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let mask8 = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ mask8).to_ne_bytes());
    }
    for (byte, key) in chunks.into_remainder().iter_mut().zip(mask.iter().cycle()) {
        *byte ^= key;
    }
}

/// A server frame header (unmasked, FIN set): its bytes and length.
pub fn header(opcode: u8, payload_len: usize) -> ([u8; 10], usize) {
    let mut header = [0; 10];
    header[0] = 0x80 | opcode;
    if payload_len < 126 {
        header[1] = payload_len as u8;
        (header, 2)
    } else if let Ok(short) = u16::try_from(payload_len) {
        header[1] = 126;
        header[2..4].copy_from_slice(&short.to_be_bytes());
        (header, 4)
    } else {
        header[1] = 127;
        header[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
        (header, 10)
    }
}

/// The header of a binary message frame.
pub fn binary_header(payload_len: usize) -> ([u8; 10], usize) {
    header(OP_BINARY, payload_len)
}

/// A complete control frame (close or pong) with `payload` (at most 125 bytes).
pub fn control_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(2 + payload.len());
    frame.push(0x80 | opcode);
    frame.push(payload.len().min(125) as u8);
    frame.extend_from_slice(&payload[..payload.len().min(125)]);
    frame
}

/// A close frame with `code` and `reason`.
pub fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    control_frame(OP_CLOSE, &payload)
}

/// A close frame echoing `payload` (empty or a code).
pub fn close_echo(payload: &[u8]) -> Vec<u8> {
    control_frame(OP_CLOSE, payload)
}

/// A pong answering a ping with `payload`.
pub fn pong(payload: &[u8]) -> Vec<u8> {
    control_frame(OP_PONG, payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_length_alone_does_not_reserve_it() {
        let mut decoder = Decoder::new(4 << 20);
        // A binary frame header announcing 1 MB (64-bit length), mask, then 10 payload bytes.
        let mut input = vec![0x82, 0x80 | 127];
        input.extend_from_slice(&(1u64 << 20).to_be_bytes());
        input.extend_from_slice(&MASK);
        input.extend_from_slice(&[0; 10]);
        let mut events = Vec::new();
        decoder.feed(&mut input, &mut events);
        assert!(events.is_empty());
        assert!(
            decoder.partial.capacity() <= RESERVE_AHEAD,
            "reserved {} bytes for 24 received",
            decoder.partial.capacity()
        );
    }

    #[test]
    fn the_empty_close_constant_is_an_empty_close_frame() {
        assert_eq!(close_echo(&[]), EMPTY_CLOSE);
    }

    const MASK: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

    /// A masked client frame.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&MASK);
        let mut masked = payload.to_vec();
        unmask(&mut masked, MASK);
        frame.extend_from_slice(&masked);
        frame
    }

    fn decode_all(decoder: &mut Decoder, input: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        decoder.feed(&mut input.to_vec(), &mut events);
        events
    }

    fn message(payload: &[u8]) -> Event {
        Event::Message(Bytes::copy_from_slice(payload))
    }

    #[test]
    fn masked_frames_of_every_length_encoding_decode() {
        for len in [0, 1, 125, 126, 1000, 0xFFFF, 0x10000, 200_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut decoder = Decoder::new(1 << 20);
            let events = decode_all(&mut decoder, &client_frame(true, OP_BINARY, &payload));
            assert_eq!(events, vec![message(&payload)], "length {len}");
            assert!(decoder.is_idle());
        }
    }

    #[test]
    fn the_rfc_example_unmasks() {
        // RFC 6455 §5.7, as a binary frame, then the same with a longer payload.
        let input = [
            0x82, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let events = decode_all(&mut Decoder::new(1024), &input);
        assert_eq!(events, vec![message(b"Hello")]);
        let payload = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut frame = vec![0x82, 0x80 | payload.len() as u8, 1, 2, 3, 4];
        frame.extend(
            payload
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ [1, 2, 3, 4][i % 4]),
        );
        let events = decode_all(&mut Decoder::new(1024), &frame);
        assert_eq!(events, vec![message(payload)]);
    }

    #[test]
    fn unmasked_client_frames_are_a_protocol_error() {
        let mut decoder = Decoder::new(1024);
        let events = decode_all(&mut decoder, &[0x82, 0x02, b'h', b'i']);
        assert!(matches!(events[..], [Event::Fail(CLOSE_PROTOCOL_ERROR, _)]));
    }

    #[test]
    fn several_frames_in_one_read_decode_in_order() {
        let mut input = client_frame(true, OP_BINARY, b"one");
        input.extend(client_frame(true, OP_PING, b"p"));
        input.extend(client_frame(true, OP_PONG, b""));
        input.extend(client_frame(true, OP_BINARY, b"two"));
        let mut decoder = Decoder::new(1024);
        let events = decode_all(&mut decoder, &input);
        assert_eq!(
            events,
            vec![
                message(b"one"),
                Event::Ping(Bytes::from_static(b"p")),
                message(b"two")
            ]
        );
    }

    #[test]
    fn fragmented_messages_with_interleaved_control_frames_reassemble() {
        let mut input = client_frame(false, OP_BINARY, b"he");
        input.extend(client_frame(true, OP_PING, b"x"));
        input.extend(client_frame(false, OP_CONTINUATION, b"ll"));
        input.extend(client_frame(true, OP_PONG, b"y"));
        input.extend(client_frame(true, OP_CONTINUATION, b"o"));
        let mut decoder = Decoder::new(1024);
        let events = decode_all(&mut decoder, &input);
        assert_eq!(
            events,
            vec![Event::Ping(Bytes::from_static(b"x")), message(b"hello")]
        );
        assert!(decoder.is_idle());
    }

    /// Feeds `input` in two reads split at `split`.
    fn decode_split(input: &[u8], split: usize) -> (Vec<Event>, bool) {
        let mut decoder = Decoder::new(1 << 20);
        let mut events = Vec::new();
        decoder.feed(&mut input[..split].to_vec(), &mut events);
        decoder.feed(&mut input[split..].to_vec(), &mut events);
        (events, decoder.is_idle())
    }

    #[test]
    fn a_stream_split_at_every_byte_boundary_decodes_the_same() {
        let mut input = client_frame(true, OP_BINARY, b"first");
        input.extend(client_frame(false, OP_BINARY, &[7; 300]));
        input.extend(client_frame(true, OP_PING, b"ping"));
        input.extend(client_frame(true, OP_CONTINUATION, &[9; 200]));
        input.extend(client_frame(true, OP_BINARY, b""));
        let mut whole = [7; 300].to_vec();
        whole.extend([9; 200]);
        let expected = vec![
            message(b"first"),
            Event::Ping(Bytes::from_static(b"ping")),
            message(&whole),
            message(b""),
        ];
        for split in 0..=input.len() {
            assert_eq!(
                decode_split(&input, split),
                (expected.clone(), true),
                "split at {split}"
            );
        }
        // One byte at a time.
        let mut decoder = Decoder::new(1 << 20);
        let mut events = Vec::new();
        for byte in &input {
            decoder.feed(&mut [*byte], &mut events);
        }
        assert_eq!(events, expected);
        assert!(decoder.is_idle());
    }

    #[test]
    fn a_64_bit_length_frame_split_anywhere_decodes() {
        let payload: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let mut input = client_frame(true, OP_BINARY, &payload);
        input.extend(client_frame(true, OP_BINARY, b"next"));
        let expected = vec![message(&payload), message(b"next")];
        let splits = (0..=20)
            .chain((20..input.len()).step_by(997))
            .chain(input.len() - 20..=input.len());
        for split in splits {
            assert_eq!(
                decode_split(&input, split),
                (expected.clone(), true),
                "split at {split}"
            );
        }
    }

    #[test]
    fn oversize_messages_fail_with_1009_from_the_header_alone() {
        let mut decoder = Decoder::new(100);
        let frame = client_frame(true, OP_BINARY, &[0; 101]);
        let events = decode_all(&mut decoder, &frame[..8]);
        assert!(matches!(events[..], [Event::Fail(CLOSE_TOO_BIG, _)]));
        // Fragments add up.
        let mut decoder = Decoder::new(100);
        let mut input = client_frame(false, OP_BINARY, &[0; 60]);
        input.extend(client_frame(true, OP_CONTINUATION, &[0; 60]));
        let events = decode_all(&mut decoder, &input);
        assert!(matches!(events[..], [Event::Fail(CLOSE_TOO_BIG, _)]));
        // Exactly the limit is fine.
        let mut decoder = Decoder::new(100);
        let events = decode_all(&mut decoder, &client_frame(true, OP_BINARY, &[1; 100]));
        assert_eq!(events, vec![message(&[1; 100])]);
    }

    #[test]
    fn protocol_violations_fail_with_1002() {
        let cases: Vec<Vec<u8>> = vec![
            // Reserved bits.
            {
                let mut frame = client_frame(true, OP_BINARY, b"x");
                frame[0] |= 0x40;
                frame
            },
            // Reserved opcodes.
            client_frame(true, 0x3, b"x"),
            client_frame(true, 0xB, b"x"),
            // Fragmented control frame, oversize control frame.
            client_frame(false, OP_PING, b"x"),
            client_frame(true, OP_PING, &[0; 126]),
            // Continuation with nothing to continue.
            client_frame(true, OP_CONTINUATION, b"x"),
            // A new message inside a fragmented one.
            [
                client_frame(false, OP_BINARY, b"x"),
                client_frame(true, OP_BINARY, b"y"),
            ]
            .concat(),
            // Malformed closes.
            client_frame(true, OP_CLOSE, &[3]),
            client_frame(true, OP_CLOSE, &1005u16.to_be_bytes()),
            client_frame(true, OP_CLOSE, &999u16.to_be_bytes()),
            client_frame(true, OP_CLOSE, &5000u16.to_be_bytes()),
        ];
        for (index, input) in cases.iter().enumerate() {
            let mut decoder = Decoder::new(1024);
            let events = decode_all(&mut decoder, input);
            assert!(
                matches!(events[..], [Event::Fail(CLOSE_PROTOCOL_ERROR, _)]),
                "case {index}: {events:?}"
            );
            assert!(decoder.is_idle());
        }
    }

    #[test]
    fn closes_are_echoed_and_end_decoding() {
        let mut decoder = Decoder::new(1024);
        let mut input = client_frame(true, OP_CLOSE, &[0x03, 0xE8, b'b', b'y', b'e']);
        input.extend(client_frame(true, OP_BINARY, b"after"));
        let events = decode_all(&mut decoder, &input);
        assert_eq!(
            events,
            vec![Event::Close(Bytes::from_static(&[0x03, 0xE8]))]
        );
        let events = decode_all(&mut Decoder::new(1024), &client_frame(true, OP_CLOSE, b""));
        assert_eq!(events, vec![Event::Close(Bytes::new())]);
        let events = decode_all(
            &mut Decoder::new(1024),
            &client_frame(true, OP_CLOSE, &[0x03, 0xE8, 0xFF]),
        );
        assert!(matches!(
            events[..],
            [Event::Fail(CLOSE_INVALID_PAYLOAD, _)]
        ));
    }

    #[test]
    fn text_frames_are_reported() {
        let events = decode_all(&mut Decoder::new(1024), &client_frame(true, OP_TEXT, b"hi"));
        assert_eq!(events, vec![Event::Text]);
    }

    #[test]
    fn server_headers_use_the_shortest_length() {
        assert_eq!(binary_header(5), ([0x82, 5, 0, 0, 0, 0, 0, 0, 0, 0], 2));
        assert_eq!(binary_header(126).1, 4);
        assert_eq!(&binary_header(300).0[..4], &[0x82, 126, 0x01, 0x2C]);
        assert_eq!(&binary_header(70_000).0[..2], &[0x82, 127]);
        assert_eq!(binary_header(70_000).1, 10);
        assert_eq!(close_frame(1009, "big")[..4], [0x88, 5, 0x03, 0xF1]);
        assert_eq!(pong(b"a"), vec![0x8A, 1, b'a']);
    }
}
