//! Plugin-side logging: `tracing` events inside a plugin reach the host's logger.
//!
//! Each library has its own copy of `tracing` with its own global dispatcher, invisible to
//! the host. `install` makes that dispatcher a small subscriber that formats every event and
//! hands it to the host through `HostServices::log`. It also installs a panic hook so the
//! panic message of a caught plugin panic is logged by the host rather than printed raw.

use std::fmt::Write as _;
use std::sync::OnceLock;

use abi_stable::std_types::{RArc, RStr};
use tracing::{
    Event, Metadata, Subscriber,
    field::{Field, Visit},
    span,
};

use crate::abi::{HostServices_TO, LogLevel};

/// The host services of the library, set once in `init_library`.
static HOST: OnceLock<HostServices_TO<'static, RArc<()>>> = OnceLock::new();

/// Installs the forwarding subscriber and the panic hook; later calls are no-ops.
pub(crate) fn install(host: HostServices_TO<'static, RArc<()>>) {
    if HOST.set(host).is_err() {
        return;
    }
    // Ignore the error: a plugin that set its own global subscriber keeps it.
    let _ = tracing::subscriber::set_global_default(Forwarder);
    std::panic::set_hook(Box::new(|info| {
        if let Some(host) = HOST.get() {
            host.log(
                LogLevel::Error,
                RStr::from("panic"),
                RStr::from(info.to_string().as_str()),
            );
        }
    }));
}

/// Logs directly to the host (used by the SDK's guards).
pub(crate) fn host_log(level: LogLevel, target: &str, message: &str) {
    if let Some(host) = HOST.get() {
        host.log(level, target.into(), message.into());
    }
}

/// The subscriber installed as the plugin's global default.
struct Forwarder;

/// Collects an event's fields into one line: the message first, then `key=value` pairs.
struct Line(String);

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            let _ = write!(self.0, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            let _ = write!(self.0, " {}={:?}", field.name(), value);
        }
    }
}

impl Subscriber for Forwarder {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        HOST.get()
            .is_some_and(|host| host.log_enabled(LogLevel::from(metadata.level())))
    }

    fn new_span(&self, _span: &span::Attributes<'_>) -> span::Id {
        // Spans are not forwarded; every span shares one id.
        span::Id::from_u64(1)
    }

    fn record(&self, _span: &span::Id, _values: &span::Record<'_>) {}

    fn record_follows_from(&self, _span: &span::Id, _follows: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = Line(String::new());
        event.record(&mut line);
        host_log(
            LogLevel::from(event.metadata().level()),
            event.metadata().target(),
            &line.0,
        );
    }

    fn enter(&self, _span: &span::Id) {}

    fn exit(&self, _span: &span::Id) {}
}
