//! Accepting connections, including when the process has no file descriptor left.
//!
//! When `accept` fails for lack of descriptors (`EMFILE`, or `ENFILE` system-wide), the
//! connection stays queued in the kernel: its client waits without an answer, and every retry
//! fails the same way. So one spare descriptor is held for that moment: it is closed, the
//! waiting connection is accepted and closed at once (its client sees the connection end
//! instead of hanging) and the spare is opened again. The operator gets one log line naming the
//! limit when it is reached and one when connections are accepted again, not one per attempt.

use std::{fs::File, io, net::SocketAddr, time::Duration};

use tokio::net::{TcpListener, TcpStream};

/// How long to wait before trying again after an error that refusing cannot clear.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// The listener and what handling descriptor exhaustion needs.
pub struct Acceptor {
    /// Where connections arrive.
    listener: TcpListener,
    /// Given up for a moment to accept (and close) a connection that cannot be served.
    spare: Option<File>,
    /// Connections closed unserved since the limit was reached; `None` while accepting
    /// normally.
    refused: Option<u64>,
}

impl Acceptor {
    pub fn new(listener: TcpListener) -> Acceptor {
        Acceptor {
            listener,
            spare: open_spare(),
            refused: None,
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next connection that can be served.
    pub async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok(accepted) => {
                    if let Some(refused) = self.refused.take() {
                        tracing::warn!(
                            event = "CONNECTION_ERROR",
                            "accepting connections again (refused {refused} while out of file \
                             descriptors)"
                        );
                    }
                    return accepted;
                }
                Err(error) if out_of_descriptors(&error) => self.refuse_one(&error).await,
                Err(error) => {
                    tracing::error!(
                        event = "CONNECTION_ERROR",
                        "cannot accept a connection: {error}; retrying in 100 ms"
                    );
                    tokio::time::sleep(RETRY_AFTER).await;
                }
            }
        }
    }

    /// Closes the spare, accepts the waiting connection and closes it, reopens the spare.
    async fn refuse_one(&mut self, error: &io::Error) {
        if self.refused.is_none() {
            self.refused = Some(0);
            tracing::error!(
                event = "CONNECTION_ERROR",
                "cannot accept connections: {error} (open files limit: {}); new connections \
                 are closed at once until some close",
                open_files_limit()
            );
        }
        let had_spare = self.spare.take().is_some();
        if had_spare
            && let Ok(Ok((stream, _))) =
                tokio::time::timeout(RETRY_AFTER, self.listener.accept()).await
        {
            drop(stream);
            if let Some(refused) = &mut self.refused {
                *refused += 1;
            }
        }
        self.spare = open_spare();
        if self.spare.is_none() {
            // Something else took the descriptor: nothing to give up, so wait instead of
            // failing in a loop.
            tokio::time::sleep(RETRY_AFTER).await;
        }
    }
}

fn open_spare() -> Option<File> {
    File::open("/dev/null").ok()
}

fn out_of_descriptors(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// The soft `RLIMIT_NOFILE` (what `ulimit -n` shows), for the log line.
fn open_files_limit() -> String {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur.to_string()
    } else {
        "unknown".into()
    }
}
