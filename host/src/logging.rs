//! Routes the host's `tracing` output into the logger slot.
//!
//! The core logs with `tracing` macros (an `event` field carries deepstream's EVENT name,
//! server.md Appendix B). A layer hands every event to the configured logger — the built-in
//! std-out logger or a plugin — so a logger plugin sees the server's own lines as well as
//! every other plugin's. WARN, ERROR and FATAL lines also go to monitoring's `onErrorLog`
//! (server.md §2.4.6).

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
    services::{LogLevel, Logger, Monitoring, builtin::BuiltinLogger},
};

/// The logger in force, and whether logging is off altogether (`logLevel: OFF`).
static LOGGER: RwLock<Option<(Arc<dyn Logger>, bool)>> = RwLock::new(None);

/// Told about every WARN, ERROR and FATAL line that is logged.
static MONITORING: RwLock<Option<Arc<dyn Monitoring>>> = RwLock::new(None);

thread_local! {
    /// Set while a logger runs, so a logger that itself logs cannot recurse.
    static IN_LOGGER: Cell<bool> = const { Cell::new(false) };
}

/// Installs the routing layer with a std-out logger at INFO until the config says otherwise.
pub fn init() {
    *LOGGER.write() = Some((Arc::new(BuiltinLogger::text(LogLevel::Info, false)), false));
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

/// Makes `monitoring` hear of the WARN, ERROR and FATAL lines logged from now on.
pub fn set_monitoring(monitoring: Arc<dyn Monitoring>) {
    *MONITORING.write() = Some(monitoring);
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

impl Fields {
    /// Hands the line to the logger and, from WARN up, to monitoring's `onErrorLog`.
    fn deliver(&self, level: LogLevel, logger: &dyn Logger, monitoring: Option<&dyn Monitoring>) {
        let message = self.message.trim_start();
        logger.log(level, &self.namespace, &self.event, message);
        if level >= LogLevel::Warn
            && let Some(monitoring) = monitoring
        {
            monitoring.on_error_log(level, &self.event, message);
        }
    }
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
        let monitoring = MONITORING.read().clone();
        // Neither a logger nor a monitoring plugin that logs while called is heard again.
        IN_LOGGER.set(true);
        fields.deliver(level, logger.as_ref(), monitoring.as_deref());
        IN_LOGGER.set(false);
    }
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;

    use super::*;
    use crate::services::Lifecycle;

    /// Keeps what it is given: (level, event, message) per call.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(LogLevel, String, String)>>);

    impl Lifecycle for Recorder {
        fn description(&self) -> String {
            "recorder".into()
        }
    }

    impl Logger for Recorder {
        fn should_log(&self, _level: LogLevel) -> bool {
            true
        }

        fn set_log_level(&self, _level: LogLevel) {}

        fn log(&self, level: LogLevel, _namespace: &str, event: &str, message: &str) {
            self.0.lock().push((level, event.into(), message.into()));
        }
    }

    impl Monitoring for Recorder {
        fn on_error_log(&self, level: LogLevel, event: &str, message: &str) {
            self.0.lock().push((level, event.into(), message.into()));
        }
    }

    #[test]
    fn monitoring_hears_of_warnings_and_errors_only() {
        let (logger, monitoring) = (Recorder::default(), Recorder::default());
        for (level, event) in [
            (LogLevel::Debug, "A"),
            (LogLevel::Info, "B"),
            (LogLevel::Warn, "C"),
            (LogLevel::Error, "D"),
            (LogLevel::Fatal, "E"),
        ] {
            let fields = Fields {
                event: event.into(),
                namespace: String::new(),
                message: format!(" line {event}"),
            };
            fields.deliver(level, &logger, Some(&monitoring));
        }
        assert_eq!(logger.0.lock().len(), 5, "the logger gets every line");
        assert_eq!(
            *monitoring.0.lock(),
            [
                (LogLevel::Warn, "C".into(), "line C".into()),
                (LogLevel::Error, "D".into(), "line D".into()),
                (LogLevel::Fatal, "E".into(), "line E".into()),
            ]
        );
    }
}
