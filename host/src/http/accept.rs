//! Accepting connections, including when the process has no file descriptor left.
//!
//! When `accept` fails for lack of descriptors (`EMFILE`, or `ENFILE` system-wide), the
//! connection stays queued in the kernel: its client waits without an answer, and every retry
//! fails the same way. So one spare descriptor is held for that moment: it is closed, the
//! waiting connection is accepted and closed at once (its client sees the connection end
//! instead of hanging) and the spare is opened again. The operator gets one log line naming the
//! limit when it is reached and one when connections are accepted again, not one per attempt.
//! Without a spare (it could not be opened), connections wait in the backlog and accepting is
//! retried every [`RETRY_AFTER`].

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
        let spare = match open_spare() {
            Ok(spare) => Some(spare),
            Err(error) => {
                tracing::warn!(
                    event = "CONNECTION_ERROR",
                    "cannot hold a spare file descriptor ({error}): at the open-files limit new \
                     connections will wait instead of being closed"
                );
                None
            }
        };
        Acceptor {
            listener,
            spare,
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
                        tracing::info!(
                            event = "INFO",
                            "accepting connections again (refused {refused} while out of file \
                             descriptors)"
                        );
                        // Its reopening may have failed while descriptors were short.
                        if self.spare.is_none() {
                            self.spare = open_spare().ok();
                        }
                    }
                    return accepted;
                }
                Err(error) if out_of_descriptors(&error) => self.refuse_one(&error).await,
                Err(error) => {
                    tracing::error!(
                        event = "CONNECTION_ERROR",
                        "cannot accept a connection: {error}; retrying in {} ms",
                        RETRY_AFTER.as_millis()
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
            let then = if self.spare.is_some() {
                "new connections are closed at once until some close"
            } else {
                "new connections wait until some close"
            };
            tracing::error!(
                event = "CONNECTION_ERROR",
                "cannot accept connections: {error} ({}); {then}",
                limit(error)
            );
        }
        let mut closed = false;
        if self.spare.take().is_some() {
            if let Ok(Ok((stream, _))) =
                tokio::time::timeout(RETRY_AFTER, self.listener.accept()).await
            {
                drop(stream);
                closed = true;
                if let Some(refused) = &mut self.refused {
                    *refused += 1;
                }
            }
            self.spare = open_spare().ok();
        }
        if !closed {
            // Nothing to give up, or something else took the descriptor: wait instead of
            // failing in a loop.
            tokio::time::sleep(RETRY_AFTER).await;
        }
    }
}

fn open_spare() -> io::Result<File> {
    File::open("/dev/null")
}

fn out_of_descriptors(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Which limit was reached, for the log line: the process's (what `ulimit -n` shows) or the
/// system's.
fn limit(error: &io::Error) -> String {
    if error.raw_os_error() == Some(libc::ENFILE) {
        return "the system-wide open files limit, fs.file-max".into();
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        format!("open files limit: {}", limit.rlim_cur)
    } else {
        "the open files limit".into()
    }
}
