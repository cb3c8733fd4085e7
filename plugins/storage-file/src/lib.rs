//! deepstream's documented teaching example of a storage plugin: one JSON file per record in a
//! folder. **A teaching example, not for production**: there is no locking across processes
//! (two servers sharing the folder may interleave writes to a record), every record is a file
//! (millions of records means millions of files), and reads go to the disk every time.
//!
//! ```yaml
//! storage:
//!   path: ./libstorage_file.so
//!   options:
//!     directory: /var/lib/deepstream/records   # default: deepstream-records
//! ```
//!
//! `directory` is used as given (relative to the server's working directory) and created on
//! start if missing. Record `name` lives in the file `<encoded name>.json` with the content
//! `{"version": N, "data": <the record's JSON>}`. Names are percent-encoded: every byte of the
//! UTF-8 name other than ASCII letters, digits, `-` and `_` becomes `%XX`, so any name (with
//! `/`, `.`, spaces, unicode…) maps to exactly one flat file name and back ([`file_name`],
//! [`record_name`]). File names are limited to 255 bytes, so a record name of more than about
//! 80 non-ASCII (250 ASCII) characters is refused. On a case-insensitive file system (macOS,
//! Windows) names differing only in case would share a file; use it on Linux.
//!
//! ## Durability
//!
//! A write goes to a temporary file in the same folder (`.<random>.tmp`), is fsynced, renamed
//! over the record's file, and the folder is fsynced: when `set` resolves the record is on
//! disk, and a crash leaves either the old or the new content, never a torn file. Deletes
//! fsync the folder too. Temporary files left by a crash are removed on start. File I/O
//! blocks, so every call runs on the runtime's blocking thread pool.

use std::{
    fs::{self, File},
    io::{ErrorKind, Write},
    path::{Path, PathBuf},
};

use deepstream_plugin::sdk::{Context, Plugin, RecordStore, Stored};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize, de::IgnoredAny};
use serde_json::value::RawValue;

/// The `options:` of the plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Options {
    /// The folder holding the record files (default `deepstream-records`).
    #[serde(default = "default_directory")]
    pub directory: PathBuf,
}

fn default_directory() -> PathBuf {
    PathBuf::from("deepstream-records")
}

impl Default for Options {
    fn default() -> Self {
        Options {
            directory: default_directory(),
        }
    }
}

/// Bytes kept as they are in file names: ASCII letters, digits, `-`, `_`. Everything else,
/// `.` and `%` included, is encoded, so no file name is `.` or `..`, and only the empty record
/// name gives a hidden file (`.json`), which temporary files (`.*.tmp`) never clash with.
const ENCODED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');
/// Record files end with this; temporary files start with `.` and end with [`TEMP_SUFFIX`].
const RECORD_SUFFIX: &str = ".json";
const TEMP_SUFFIX: &str = ".tmp";
/// The usual file-name limit (ext4, xfs, btrfs, APFS).
const MAX_FILE_NAME: usize = 255;

/// The file name of a record: its percent-encoded name plus `.json`.
pub fn file_name(record_name: &str) -> String {
    format!(
        "{}{RECORD_SUFFIX}",
        utf8_percent_encode(record_name, ENCODED)
    )
}

/// The record name a file name stands for; `None` for files that are not record files.
pub fn record_name(file_name: &str) -> Option<String> {
    let encoded = file_name.strip_suffix(RECORD_SUFFIX)?;
    let plain = |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'%');
    if !encoded.bytes().all(plain) {
        return None;
    }
    percent_decode_str(encoded)
        .decode_utf8()
        .ok()
        .map(|name| name.into_owned())
}

/// The content of a record file, as written.
#[derive(Serialize)]
struct RecordOut<'a> {
    version: i32,
    data: &'a RawValue,
}

/// The content of a record file, as read: the data's JSON text is kept as is.
#[derive(Deserialize)]
struct RecordIn {
    version: i32,
    data: Box<RawValue>,
}

/// The version alone; the data is skipped, not built.
#[derive(Deserialize)]
struct VersionIn {
    version: i32,
    #[allow(dead_code)]
    data: IgnoredAny,
}

/// The plugin: the folder and nothing else; every call goes to the disk.
pub struct FileStorage {
    directory: PathBuf,
}

/// Runs blocking file work on the blocking pool of the runtime that polls us.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| format!("file storage: blocking task failed: {error}"))?
}

/// Flushes the folder's entry list, so renames and deletes are on disk.
fn sync_directory(directory: &Path) -> Result<(), String> {
    File::open(directory)
        .and_then(|folder| folder.sync_all())
        .map_err(|error| format!("file storage: fsync {}: {error}", directory.display()))
}

impl FileStorage {
    /// Builds the plugin from its options (what [`Plugin::new`] does, minus the host context).
    /// Touches nothing: the folder is created by `when_ready`.
    pub fn from_options(options: Options) -> Result<Self, String> {
        if options.directory.as_os_str().is_empty() {
            return Err("storage-file: `directory` must not be empty".into());
        }
        Ok(FileStorage {
            directory: options.directory,
        })
    }

    /// The path of a record's file, or why the name cannot be a file name.
    fn path(&self, name: &str) -> Result<PathBuf, String> {
        let file = file_name(name);
        if file.len() > MAX_FILE_NAME {
            return Err(format!(
                "file storage: record name too long for a file name ({} bytes encoded, {MAX_FILE_NAME} allowed)",
                file.len()
            ));
        }
        Ok(self.directory.join(file))
    }

    /// Reads and parses a record file; `None` if there is none.
    fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, String> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|error| {
                format!(
                    "file storage: {} is not a record file: {error}",
                    path.display()
                )
            }),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            Err(error) => Err(format!("file storage: read {}: {error}", path.display())),
        }
    }

    /// Writes a whole file atomically: temp file, fsync, rename, fsync the folder.
    fn write_atomically(directory: &Path, path: &Path, content: &[u8]) -> Result<(), String> {
        let describe =
            |error: std::io::Error| format!("file storage: write {}: {error}", path.display());
        let mut temp = tempfile::Builder::new()
            .prefix(".")
            .suffix(TEMP_SUFFIX)
            .tempfile_in(directory)
            .map_err(describe)?;
        temp.write_all(content).map_err(describe)?;
        temp.as_file().sync_all().map_err(describe)?;
        // On failure the temporary file is removed when `persist`'s error drops it.
        temp.persist(path).map_err(|error| describe(error.error))?;
        sync_directory(directory)
    }

    /// Removes one record file; a missing one is fine. The caller syncs the folder.
    fn remove(path: &Path) -> Result<(), String> {
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
            Err(error) => Err(format!("file storage: delete {}: {error}", path.display())),
        }
    }
}

impl Plugin for FileStorage {
    type Options = Options;

    fn new(_context: Context, options: Options) -> Result<Self, String> {
        Self::from_options(options)
    }

    fn description(&self) -> String {
        format!(
            "file storage {} (teaching example)",
            self.directory.display()
        )
    }

    /// Creates the folder and removes temporary files a crash may have left.
    async fn when_ready(&self) -> Result<(), String> {
        let directory = self.directory.clone();
        blocking(move || {
            fs::create_dir_all(&directory).map_err(|error| {
                format!("file storage: create {}: {error}", directory.display())
            })?;
            let entries = fs::read_dir(&directory)
                .map_err(|error| format!("file storage: list {}: {error}", directory.display()))?;
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') && name.ends_with(TEMP_SUFFIX) {
                    tracing::info!(file = %name, "removing a temporary file left by a crash");
                    let _ = fs::remove_file(entry.path());
                }
            }
            Ok(())
        })
        .await
    }
}

impl RecordStore for FileStorage {
    async fn get(&self, name: String) -> Result<Option<Stored>, String> {
        let path = self.path(&name)?;
        blocking(move || {
            Ok(Self::read::<RecordIn>(&path)?.map(|record| Stored {
                version: record.version,
                data: record.data.get().to_owned(),
            }))
        })
        .await
    }

    async fn set(&self, name: String, version: i32, data: String) -> Result<(), String> {
        let path = self.path(&name)?;
        let data = RawValue::from_string(data)
            .map_err(|error| format!("file storage: data of {name:?} is not JSON: {error}"))?;
        let content = serde_json::to_vec(&RecordOut {
            version,
            data: &data,
        })
        .map_err(|error| format!("file storage: {error}"))?;
        let directory = self.directory.clone();
        blocking(move || Self::write_atomically(&directory, &path, &content)).await
    }

    async fn delete(&self, name: String) -> Result<(), String> {
        let path = self.path(&name)?;
        let directory = self.directory.clone();
        blocking(move || {
            Self::remove(&path)?;
            sync_directory(&directory)
        })
        .await
    }

    async fn delete_bulk(&self, names: Vec<String>) -> Result<(), String> {
        if names.is_empty() {
            return Ok(());
        }
        let paths = names
            .iter()
            .map(|name| self.path(name))
            .collect::<Result<Vec<_>, _>>()?;
        let directory = self.directory.clone();
        blocking(move || {
            for path in &paths {
                Self::remove(path)?;
            }
            sync_directory(&directory)
        })
        .await
    }

    async fn head(&self, name: String) -> Result<Option<i32>, String> {
        let path = self.path(&name)?;
        blocking(move || Ok(Self::read::<VersionIn>(&path)?.map(|record| record.version))).await
    }

    async fn head_bulk(&self, names: Vec<String>) -> Result<Vec<(String, i32)>, String> {
        let paths = names
            .iter()
            .map(|name| self.path(name))
            .collect::<Result<Vec<_>, _>>()?;
        blocking(move || {
            let mut found = Vec::new();
            for (name, path) in names.into_iter().zip(paths) {
                if let Some(record) = Self::read::<VersionIn>(&path)? {
                    found.push((name, record.version));
                }
            }
            Ok(found)
        })
        .await
    }
}

deepstream_plugin::export_plugin! {
    name: "storage-file",
    storage: FileStorage,
}
