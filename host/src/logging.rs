//! Routes the host's `tracing` output into the logger slot.
//!
//! The core logs with `tracing` macros (an `event` field carries deepstream's EVENT name,
//! server.md Appendix B). A layer hands every event to the configured logger — the built-in
//! std-out logger or a plugin — so a logger plugin sees the server's own lines as well as
//! every other plugin's.

use std::{cell::Cell, fmt::Write as _, sync::Arc};

use parking_lot::RwLock;
use tracing::{
    Event, Metadata, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{
    Layer,
    layer::{Context, SubscriberExt},
};

use crate::{
    config,
    services::{LogLevel, Logger, builtin::StdoutLogger},
};

/// The logger in force, and whether logging is off altogether (`logLevel: OFF`).
static LOGGER: RwLock<Option<(Arc<dyn Logger>, bool)>> = RwLock::new(None);

thread_local! {
    /// Set while a logger runs, so a logger that itself logs cannot recurse.
    static IN_LOGGER: Cell<bool> = const { Cell::new(false) };
}

/// Installs the routing layer with a std-out logger at INFO until the config says otherwise.
pub fn init() {
    *LOGGER.write() = Some((Arc::new(StdoutLogger::new(LogLevel::Info, false)), false));
    let subscriber = tracing_subscriber::registry().with(Route);
    // A second init (tests) keeps the first subscriber.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Makes `logger` the destination of every log line.
pub fn set_logger(logger: Arc<dyn Logger>, level: config::LogLevel) {
    let off = level == config::LogLevel::Off;
    if let Some(level) = slot_level(level) {
        logger.set_log_level(level);
    }
    *LOGGER.write() = Some((logger, off));
}

/// The slot's level for a config level; `None` for OFF.
pub fn slot_level(level: config::LogLevel) -> Option<LogLevel> {
    match level {
        config::LogLevel::Debug => Some(LogLevel::Debug),
        config::LogLevel::Info => Some(LogLevel::Info),
        config::LogLevel::Warn => Some(LogLevel::Warn),
        config::LogLevel::Error => Some(LogLevel::Error),
        config::LogLevel::Fatal => Some(LogLevel::Fatal),
        config::LogLevel::Off => None,
    }
}

/// The layer that forwards events to the logger slot.
struct Route;

/// An event's fields: deepstream's EVENT name, a namespace, the message, other fields.
#[derive(Default)]
struct Fields {
    /// The `event` field (deepstream EVENT name).
    event: String,
    /// The `plugin` field: plugin log lines are namespaced by plugin.
    namespace: String,
    /// The message followed by the remaining `key=value` pairs.
    message: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "event" => self.event = value.to_owned(),
            "plugin" => self.namespace = value.to_owned(),
            "message" => self.message.insert_str(0, value),
            name => {
                let _ = write!(self.message, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message.insert_str(0, &format!("{value:?}")),
            "event" => self.event = format!("{value:?}"),
            "plugin" => self.namespace = format!("{value:?}"),
            name => {
                let _ = write!(self.message, " {name}={value:?}");
            }
        }
    }
}

impl<S: Subscriber> Layer<S> for Route {
    fn register_callsite(
        &self,
        _metadata: &'static Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // The level can change after start-up (config, plugin logger), so never cache.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _context: Context<'_, S>) -> bool {
        if IN_LOGGER.get() {
            return false;
        }
        // The lock is not held across the logger's call, and a plugin logger that logs from
        // `should_log` is not asked again (the same as from `log`).
        let Some((logger, off)) = LOGGER.read().clone() else {
            return false;
        };
        if off {
            return false;
        }
        IN_LOGGER.set(true);
        let enabled = logger.should_log(LogLevel::from(metadata.level()));
        IN_LOGGER.set(false);
        enabled
    }

    fn on_event(&self, event: &Event<'_>, _context: Context<'_, S>) {
        let Some((logger, _)) = LOGGER.read().clone() else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = LogLevel::from(event.metadata().level());
        if fields.event.is_empty() {
            fields.event = match level {
                LogLevel::Debug => "DEBUG",
                LogLevel::Info => "INFO",
                LogLevel::Warn => "WARN",
                LogLevel::Error | LogLevel::Fatal => "ERROR",
            }
            .to_owned();
        }
        IN_LOGGER.set(true);
        logger.log(
            level,
            &fields.namespace,
            &fields.event,
            fields.message.trim_start(),
        );
        IN_LOGGER.set(false);
    }
}
