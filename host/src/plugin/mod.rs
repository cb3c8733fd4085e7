//! Loading plugin libraries and turning their slot objects into native services.
//!
//! Each file is opened once (deduplicated by canonical path) with `libloading`, its plugin API
//! version is read from a plain exported symbol and compared with ours *before* any plugin code
//! runs, then abi_stable checks the full layout of the root module. Libraries are never
//! unloaded (see the `plugin-abi` crate docs for why).

pub mod adapters;

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
};

use abi_stable::{
    library::{AbiHeaderRef, LibraryError},
    sabi_trait::TD_Opaque,
    std_types::{RArc, RStr, RString},
};
use deepstream_plugin::{
    API_VERSION_SYMBOL, PLUGIN_API_VERSION,
    abi::{
        HostServices, HostServices_TO, Instance, LogLevel, NewInstance, PluginInit,
        PluginLibraryRef, Slot,
    },
};

/// Why a plugin could not be used. `Display` is one line naming the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no plugin library found (looked for {})", list(.0))]
    NotFound(Vec<PathBuf>),
    #[error("{}: cannot be opened: {reason}", .path.display())]
    Open { path: PathBuf, reason: String },
    #[error("{}: is not a deepstream plugin library (it exports no `{API_VERSION_SYMBOL}`)", .0.display())]
    NotAPlugin(PathBuf),
    #[error("{}: built for plugin API {found}, this server speaks {PLUGIN_API_VERSION} — rebuild the plugin", .path.display())]
    ApiVersion { path: PathBuf, found: u32 },
    #[error("{}: built against an incompatible plugin-abi: {reason} — rebuild the plugin", .path.display())]
    Incompatible { path: PathBuf, reason: String },
    #[error("{}: plugin `{name}` provides no {slot} (it provides: {provides})", .path.display())]
    MissingSlot {
        path: PathBuf,
        name: String,
        slot: Slot,
        provides: String,
    },
    #[error("{}: plugin `{name}` could not build its {slot}: {reason}", .path.display())]
    Construct {
        path: PathBuf,
        name: String,
        slot: Slot,
        reason: String,
    },
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A library that passed every check.
#[derive(Clone, Copy)]
pub struct Library {
    /// The root module: name, version, constructors.
    pub module: PluginLibraryRef,
}

impl Library {
    pub fn name(&self) -> &'static str {
        self.module.name().as_str()
    }

    pub fn version(&self) -> &'static str {
        self.module.version().as_str()
    }
}

impl fmt::Debug for Library {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name(), self.version())
    }
}

/// Opens libraries, once per file.
#[derive(Default)]
pub struct Loader {
    /// Canonical path → the library loaded from it.
    loaded: HashMap<PathBuf, Library>,
    /// This server's name, offered to plugins.
    server_name: String,
}

impl Loader {
    pub fn new(server_name: String) -> Self {
        Loader {
            loaded: HashMap::new(),
            server_name,
        }
    }

    /// Loads the first existing candidate (a config's `path`, or the `name` lookups).
    pub fn load_first(&mut self, candidates: &[PathBuf]) -> Result<(PathBuf, Library), LoadError> {
        let path = candidates
            .iter()
            .find(|path| path.is_file())
            .ok_or_else(|| LoadError::NotFound(candidates.to_vec()))?;
        Ok((path.clone(), self.load(path)?))
    }

    /// Loads one library file (or returns the copy already loaded from it).
    pub fn load(&mut self, path: &Path) -> Result<Library, LoadError> {
        let canonical = path.canonicalize().map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => LoadError::NotFound(vec![path.to_path_buf()]),
            // Present but unusable (no permission, a loop of links): say why.
            _ => LoadError::Open {
                path: path.to_path_buf(),
                reason: error.to_string(),
            },
        })?;
        if let Some(library) = self.loaded.get(&canonical) {
            return Ok(*library);
        }
        let library = open(path)?;
        (library.module.init_library())(self.host_services(library.name()));
        self.loaded.insert(canonical, library);
        Ok(library)
    }

    /// Builds one instance of `slot` from a loaded library.
    pub fn instantiate<S>(
        &self,
        path: &Path,
        library: Library,
        slot: Slot,
        constructor: Option<extern "C" fn(PluginInit) -> NewInstance<S>>,
        instance_name: &str,
        options: &serde_json::Value,
    ) -> Result<Instance<S>, LoadError> {
        let constructor = constructor.ok_or_else(|| LoadError::MissingSlot {
            path: path.to_path_buf(),
            name: library.name().into(),
            slot,
            provides: slot_list(library.module.slots()),
        })?;
        let options = if options.is_null() {
            "{}".to_owned()
        } else {
            options.to_string()
        };
        let init = PluginInit {
            instance_name: instance_name.into(),
            options_json: options.into(),
            host: self.host_services(library.name()),
        };
        constructor(init)
            .into_result()
            .map_err(|reason| LoadError::Construct {
                path: path.to_path_buf(),
                name: library.name().into(),
                slot,
                reason: reason.into(),
            })
    }

    fn host_services(&self, plugin: &str) -> HostServices_TO<'static, RArc<()>> {
        HostServices_TO::from_ptr(
            RArc::new(PluginHost {
                plugin: plugin.into(),
                server_name: self.server_name.clone(),
            }),
            TD_Opaque,
        )
    }
}

/// The slots a library provides, for messages.
pub fn slot_list(slots: Vec<Slot>) -> String {
    if slots.is_empty() {
        return "nothing".into();
    }
    slots
        .iter()
        .map(|slot| slot.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Opens a file and runs every check; the library stays mapped for the life of the process.
fn open(path: &Path) -> Result<Library, LoadError> {
    // SAFETY: loading runs the library's initialisers; Rust cdylibs have none beyond std's.
    let handle = unsafe { libloading::Library::new(path) }.map_err(|error| LoadError::Open {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })?;
    // SAFETY: the symbol is a `u32` static exported by `export_plugin!`.
    let found = unsafe { handle.get::<*const u32>(API_VERSION_SYMBOL.as_bytes()) }
        .map(|symbol| unsafe { **symbol })
        .map_err(|_| LoadError::NotAPlugin(path.to_path_buf()))?;
    if found != PLUGIN_API_VERSION {
        return Err(LoadError::ApiVersion {
            path: path.to_path_buf(),
            found,
        });
    }
    let loader_symbol = abi_stable::library::ROOT_MODULE_LOADER_NAME_WITH_NUL;
    // SAFETY: the symbol is abi_stable's library header; its address, read as an
    // `AbiHeaderRef` (a reference), is how abi_stable itself reads it.
    let header = unsafe { handle.get::<AbiHeaderRef>(loader_symbol.as_bytes()) }
        .map(|symbol| *symbol)
        .map_err(|_| LoadError::NotAPlugin(path.to_path_buf()))?;
    let incompatible = |error: LibraryError| LoadError::Incompatible {
        path: path.to_path_buf(),
        reason: summarize(&error),
    };
    let header = header.upgrade().map_err(incompatible)?;
    let module = header
        .init_root_module::<PluginLibraryRef>()
        .map_err(incompatible)?;
    // Never unloaded: vtables, thread-locals and runtime threads may still point into it.
    std::mem::forget(handle);
    Ok(Library { module })
}

/// abi_stable's layout errors dump both type trees (hundreds of lines); keep the verdicts.
fn summarize(error: &LibraryError) -> String {
    let text = error.to_string();
    let verdicts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("Error:"))
        .map(|line| line.trim_start_matches("Error:").trim())
        .collect();
    if verdicts.is_empty() {
        text.lines().next().unwrap_or("unknown error").to_owned()
    } else {
        verdicts.join("; ")
    }
}

/// The host services one library sees: logging attributed to it, the server name.
struct PluginHost {
    /// The library's name, attached to its log lines.
    plugin: String,
    /// This server's name.
    server_name: String,
}

impl HostServices for PluginHost {
    fn log_enabled(&self, level: LogLevel) -> bool {
        match level {
            LogLevel::Debug => tracing::enabled!(target: "plugin", tracing::Level::DEBUG),
            LogLevel::Info => tracing::enabled!(target: "plugin", tracing::Level::INFO),
            LogLevel::Warn => tracing::enabled!(target: "plugin", tracing::Level::WARN),
            LogLevel::Error | LogLevel::Fatal => true,
        }
    }

    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
        let (plugin, origin, message) = (&self.plugin, target.as_str(), message.as_str());
        match level {
            LogLevel::Debug => tracing::debug!(target: "plugin", plugin, origin, "{message}"),
            LogLevel::Info => tracing::info!(target: "plugin", plugin, origin, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "plugin", plugin, origin, "{message}"),
            LogLevel::Error | LogLevel::Fatal => {
                tracing::error!(target: "plugin", plugin, origin, "{message}")
            }
        }
    }

    fn server_name(&self) -> RString {
        self.server_name.as_str().into()
    }
}
