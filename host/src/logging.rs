//! Routes the host's `tracing` output into the logger slot.
//!
//! The core logs with `tracing` macros (an `event` field carries deepstream's EVENT name,
//! server.md Appendix B). A layer hands every event to the configured logger — the built-in
//! std-out logger or a plugin — so a logger plugin sees the server's own lines as well as
//! every other plugin's. WARN and ERROR lines also go to monitoring's `onErrorLog` (server.md
//! §2.4.6), whatever the logger's level, so monitoring counts errors even when they are not
//! printed. (`tracing` has no FATAL level: a plugin's FATAL line arrives as ERROR.) Unlike the
//! reference's pino logger, which reports ERROR and up of the root logger only, the rule is
//! the same for every logger and for plugin lines.

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

/// Told about every WARN and ERROR line.
static MONITORING: RwLock<Option<Arc<dyn Monitoring>>> = RwLock::new(None);

thread_local! {
    /// Set while a logger or monitoring runs, so one that itself logs cannot recurse.
    static IN_LOGGER: Cell<bool> = const { Cell::new(false) };
}

/// Holds [`IN_LOGGER`] set on this thread; clears it when dropped, even by a panic.
struct InLogger;

impl InLogger {
    /// `None` when this thread is already inside a logger or monitoring call.
    fn enter() -> Option<InLogger> {
        if IN_LOGGER.replace(true) {
            return None;
        }
        Some(InLogger)
    }
}

impl Drop for InLogger {
    fn drop(&mut self) {
        IN_LOGGER.set(false);
    }
}

/// The logger, if it writes `level` lines (asked without holding the lock).
fn logger_for(level: LogLevel) -> Option<Arc<dyn Logger>> {
    let (logger, off) = LOGGER.read().clone()?;
    (!off && logger.should_log(level)).then_some(logger)
}

/// Monitoring, for the lines it hears of.
fn monitoring_for(level: LogLevel) -> Option<Arc<dyn Monitoring>> {
    if level >= LogLevel::Warn {
        MONITORING.read().clone()
    } else {
        None
    }
}

/// Installs the routing layer with a std-out logger at INFO until the config says otherwise.
pub fn init() {
    use_startup_logger();
    let subscriber = tracing_subscriber::registry().with(Route);
    // A second init (tests) keeps the first subscriber.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// The std-out logger at INFO, as before the config is read.
fn use_startup_logger() {
    *LOGGER.write() = Some((Arc::new(BuiltinLogger::text(LogLevel::Info, false)), false));
}

/// Makes `logger` the destination of every log line.
pub fn set_logger(logger: Arc<dyn Logger>, level: config::LogLevel) {
    let off = level == config::LogLevel::Off;
    if let Some(level) = slot_level(level) {
        logger.set_log_level(level);
    }
    *LOGGER.write() = Some((logger, off));
}

/// Makes `monitoring` hear of the WARN and ERROR lines logged from now on.
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
    /// Hands the line to the logger (when it writes it) and to monitoring (when it hears of it).
    fn deliver(
        &self,
        level: LogLevel,
        logger: Option<&dyn Logger>,
        monitoring: Option<&dyn Monitoring>,
    ) {
        let message = self.message.trim_start();
        if let Some(logger) = logger {
            logger.log(level, &self.namespace, &self.event, message);
        }
        if let Some(monitoring) = monitoring {
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
        // A plugin logger that logs from `should_log` is not asked again (the same as from
        // `log`).
        let Some(_inside) = InLogger::enter() else {
            return false;
        };
        let level = LogLevel::from(metadata.level());
        monitoring_for(level).is_some() || logger_for(level).is_some()
    }

    fn on_event(&self, event: &Event<'_>, _context: Context<'_, S>) {
        let Some(_inside) = InLogger::enter() else {
            return;
        };
        let level = LogLevel::from(event.metadata().level());
        let (logger, monitoring) = (logger_for(level), monitoring_for(level));
        let mut fields = Fields::default();
        event.record(&mut fields);
        if fields.event.is_empty() {
            fields.event = match level {
                LogLevel::Debug => "DEBUG",
                LogLevel::Info => "INFO",
                LogLevel::Warn => "WARN",
                LogLevel::Error | LogLevel::Fatal => "ERROR",
            }
            .to_owned();
        }
        fields.deliver(level, logger.as_deref(), monitoring.as_deref());
    }
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;

    use super::*;
    use crate::services::Lifecycle;

    /// Keeps the event of every line it is given; as a logger, prints nothing below
    /// `threshold`.
    struct Recorder {
        threshold: LogLevel,
        heard: Mutex<Vec<String>>,
    }

    impl Recorder {
        fn new(threshold: LogLevel) -> Arc<Recorder> {
            Arc::new(Recorder {
                threshold,
                heard: Mutex::default(),
            })
        }

        fn events(&self) -> Vec<String> {
            self.heard.lock().clone()
        }
    }

    impl Lifecycle for Recorder {
        fn description(&self) -> String {
            "recorder".into()
        }
    }

    impl Logger for Recorder {
        fn should_log(&self, level: LogLevel) -> bool {
            level >= self.threshold
        }

        fn set_log_level(&self, _level: LogLevel) {}

        fn log(&self, _level: LogLevel, _namespace: &str, event: &str, _message: &str) {
            self.heard.lock().push(event.into());
        }
    }

    impl Monitoring for Recorder {
        fn on_error_log(&self, _level: LogLevel, event: &str, _message: &str) {
            self.heard.lock().push(event.into());
        }
    }

    #[test]
    fn monitoring_hears_of_warnings_and_errors_even_when_the_logger_prints_none() {
        init();
        let monitoring = Recorder::new(LogLevel::Debug);
        let logger = Recorder::new(LogLevel::Fatal);
        // Tests that build a server install their own logger and monitoring: try until both
        // of ours were in place for one round.
        let heard = (0..50).any(|_| {
            monitoring.heard.lock().clear();
            set_logger(logger.clone(), config::LogLevel::Fatal);
            set_monitoring(monitoring.clone());
            tracing::info!(event = "TEST_INFO", "not an error");
            tracing::warn!(event = "TEST_WARN", "a warning");
            tracing::error!(event = "TEST_ERROR", "an error");
            monitoring.events() == ["TEST_WARN", "TEST_ERROR"]
        });
        assert!(heard, "monitoring heard {:?}", monitoring.events());
        assert!(
            !logger
                .events()
                .iter()
                .any(|event| event.starts_with("TEST_")),
            "the logger printed {:?}",
            logger.events()
        );
        use_startup_logger();
    }
}
