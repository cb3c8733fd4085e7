//! The ws-binary transport at the TCP level: how bytes arrive must not matter. The server
//! treats a read shorter than its buffer as "the socket is empty" and waits for the next
//! readiness event instead of asking again; these pin that nothing is missed that way. And a
//! server out of file descriptors refuses new connections at once and serves the open ones.

use std::{
    io::{Read, Write},
    net::{Shutdown, TcpStream},
    thread::sleep,
    time::Duration,
};

use bytes::Bytes;
use deepstream::protocol::{self, AuthAction, ConnectionAction, Message, Topic};
use deepstream_tests::{ServerProcess, base_config, free_port};

fn server() -> ServerProcess {
    let port = free_port();
    ServerProcess::start(
        &format!("{}auth:\n  - type: none\n", base_config(port)),
        port,
    )
}

/// A TCP connection that has done the WebSocket upgrade by hand.
fn upgraded(port: u16) -> TcpStream {
    try_upgrade(port).expect("upgrade")
}

/// Connects and asks for the WebSocket upgrade; an error when the server ends the connection
/// instead of answering.
fn try_upgrade(port: u16) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET /deepstream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        stream.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    Ok(stream)
}

/// `message` as a masked client binary frame (mask key 0: the payload reads as is).
fn client_frame(message: &Message) -> Vec<u8> {
    let payload = protocol::encode(message);
    assert!(payload.len() < 126, "short frames only");
    let mut frame = vec![0x82, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(&payload);
    frame
}

fn challenge() -> Message {
    Message {
        url: Some("ws://127.0.0.1/deepstream".into()),
        protocol_version: Some("0.1a".into()),
        sdk_version: Some("7.0.5".into()),
        sdk_type: Some("javascript".into()),
        ..Message::new(Topic::Connection, ConnectionAction::Challenge)
    }
}

/// The next server frame's payload, decoded; `None` at the end of the stream.
fn next_message(stream: &mut TcpStream) -> Option<Message> {
    let mut head = [0u8; 2];
    match stream.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
        Err(e) => panic!("reading a frame: {e}"),
    }
    assert_eq!(head[0], 0x82, "a final binary frame, got {head:02x?}");
    let length = match head[1] {
        126 => {
            let mut ext = [0u8; 2];
            stream.read_exact(&mut ext).expect("length");
            u16::from_be_bytes(ext) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload).expect("payload");
    Some(protocol::decode(Bytes::from(payload)).expect("decodable frame"))
}

#[test]
fn a_frame_arriving_in_pieces_is_read_whole() {
    let server = server();
    let mut stream = upgraded(server.port);
    let frame = client_frame(&challenge());
    // Each piece is a short read for the server; the next must still wake it.
    for piece in frame.chunks(frame.len() / 3 + 1) {
        stream.write_all(piece).expect("writing a piece");
        sleep(Duration::from_millis(100));
    }
    let accept = next_message(&mut stream).expect("ACCEPT");
    assert_eq!(
        (accept.topic, accept.action),
        (Topic::Connection, ConnectionAction::Accept as i32),
        "{accept:?}"
    );
}

#[test]
fn a_message_sent_with_the_end_of_input_is_answered_and_the_close_is_seen() {
    let server = server();
    let mut stream = upgraded(server.port);
    let mut bytes = client_frame(&challenge());
    bytes.extend(client_frame(
        &Message::new(Topic::Auth, AuthAction::Request).with_json(&serde_json::json!({})),
    ));
    // Data and FIN together: the read that takes the data is short, and the end of input must
    // not be lost with the readiness it clears.
    stream.write_all(&bytes).expect("writing");
    stream.shutdown(Shutdown::Write).expect("half close");
    let accept = next_message(&mut stream).expect("ACCEPT");
    assert_eq!(accept.action, ConnectionAction::Accept as i32, "{accept:?}");
    let login = next_message(&mut stream).expect("AUTH_SUCCESSFUL");
    assert_eq!(
        (login.topic, login.action),
        (Topic::Auth, AuthAction::AuthSuccessful as i32),
        "{login:?}"
    );
    // The server ends the connection within the read timeout instead of waiting for more.
    assert!(
        next_message(&mut stream).is_none(),
        "nothing after AUTH_SUCCESSFUL but the end of the connection"
    );
}

/// Sets the server's open-files limit (soft and hard).
fn limit_open_files(server: &ServerProcess, limit: usize) {
    let limit = libc::rlimit {
        rlim_cur: limit as libc::rlim_t,
        rlim_max: limit as libc::rlim_t,
    };
    // SAFETY: prlimit reads the one rlimit it is given and writes nothing (no old-limit
    // pointer).
    let result = unsafe {
        libc::prlimit(
            server.pid() as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(
        result,
        0,
        "prlimit on the server: {}",
        std::io::Error::last_os_error()
    );
}

/// How many descriptors the server has open, once the count stops moving (the start-up check
/// opens and drops a connection the server may not have closed yet).
fn open_files(server: &ServerProcess) -> usize {
    let count = || {
        std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
            .expect("the server's /proc/PID/fd")
            .count()
    };
    let mut last = count();
    for _ in 0..50 {
        sleep(Duration::from_millis(100));
        let now = count();
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the server's descriptor count did not settle (last {last})");
}

#[test]
fn running_out_of_file_descriptors_refuses_new_connections_and_serves_the_others() {
    let port = free_port();
    // At INFO, for the line that says connections are accepted again.
    let server = ServerProcess::start(
        &format!(
            "{}auth:\n  - type: none\nlogger:\n  options:\n    logLevel: INFO\n",
            base_config(port)
        ),
        port,
    );
    limit_open_files(&server, open_files(&server) + 4);

    let mut held = Vec::new();
    let refused = loop {
        assert!(
            held.len() < 50,
            "no connection refused under a limit of a few descriptors"
        );
        match try_upgrade(server.port) {
            Ok(stream) => held.push(stream),
            // The server closes it at once rather than leaving it waiting (the read timeout
            // would be an error of kind WouldBlock/TimedOut, not an end of stream or a reset).
            Err(error) => break error,
        }
    };
    assert!(
        matches!(
            refused.kind(),
            std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe
        ),
        "a refused connection is ended, not left waiting: {refused}"
    );
    assert!(
        held.len() >= 2,
        "connections within the limit were served: {}",
        held.len()
    );
    assert!(
        server.wait_for_output("open files limit: ", Duration::from_secs(5)),
        "the log names the open-files limit"
    );
    for _ in 0..3 {
        assert!(try_upgrade(server.port).is_err(), "still at the limit");
    }

    // The connections already open are served as before.
    let stream = &mut held[0];
    stream
        .write_all(&client_frame(&challenge()))
        .expect("challenge");
    let accept = next_message(stream).expect("ACCEPT");
    assert_eq!(accept.action, ConnectionAction::Accept as i32, "{accept:?}");

    // Once some close, new connections are served again.
    held.truncate(held.len() - 2);
    let mut again = None;
    for _ in 0..50 {
        if let Ok(stream) = try_upgrade(server.port) {
            again = Some(stream);
            break;
        }
        sleep(Duration::from_millis(100));
    }
    assert!(
        again.is_some(),
        "a connection is served after others closed"
    );
    let (_, output) = server.stop();
    assert_eq!(
        output.matches("cannot accept connections").count(),
        1,
        "one line when the limit is reached, not one per attempt:\n{output}"
    );
    assert!(
        output.contains("accepting connections again (refused "),
        "{output}"
    );
}
