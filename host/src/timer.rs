//! Delayed callbacks and background work for protocol timeouts (listen response, the RPC
//! timeout sweeper).
//!
//! Timeouts are started from wherever a message is handled, including cluster callbacks that
//! may run outside the runtime, so the runtime is captured when the handler is built.

use std::time::Duration;

use tokio::runtime::Handle;

/// Spawns timeout callbacks on the server's runtime.
pub struct Timers {
    /// The runtime the server was built in; `None` when built outside one (`validate`), where
    /// nothing ever runs.
    runtime: Option<Handle>,
}

impl Timers {
    /// Captures the runtime this is called on, if any.
    pub fn on_current_runtime() -> Self {
        Timers {
            runtime: Handle::try_current().ok(),
        }
    }

    /// Runs `callback` once `delay` has passed. Callbacks check themselves whether what they
    /// time out is still pending, so nothing is ever cancelled: each one is a task until
    /// `delay` has passed, fine for rare timeouts, not for one per message (see `rpc::Calls`).
    pub fn after(&self, delay: Duration, callback: impl FnOnce() + Send + 'static) {
        match &self.runtime {
            Some(runtime) => {
                runtime.spawn(async move {
                    tokio::time::sleep(delay).await;
                    callback();
                });
            }
            None => tracing::error!(
                event = "TIMEOUT",
                "no runtime to run a {} ms timeout on",
                delay.as_millis()
            ),
        }
    }

    /// Runs a future on the server's runtime (a pending cluster lock, periodic work).
    pub fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        match &self.runtime {
            Some(runtime) => {
                runtime.spawn(future);
            }
            None => tracing::error!(event = "TIMEOUT", "no runtime to run background work on"),
        }
    }
}
