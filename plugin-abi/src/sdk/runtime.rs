//! The plugin's own tokio runtime and the guards that keep panics on the plugin's side.
//!
//! A plugin library links its own copy of tokio, which cannot see the host's runtime. Each
//! library therefore owns a small multi-thread runtime whose worker drives its timers and
//! sockets, and every future handed to the host enters that runtime around each poll, so the
//! host's executor still does the polling (no thread hop).

use std::{
    any::Any,
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll},
};

use abi_stable::std_types::{RResult, RString};
use async_ffi::FfiFuture;

use crate::abi::PluginFuture;

/// The library-wide runtime, built on first use and never dropped (nothing is ever unloaded).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("deepstream-plugin")
            .enable_all()
            .build()
            .expect("the plugin runtime could not start a thread")
    })
}

/// Runs `fut` as a background task on the plugin's runtime.
pub fn spawn<F>(fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime().spawn(fut)
}

/// Turns a panic payload into the message it carried (for an error or a log line).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic payload".to_owned()
    }
}

/// Runs a sync plugin body; a panic becomes `Err` instead of ending the server (abi_stable
/// aborts the process when a panic reaches the FFI boundary).
pub(crate) fn guard<T>(what: &str, body: impl FnOnce() -> T) -> Result<T, RString> {
    catch_unwind(AssertUnwindSafe(body)).map_err(|payload| {
        format!("plugin panicked in {what}: {}", panic_message(&*payload)).into()
    })
}

/// Enters the plugin runtime around every poll and turns a panic into an error result.
struct Guarded<F> {
    /// The plugin's future.
    inner: F,
    /// Which operation, for the panic message.
    what: &'static str,
}

impl<T, F> Future for Guarded<F>
where
    F: Future<Output = Result<T, String>>,
{
    type Output = RResult<T, RString>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `inner` is never moved out of the pinned `Guarded`.
        let this = unsafe { self.get_unchecked_mut() };
        let inner = unsafe { Pin::new_unchecked(&mut this.inner) };
        // Entered inside the guard too: building the runtime can fail (and panic).
        match catch_unwind(AssertUnwindSafe(|| {
            let _entered = runtime().enter();
            inner.poll(cx)
        })) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => Poll::Ready(result.map_err(RString::from).into()),
            Err(payload) => Poll::Ready(RResult::RErr(
                format!(
                    "plugin panicked in {}: {}",
                    this.what,
                    panic_message(&*payload)
                )
                .into(),
            )),
        }
    }
}

/// Wraps a plugin future for the host: plugin runtime entered, panics caught.
pub(crate) fn ffi_future<T, F>(what: &'static str, fut: F) -> PluginFuture<T>
where
    F: Future<Output = Result<T, String>> + Send + 'static,
    T: 'static,
{
    FfiFuture::new(Guarded { inner: fut, what })
}
