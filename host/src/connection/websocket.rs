//! The `ws-binary` transport: one WebSocket per client, one binary frame per message
//! (protocol.md §1.2, §1.7, §1.9, §1.10).
//!
//! One task per connection reads frames into the [`Session`] and writes the connection's
//! queued frames, writing every frame that is ready with one `writev` (so a burst of
//! broadcasts costs one write). Idle connections hold no buffers: reads go into a per-thread
//! scratch buffer and only an incomplete frame is kept (see [`frame`](super::frame)); writes go
//! straight to the socket and only what the socket does not take is kept, until it does. One
//! timer serves both the heartbeat check and the login deadline; shutdown reaches the task
//! through the connection's queue ([`Server::shutdown`] closes every registered connection).

use std::{
    cell::RefCell,
    future::{Future, poll_fn},
    io::{self, IoSlice, Read as _},
    sync::Arc,
    task::Poll,
    time::Duration,
};

use bytes::Bytes;
use socket2::SockRef;
use tokio::{io::Interest, net::TcpStream, time::Instant};

use super::{
    Connection, Flow, Outbound, Session,
    frame::{self, CLOSE_TOO_BIG, Decoder, Event},
};
use crate::{
    config::WebSocketEndpointOptions,
    protocol::{ConnectionAction, Message, Topic},
    server::Server,
};

/// Frames written per turn at most, so one busy connection cannot starve its reader.
const MAX_BATCH: usize = 256;
/// Frames per `writev`.
const WRITE_CHUNK: usize = 64;
/// The per-thread read buffer.
const SCRATCH_SIZE: usize = 64 * 1024;
/// How long a closing connection keeps reading (and discarding) so that the client sees the
/// close frame rather than a reset.
const LINGER: Duration = Duration::from_millis(500);

thread_local! {
    /// Where every connection served by this thread reads into.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_SIZE].into_boxed_slice());
    /// Where the frames of one `writev` are taken from the queue (empty between writes).
    static BATCH: RefCell<Vec<Outbound>> = RefCell::new(Vec::with_capacity(WRITE_CHUNK));
}

/// The socket side of a connection: the decoder and what the socket has not taken yet.
struct Socket {
    stream: TcpStream,
    decoder: Decoder,
    /// Bytes the socket did not take yet; empty (and unallocated) most of the time.
    backlog: Vec<u8>,
    /// How much of `backlog` is written.
    backlog_at: usize,
}

/// Why the task woke up.
enum Wake {
    Read,
    Write,
    Queued,
    Timer,
}

/// What one read produced.
enum Read {
    Data,
    Eof,
    WouldBlock,
}

impl Socket {
    fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Reads what is available and decodes it into `events`.
    ///
    /// A read shorter than the buffer emptied the socket, so it also clears the socket's read
    /// readiness (by answering `WouldBlock` to tokio after keeping the bytes): otherwise the
    /// next wake-up would spend a `recv` only to learn `EAGAIN`. Data arriving after the read
    /// raises a new readiness event, and a peer's close stays visible (tokio never clears
    /// closed states), so nothing is missed.
    fn read(&mut self, events: &mut Vec<Event>) -> io::Result<Read> {
        SCRATCH.with_borrow_mut(|scratch| {
            let mut read = 0;
            let result = self.stream.try_io(Interest::READABLE, || {
                read = (&*SockRef::from(&self.stream)).read(scratch)?;
                if read > 0 && read < scratch.len() {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(())
            });
            match result {
                _ if read > 0 => {
                    self.decoder.feed(&mut scratch[..read], events);
                    Ok(Read::Data)
                }
                Ok(()) => Ok(Read::Eof),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(Read::WouldBlock),
                Err(error) => Err(error),
            }
        })
    }

    /// Writes `slices` (after the backlog); what the socket does not take joins the backlog.
    fn write(&mut self, slices: &[IoSlice<'_>]) -> io::Result<()> {
        let mut written = 0;
        if !self.has_backlog() {
            written = match self.stream.try_write_vectored(slices) {
                Ok(written) => written,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
                Err(error) => return Err(error),
            };
        }
        for slice in slices {
            if written >= slice.len() {
                written -= slice.len();
                continue;
            }
            self.backlog.extend_from_slice(&slice[written..]);
            written = 0;
        }
        Ok(())
    }

    /// Writes a control frame.
    fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        self.write(&[IoSlice::new(frame)])
    }

    /// Writes what the backlog holds, as far as the socket takes it.
    fn flush_backlog(&mut self) -> io::Result<()> {
        while self.backlog_at < self.backlog.len() {
            match self.stream.try_write(&self.backlog[self.backlog_at..]) {
                Ok(written) => self.backlog_at += written,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) => return Err(error),
            }
        }
        self.backlog = Vec::new();
        self.backlog_at = 0;
        Ok(())
    }

    /// Writes up to [`MAX_BATCH`] queued frames; `Ok(true)` when a close was queued (it is
    /// written after the frames before it). `more` is set when frames are left in the queue.
    fn write_queued(&mut self, connection: &Connection, more: &mut bool) -> io::Result<bool> {
        BATCH.with_borrow_mut(|batch| {
            let result = self.write_batches(connection, batch, more);
            // Nothing stays referenced from the thread's buffer.
            batch.clear();
            result
        })
    }

    fn write_batches(
        &mut self,
        connection: &Connection,
        batch: &mut Vec<Outbound>,
        more: &mut bool,
    ) -> io::Result<bool> {
        let mut taken = 0;
        while taken < MAX_BATCH && !self.has_backlog() {
            batch.clear();
            let count = connection.take_queued(batch, WRITE_CHUNK.min(MAX_BATCH - taken));
            if count == 0 {
                return Ok(false);
            }
            taken += count;
            let mut headers = [([0u8; 10], 0usize); WRITE_CHUNK];
            let mut close = false;
            for (item, header) in batch.iter().zip(headers.iter_mut()) {
                match item {
                    Outbound::Frame(frame) => *header = frame::binary_header(frame.len()),
                    Outbound::Close => {
                        close = true;
                        break;
                    }
                }
            }
            let mut slices = [IoSlice::new(&[]); 2 * WRITE_CHUNK + 1];
            let mut used = 0;
            for (item, (header, length)) in batch.iter().zip(&headers) {
                let Outbound::Frame(frame) = item else {
                    break;
                };
                slices[used] = IoSlice::new(&header[..*length]);
                slices[used + 1] = IoSlice::new(frame);
                used += 2;
            }
            if close {
                slices[used] = IoSlice::new(&frame::EMPTY_CLOSE);
                used += 1;
            }
            self.write(&slices[..used])?;
            if close {
                return Ok(true);
            }
        }
        *more = connection.has_queued();
        Ok(false)
    }
}

/// The task that runs one client connection until it closes. `read_ahead` holds bytes the
/// HTTP layer read past the upgrade request.
///
/// The set-up runs here, outside the task: the task's future captures only what it uses and
/// uses it in place, so nothing is stored twice in it (async fn arguments would be).
pub fn serve(
    server: Arc<Server>,
    stream: TcpStream,
    read_ahead: Bytes,
    options: Arc<WebSocketEndpointOptions>,
    handshake: Box<serde_json::Value>,
) -> impl Future<Output = ()> + Send + 'static {
    let (connection, _) = Connection::new(server.next_connection_id(), "ws-binary");
    let registered = server.register_connection(&connection);
    let mut session = Session::new(
        server.clone(),
        connection.clone(),
        options.max_auth_attempts,
        handshake,
    );
    let mut socket = Socket {
        stream,
        decoder: Decoder::new(options.max_message_size),
        backlog: Vec::new(),
        backlog_at: 0,
    };
    let mut events = Vec::new();
    if !read_ahead.is_empty() {
        socket.decoder.feed(&mut read_ahead.to_vec(), &mut events);
    }
    drop(read_ahead);

    let silence_limit = options.heartbeat_interval.max(Duration::from_millis(100)) * 2;
    let mut auth_deadline = options
        .unauthenticated_client_timeout
        .map(|timeout| Instant::now() + timeout);
    async move {
        let mut last_received = Instant::now();
        let timer =
            tokio::time::sleep_until(next_deadline(last_received, silence_limit, auth_deadline));
        tokio::pin!(timer);
        // A close is queued: input is no longer processed, timers queue nothing more.
        let mut closing = false;
        // The last frame is written (or in the backlog): end once the backlog is written.
        let mut ending = false;
        // Whether to linger reading after the close, so that the client reads it.
        let mut linger = true;
        // Whether input is looked at before the queue on the next wake-up.
        let mut read_first = true;

        'connection: loop {
            for event in std::mem::take(&mut events) {
                if ending {
                    break;
                }
                let result = match event {
                    Event::Message(frame) => {
                        if !closing && Box::pin(session.receive(frame)).await == Flow::Close {
                            closing = true;
                            connection.close();
                        }
                        Ok(())
                    }
                    Event::Ping(payload) => socket.write_frame(&frame::pong(&payload)),
                    Event::Close(payload) => {
                        ending = true;
                        linger = false;
                        socket.write_frame(&frame::close_echo(&payload))
                    }
                    Event::Text => {
                        tracing::warn!(
                            event = "INVALID_MESSAGE",
                            connection = connection.id,
                            "text frame on the binary endpoint; closing"
                        );
                        closing = true;
                        connection.close();
                        Ok(())
                    }
                    Event::Fail(code, reason) => {
                        if code == CLOSE_TOO_BIG {
                            tracing::warn!(
                                event = "MAXIMUM_MESSAGE_SIZE_EXCEEDED",
                                connection = connection.id,
                                "{reason}; closing"
                            );
                        } else {
                            tracing::debug!(
                                connection = connection.id,
                                "websocket error: {reason}; closing with {code}"
                            );
                        }
                        ending = true;
                        socket.write_frame(&frame::close_frame(code, reason))
                    }
                };
                if result.is_err() {
                    break 'connection;
                }
            }
            if ending && !socket.has_backlog() {
                break;
            }

            let backlog = socket.has_backlog();
            let want_read = !closing && !ending;
            let want_queue = !backlog && !ending;
            // Polled by hand rather than with `select!`: readiness and the queue's waker live in
            // the socket and the connection, so the task stores no wait futures. Reading and
            // writing the queue take turns first.
            let wake = poll_fn(|cx| {
                if read_first && want_read && socket.stream.poll_read_ready(cx)?.is_ready() {
                    return Poll::Ready(Ok(Wake::Read));
                }
                if want_queue && connection.poll_queued(cx).is_ready() {
                    return Poll::Ready(Ok(Wake::Queued));
                }
                if !read_first && want_read && socket.stream.poll_read_ready(cx)?.is_ready() {
                    return Poll::Ready(Ok(Wake::Read));
                }
                if backlog && socket.stream.poll_write_ready(cx)?.is_ready() {
                    return Poll::Ready(Ok(Wake::Write));
                }
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Ok(Wake::Timer));
                }
                Poll::Pending
            })
            .await;
            let wake: io::Result<Wake> = wake;
            match wake {
                Err(error) => {
                    tracing::debug!(connection = connection.id, "websocket error: {error}");
                    linger = false;
                    break;
                }
                Ok(Wake::Read) => {
                    read_first = false;
                    match socket.read(&mut events) {
                        Ok(Read::Data) => last_received = Instant::now(),
                        Ok(Read::WouldBlock) => {}
                        Ok(Read::Eof) | Err(_) => {
                            linger = false;
                            break;
                        }
                    }
                }
                Ok(Wake::Write) => {
                    if socket.flush_backlog().is_err() {
                        break;
                    }
                }
                Ok(Wake::Queued) => {
                    read_first = true;
                    let mut more = false;
                    match socket.write_queued(&connection, &mut more) {
                        Ok(close) => {
                            if close {
                                closing = true;
                                ending = true;
                            }
                            if more {
                                // Go on after a turn for the reader.
                                connection.wake();
                            }
                        }
                        Err(error) => {
                            tracing::debug!(
                                connection = connection.id,
                                "websocket write failed: {error}"
                            );
                            break;
                        }
                    }
                }
                Ok(Wake::Timer) => {
                    let now = Instant::now();
                    if now.duration_since(last_received) >= silence_limit {
                        tracing::error!(
                            event = "HEARTBEAT_MISSING",
                            connection = connection.id,
                            "Heartbeat missing on websocket, terminating connection"
                        );
                        linger = false;
                        break;
                    }
                    if session.is_authenticated() || closing {
                        auth_deadline = None;
                    } else if auth_deadline.is_some_and(|deadline| deadline <= now) {
                        auth_deadline = None;
                        connection.send(&Message::new(
                            Topic::Connection,
                            ConnectionAction::AuthenticationTimeout,
                        ));
                        closing = true;
                        connection.close();
                    }
                    timer.as_mut().reset(next_deadline(
                        last_received,
                        silence_limit,
                        auth_deadline,
                    ));
                }
            }
        }
        session.closed();
        drop(registered);
        drop(connection);
        if linger {
            // Boxed: only closing connections pay for the linger's timer.
            let _ = Box::pin(tokio::time::timeout(LINGER, discard_input(socket.stream))).await;
        }
    }
}

/// The next time the timer must look: the heartbeat check or the login deadline.
fn next_deadline(
    last_received: Instant,
    silence_limit: Duration,
    auth: Option<Instant>,
) -> Instant {
    let heartbeat = last_received + silence_limit;
    auth.map_or(heartbeat, |auth| auth.min(heartbeat))
}

/// Shuts the sending side and reads until the client closes, so that unread input does not
/// turn the close into a reset that could overtake the close frame.
async fn discard_input(mut stream: TcpStream) {
    use tokio::io::AsyncWriteExt;
    if stream.shutdown().await.is_err() {
        return;
    }
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        let read = SCRATCH.with_borrow_mut(|scratch| stream.try_read(scratch));
        match read {
            Ok(0) => return,
            Err(error) if error.kind() != io::ErrorKind::WouldBlock => return,
            _ => {}
        }
    }
}
