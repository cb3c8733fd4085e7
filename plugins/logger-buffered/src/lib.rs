//! deepstream's documented example logger: "buffers debug logs in memory until an error
//! occurs". Lines below `flushLevel` are kept (the last `bufferSize` of them) instead of being
//! written; a line at `flushLevel` or above writes the buffered lines out, in order, followed
//! by itself. So a quiet server prints nothing, and an error arrives with its context.

use std::{
    collections::VecDeque,
    fs::{File, OpenOptions},
    io::Write,
    path::PathBuf,
};

use deepstream_plugin::sdk::{Context, LogLevel, Logger, Plugin};
use parking_lot::Mutex;
use serde::Deserialize;

/// Where flushed lines go.
enum Output {
    Stderr,
    File(File),
}

/// The buffer and its settings.
pub struct BufferedLogger {
    /// Lines at or above this level flush the buffer and are written.
    flush_level: LogLevel,
    /// Lines below this level are dropped outright.
    min_level: Mutex<LogLevel>,
    /// How many lines the buffer keeps; older ones are dropped first.
    capacity: usize,
    /// The kept lines, oldest first, and the output they are flushed to.
    state: Mutex<(VecDeque<String>, Output)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Options {
    /// Lines kept in memory (default 100).
    #[serde(default = "default_buffer_size")]
    buffer_size: usize,
    /// Level that flushes the buffer: DEBUG, INFO, WARN, ERROR or FATAL (default ERROR).
    #[serde(default = "default_flush_level")]
    flush_level: String,
    /// Lowest level buffered at all (default DEBUG).
    #[serde(default = "default_log_level")]
    log_level: String,
    /// Append flushed lines to this file instead of stderr.
    #[serde(default)]
    file: Option<PathBuf>,
}

fn default_buffer_size() -> usize {
    100
}

fn default_flush_level() -> String {
    "ERROR".into()
}

fn default_log_level() -> String {
    "DEBUG".into()
}

fn parse_level(key: &str, text: &str) -> Result<LogLevel, String> {
    match text.to_ascii_uppercase().as_str() {
        "DEBUG" => Ok(LogLevel::Debug),
        "INFO" => Ok(LogLevel::Info),
        "WARN" => Ok(LogLevel::Warn),
        "ERROR" => Ok(LogLevel::Error),
        "FATAL" => Ok(LogLevel::Fatal),
        _ => Err(format!(
            "options.{key}: unknown level {text:?} (DEBUG, INFO, WARN, ERROR, FATAL)"
        )),
    }
}

fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Debug => "DEBUG",
        LogLevel::Info => "INFO",
        LogLevel::Warn => "WARN",
        LogLevel::Error => "ERROR",
        LogLevel::Fatal => "FATAL",
    }
}

impl Plugin for BufferedLogger {
    type Options = Options;

    fn new(_context: Context, options: Options) -> Result<Self, String> {
        if options.buffer_size == 0 {
            return Err("options.bufferSize: must be at least 1".into());
        }
        let output = match &options.file {
            None => Output::Stderr,
            Some(path) => Output::File(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("options.file: cannot open {}: {e}", path.display()))?,
            ),
        };
        Ok(BufferedLogger {
            flush_level: parse_level("flushLevel", &options.flush_level)?,
            min_level: Mutex::new(parse_level("logLevel", &options.log_level)?),
            capacity: options.buffer_size,
            state: Mutex::new((VecDeque::with_capacity(options.buffer_size), output)),
        })
    }

    fn description(&self) -> String {
        format!(
            "buffered logger keeping {} lines until {}",
            self.capacity,
            level_name(self.flush_level)
        )
    }
}

impl Logger for BufferedLogger {
    fn should_log(&self, level: LogLevel) -> bool {
        level >= *self.min_level.lock()
    }

    fn set_log_level(&self, level: LogLevel) {
        *self.min_level.lock() = level;
    }

    fn log(&self, level: LogLevel, namespace: &str, event: &str, message: &str) {
        if !self.should_log(level) {
            return;
        }
        let line = if namespace.is_empty() {
            format!("{} | {event} | {message}", level_name(level))
        } else {
            format!("{} | {namespace} | {event} | {message}", level_name(level))
        };
        let mut state = self.state.lock();
        let (buffer, output) = &mut *state;
        if level < self.flush_level {
            if buffer.len() == self.capacity {
                buffer.pop_front();
            }
            buffer.push_back(line);
            return;
        }
        let mut text = String::new();
        for kept in buffer.drain(..) {
            text.push_str(&kept);
            text.push('\n');
        }
        text.push_str(&line);
        text.push('\n');
        // A logger has nowhere to report its own write failure.
        let _ = match output {
            Output::Stderr => std::io::stderr().write_all(text.as_bytes()),
            Output::File(file) => file.write_all(text.as_bytes()),
        };
    }
}

deepstream_plugin::export_plugin! {
    name: "logger-buffered",
    logger: BufferedLogger,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logger(file: &std::path::Path, buffer_size: usize) -> BufferedLogger {
        let options = Options {
            buffer_size,
            flush_level: "ERROR".into(),
            log_level: "DEBUG".into(),
            file: Some(file.to_path_buf()),
        };
        BufferedLogger::new(Context::standalone("logger"), options).unwrap()
    }

    #[test]
    fn an_error_flushes_exactly_the_last_buffered_lines_in_order() {
        let dir = std::env::temp_dir().join(format!("logger-buffered-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("flush.log");
        let logger = logger(&file, 3);
        for i in 1..=5 {
            logger.log(LogLevel::Debug, "", "E", &format!("line {i}"));
        }
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "",
            "nothing before an error"
        );
        logger.log(LogLevel::Error, "ns", "FAIL", "boom");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "DEBUG | E | line 3\nDEBUG | E | line 4\nDEBUG | E | line 5\nERROR | ns | FAIL | boom\n"
        );
        logger.log(LogLevel::Error, "", "FAIL", "again");
        assert!(
            std::fs::read_to_string(&file)
                .unwrap()
                .ends_with("boom\nERROR | FAIL | again\n"),
            "the buffer was emptied"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn levels_below_the_minimum_are_dropped() {
        let file =
            std::env::temp_dir().join(format!("logger-buffered-min-{}.log", std::process::id()));
        let logger = logger(&file, 10);
        logger.set_log_level(LogLevel::Info);
        logger.log(LogLevel::Debug, "", "E", "dropped");
        logger.log(LogLevel::Info, "", "E", "kept");
        logger.log(LogLevel::Fatal, "", "E", "fatal");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "INFO | E | kept\nFATAL | E | fatal\n"
        );
        std::fs::remove_file(file).unwrap();
    }
}
