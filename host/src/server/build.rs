//! Builds the services record from the config (server.md §1.6, §2.2): built-in defaults for
//! `type:`, plugin libraries for `name:`/`path:`. Every error names the config key.

use std::{path::PathBuf, sync::Arc};

use deepstream_plugin::abi::{PluginLibraryRef, Slot};

use crate::{
    auth::{FileAuthentication, HttpAuthentication, StorageAuthentication},
    config::{Config, EndpointKind, JSON_LOGGER, PluginDecl},
    plugin::{Library, LoadError, Loader, adapters::PluginService},
    services::{
        Authentication, ClusterNode, ClusterRegistry, ConnectionListener, Lifecycle, LockRegistry,
        LogLevel, Logger, Monitoring, Permission, RecordStore, StateRegistryFactory, builtin,
    },
};

/// A config problem found while building services: the key, then what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct BuildError {
    /// The config key (`storage`, `auth[1]`, `plugins.audit`).
    pub key: String,
    /// What is wrong, naming the file where there is one.
    pub message: String,
}

impl BuildError {
    fn new(key: &str, message: impl ToString) -> Self {
        BuildError {
            key: key.to_owned(),
            message: message.to_string(),
        }
    }
}

/// Every service the core uses (server.md §2.3), plus their lifecycles in construction order.
pub struct Services {
    pub logger: Arc<dyn Logger>,
    /// Every configured monitoring service behind one fan-out.
    pub monitoring: Arc<dyn Monitoring>,
    pub storage: Arc<dyn RecordStore>,
    pub cache: Arc<dyn RecordStore>,
    /// Cache and storage as records use them (timeouts, exclusions, storage order); shared by
    /// the record handler and the permission rules that read records.
    pub records: Arc<crate::record::Store>,
    pub authentication: Vec<Arc<dyn Authentication>>,
    pub permission: Arc<dyn Permission>,
    pub locks: Arc<dyn LockRegistry>,
    pub cluster_node: Arc<dyn ClusterNode>,
    pub cluster_registry: Arc<dyn ClusterRegistry>,
    pub cluster_states: Arc<dyn StateRegistryFactory>,
    /// Custom plugins (`plugins:`), told about authenticated connections.
    pub plugins: Vec<Arc<dyn ConnectionListener>>,
    /// (config key, lifecycle) of every service, in construction order; started in this
    /// order and closed in reverse.
    pub lifecycles: Vec<(String, Arc<dyn Lifecycle>)>,
}

/// Loads libraries and builds instances for one config.
struct Builder<'a> {
    /// The config being built.
    config: &'a Config,
    /// Opens each library once.
    loader: Loader,
    /// Lifecycles collected so far.
    lifecycles: Vec<(String, Arc<dyn Lifecycle>)>,
}

impl Builder<'_> {
    /// Opens the library a declaration names.
    fn library(&mut self, key: &str, decl: &PluginDecl) -> Result<(PathBuf, Library), BuildError> {
        let candidates = decl.library_candidates(self.config.lib_dir.as_deref());
        self.loader
            .load_first(&candidates)
            .map_err(|error| BuildError::new(key, error))
    }

    /// Builds a plugin instance of `slot` from the library `decl` names.
    fn plugin<S: Send + Sync + 'static>(
        &mut self,
        key: &str,
        decl: &PluginDecl,
        slot: Slot,
        constructor: fn(
            PluginLibraryRef,
        ) -> Option<
            extern "C" fn(
                deepstream_plugin::abi::PluginInit,
            ) -> deepstream_plugin::abi::NewInstance<S>,
        >,
    ) -> Result<Arc<PluginService<S>>, BuildError> {
        let (path, library) = self.library(key, decl)?;
        let instance = self
            .loader
            .instantiate(
                &path,
                library,
                slot,
                constructor(library.module),
                key,
                &decl.options,
            )
            .map_err(|error: LoadError| BuildError::new(key, error))?;
        let service = Arc::new(PluginService::from(instance));
        self.lifecycles.push((key.to_owned(), service.clone()));
        Ok(service)
    }

    /// Records a built-in's lifecycle.
    fn builtin<T: Lifecycle + 'static>(&mut self, key: &str, service: T) -> Arc<T> {
        let service = Arc::new(service);
        self.lifecycles.push((key.to_owned(), service.clone()));
        service
    }

    fn unknown_type(key: &str, decl: &PluginDecl, allowed: &str) -> BuildError {
        BuildError::new(
            key,
            format!(
                "unknown type {:?} (expected {allowed}, or `name`/`path` of a plugin library)",
                decl.type_.as_deref().unwrap_or("")
            ),
        )
    }
}

/// Refuses what the config asks for but this server does not provide yet, naming the key, so
/// nothing configured is silently ignored. The built-in endpoint list of deepstream includes
/// ws-text, ws-json and mqtt, so those are only logged as not served.
fn check_supported(config: &Config) -> Result<(), BuildError> {
    for (index, endpoint) in config.connection_endpoints.iter().enumerate() {
        let key = format!("connectionEndpoints[{index}]");
        match endpoint.kind {
            EndpointKind::WsBinary | EndpointKind::Http => {}
            EndpointKind::Custom => {
                return Err(BuildError::new(
                    &key,
                    "connection endpoint plugins are not supported by this server yet",
                ));
            }
            other => tracing::warn!(
                event = "INVALID_CONFIG_DATA",
                "{key}: {} is not supported by this server yet and is not served",
                other.as_str()
            ),
        }
    }
    if config.subscriptions.is_external() {
        return Err(BuildError::new(
            "subscriptions",
            "subscription registry plugins are not supported by this server yet; remove the section to use the built-in registry",
        ));
    }
    if config.http_server.is_external()
        || config
            .http_server
            .type_
            .as_deref()
            .is_some_and(|t| t != "default")
    {
        return Err(BuildError::new(
            "httpServer",
            "only the built-in HTTP service (type: default) is supported",
        ));
    }
    Ok(())
}

/// Builds every service in the order of server.md §2.2.
pub fn build(config: &Config) -> Result<Services, BuildError> {
    check_supported(config)?;
    let mut b = Builder {
        config,
        loader: Loader::new(config.server_name.clone()),
        lifecycles: Vec::new(),
    };
    let server_name = config.server_name.clone();

    let logger: Arc<dyn Logger> = if config.logger.names_builtin(JSON_LOGGER) {
        b.builtin("logger", builtin::BuiltinLogger::json(LogLevel::Info))
    } else if config.logger.is_external() {
        b.plugin("logger", &config.logger, Slot::Logger, |m| m.new_logger())?
    } else {
        // `colors` defaults to on (server.md §1); as the reference's chalk does, colours
        // only reach a terminal, so pipes and log files get plain text.
        use std::io::IsTerminal;
        let colors = config
            .logger
            .options
            .get("colors")
            .and_then(|c| c.as_bool())
            .unwrap_or(true)
            && std::io::stdout().is_terminal()
            && std::io::stderr().is_terminal();
        b.builtin(
            "logger",
            builtin::BuiltinLogger::text(LogLevel::Info, colors),
        )
    };
    crate::logging::set_logger(logger.clone(), config.effective_log_level());

    let mut monitoring: Vec<Arc<dyn Monitoring>> = Vec::new();
    for (index, decl) in config.monitoring.iter().enumerate() {
        let key = format!("monitoring[{index}]");
        if decl.is_external() {
            monitoring.push(b.plugin(&key, decl, Slot::Monitoring, |m| m.new_monitoring())?);
        } else {
            match decl.type_.as_deref() {
                None | Some("none" | "default") => {}
                _ => return Err(Builder::unknown_type(&key, decl, "none")),
            }
        }
    }
    let monitoring: Arc<dyn Monitoring> = Arc::new(builtin::CombinedMonitoring(monitoring));
    crate::logging::set_monitoring(monitoring.clone());

    let storage: Arc<dyn RecordStore> = if config.storage.is_external() {
        b.plugin("storage", &config.storage, Slot::Storage, |m| {
            m.new_storage()
        })?
    } else {
        b.builtin("storage", builtin::NoopStorage)
    };
    let cache: Arc<dyn RecordStore> = if config.cache.is_external() {
        b.plugin("cache", &config.cache, Slot::Cache, |m| m.new_cache())?
    } else {
        b.builtin("cache", builtin::MemoryCache::default())
    };

    let records = Arc::new(crate::record::Store::new(
        &config.record,
        cache.clone(),
        storage.clone(),
    ));

    let mut authentication: Vec<Arc<dyn Authentication>> = Vec::new();
    for (index, decl) in config.auth.iter().enumerate() {
        let key = format!("auth[{index}]");
        let invalid = |error| BuildError::new(&key, error);
        authentication.push(if decl.is_external() {
            b.plugin(&key, decl, Slot::Authentication, |m| m.new_authentication())?
        } else {
            match decl.type_.as_deref() {
                Some("none") => b.builtin(&key, builtin::OpenAuthentication),
                Some("file") => {
                    let handler = FileAuthentication::new(&decl.options).map_err(invalid)?;
                    b.builtin(&key, handler)
                }
                Some("http") => {
                    let handler = HttpAuthentication::new(&decl.options).map_err(invalid)?;
                    b.builtin(&key, handler)
                }
                Some("storage") => {
                    let handler = StorageAuthentication::new(&decl.options, storage.clone())
                        .map_err(invalid)?;
                    b.builtin(&key, handler)
                }
                _ => {
                    return Err(Builder::unknown_type(
                        &key,
                        decl,
                        "none, file, http or storage",
                    ));
                }
            }
        });
    }

    let permission: Arc<dyn Permission> = if config.permission.is_external() {
        b.plugin("permission", &config.permission, Slot::Permission, |m| {
            m.new_permission()
        })?
    } else {
        match config.permission.type_.as_deref() {
            Some("none") => b.builtin("permission", builtin::OpenPermission),
            Some("config") => {
                let valve = crate::permission::ValvePermission::new(
                    &config.permission.options,
                    records.clone(),
                )
                .map_err(|message| BuildError::new("permission", message))?;
                b.builtin("permission", valve)
            }
            _ => {
                return Err(Builder::unknown_type(
                    "permission",
                    &config.permission,
                    "none or config",
                ));
            }
        }
    };

    let locks: Arc<dyn LockRegistry> = if config.locks.is_external() {
        b.plugin("locks", &config.locks, Slot::LockRegistry, |m| {
            m.new_lock_registry()
        })?
    } else {
        b.builtin("locks", builtin::LocalLockRegistry::default())
    };
    let cluster_node: Arc<dyn ClusterNode> = if config.cluster_node.is_external() {
        b.plugin(
            "clusterNode",
            &config.cluster_node,
            Slot::ClusterNode,
            |m| m.new_cluster_node(),
        )?
    } else {
        b.builtin("clusterNode", builtin::SingleClusterNode)
    };
    let cluster_registry: Arc<dyn ClusterRegistry> = if config.cluster_registry.is_external() {
        b.plugin(
            "clusterRegistry",
            &config.cluster_registry,
            Slot::ClusterRegistry,
            |m| m.new_cluster_registry(),
        )?
    } else {
        b.builtin(
            "clusterRegistry",
            builtin::SingleClusterRegistry::new(server_name.clone()),
        )
    };
    let cluster_states: Arc<dyn StateRegistryFactory> = if config.cluster_states.is_external() {
        b.plugin(
            "clusterStates",
            &config.cluster_states,
            Slot::StateRegistryFactory,
            |m| m.new_state_registry_factory(),
        )?
    } else {
        b.builtin(
            "clusterStates",
            builtin::SingleStateRegistryFactory::new(server_name),
        )
    };

    let mut plugins: Vec<Arc<dyn ConnectionListener>> = Vec::new();
    for (name, decl) in &config.plugins {
        let key = format!("plugins.{name}");
        if !decl.is_external() {
            return Err(BuildError::new(
                &key,
                "custom plugins need `name` or `path` of a plugin library",
            ));
        }
        plugins.push(b.plugin(&key, decl, Slot::Custom, |m| m.new_custom())?);
    }

    Ok(Services {
        logger,
        monitoring,
        storage,
        cache,
        records,
        authentication,
        permission,
        locks,
        cluster_node,
        cluster_registry,
        cluster_states,
        plugins,
        lifecycles: b.lifecycles,
    })
}
