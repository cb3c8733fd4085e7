//! # Writing a deepstream plugin
//!
//! A plugin is a Rust `cdylib` that depends on this crate only. The server loads it at start-up
//! from the file named in `conf/config.yml` (`path:`, or `name:` looked up in `libDir`); no
//! server rebuild is needed to add or swap one. One library may fill several slots
//! (authentication, permission, storage, cache, logger, monitoring, cluster node, lock
//! registry, cluster registry, state registry factory, subscription registry factory,
//! connection endpoint, custom plugin) and the server may build any number of instances of
//! each, one per config entry.
//!
//! ## A complete plugin
//!
//! ```
//! use deepstream_plugin::sdk::{Check, Context, Permission, PermissionRequest, Plugin};
//! use serde::Deserialize;
//!
//! /// Denies every name that starts with a configured prefix.
//! pub struct DenyPrefix {
//!     prefix: String,
//! }
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! pub struct Options {
//!     prefix: String,
//! }
//!
//! impl Plugin for DenyPrefix {
//!     type Options = Options;
//!
//!     fn new(_context: Context, options: Options) -> Result<Self, String> {
//!         Ok(DenyPrefix { prefix: options.prefix })
//!     }
//!
//!     fn description(&self) -> String {
//!         format!("deny names starting with {}", self.prefix)
//!     }
//! }
//!
//! impl Permission for DenyPrefix {
//!     fn can_perform_action(&self, request: &PermissionRequest<'_>) -> Check<bool> {
//!         tracing::debug!(name = request.name, "checking");
//!         Check::Ready(Ok(!request.name.starts_with(&self.prefix)))
//!     }
//! }
//!
//! deepstream_plugin::export_plugin! {
//!     name: "deny-prefix",
//!     permission: DenyPrefix,
//! }
//! # fn main() {}
//! ```
//!
//! with, in the plugin's `Cargo.toml`, `crate-type = ["cdylib"]` and dependencies on this
//! crate, `serde` and (for logging) `tracing`. In the server's config:
//!
//! ```yaml
//! permission:
//!   path: ./libdeny_prefix.so     # resolved against libDir, else the config directory
//!   options:
//!     prefix: secret/
//! ```
//!
//! ## Design choices (read before writing one)
//!
//! **Exact versioning.** Every library records [`PLUGIN_API_VERSION`]; the server loads only
//! libraries whose version equals its own and otherwise refuses with one line naming the file,
//! both versions and the fix (rebuild the plugin). abi_stable's layout check runs as well, as a
//! second net. Exact matching is the honest rule here: abi_stable lets an *older* host load a
//! *newer* plugin but never the reverse, so "compatible ranges" would fail in the direction
//! users hit most (upgrading the server). Any change to this crate's interface bumps the version.
//!
//! **Async across the boundary.** Async operations return [`async_ffi::FfiFuture`]s that the
//! host's executor polls directly (no thread hop). A plugin links its own copy of tokio, which
//! cannot see the host's runtime, so each library owns a small runtime ([`sdk::runtime`]) and the
//! SDK enters it around every poll: `tokio::time`, `tokio::net` and `tokio::spawn` work in plugin
//! code as usual. Hot-path checks (permission, authentication) are sync-first: they answer
//! `Ready` without allocating and return a future only when they need I/O.
//!
//! **Panics.** A panic that reaches the FFI boundary in a sync call makes abi_stable exit the
//! whole server. The SDK therefore runs every plugin method inside `catch_unwind` and every
//! future poll inside a panic guard: a plugin panic becomes an error value the server reports
//! (and the panic message reaches the server's log through the plugin's panic hook). Write
//! plugins against this SDK rather than implementing the [`abi`] traits by hand.
//!
//! **Logging.** `tracing` events inside a plugin are forwarded to the server's logger, with the
//! plugin's target; spans are not forwarded.
//!
//! **Nothing is unloaded.** A loaded library stays mapped until the process exits: its code may
//! still be referenced by vtables, thread-locals and runtime threads, so unloading would be
//! unsound. The same file is loaded once however many instances use it.
//!
//! **Swapping a plugin.** Never overwrite a loaded library in place (`cp new.so old.so` rewrites
//! the mapped file and crashes the running server). Install the new build next to it and rename
//! it into place — `deepstream plugins install FILE --dir DIR` does exactly that — then restart
//! the server. The running server keeps the old copy until it restarts.
//!
//! **Data.** Record data, options and auth payloads cross as JSON text; protocol messages
//! (cluster bus, connection endpoints) cross as encoded binary-protocol frames.

#![allow(non_local_definitions)] // emitted by every #[sabi_trait] on current rustc; harmless

pub mod abi;
pub mod sdk;

#[doc(hidden)]
pub use abi_stable;

/// The plugin API this crate defines. A server loads only libraries built with the same number.
///
/// Tests of the loader build a library with another number by setting
/// `DEEPSTREAM_TEST_PLUGIN_API_VERSION` while compiling; nothing else should set it.
pub const PLUGIN_API_VERSION: u32 = match option_env!("DEEPSTREAM_TEST_PLUGIN_API_VERSION") {
    Some(text) => parse_version(text),
    None => 1,
};

/// The exported symbol holding the library's [`PLUGIN_API_VERSION`], read before anything else.
pub const API_VERSION_SYMBOL: &str = "deepstream_plugin_api_version";

const fn parse_version(text: &str) -> u32 {
    let bytes = text.as_bytes();
    let mut value = 0u32;
    let mut i = 0;
    while i < bytes.len() {
        assert!(
            bytes[i].is_ascii_digit(),
            "DEEPSTREAM_TEST_PLUGIN_API_VERSION must be a number"
        );
        value = value * 10 + (bytes[i] - b'0') as u32;
        i += 1;
    }
    value
}

/// Exports a plugin library: its name and, per slot it fills, the type that implements it.
///
/// Slots: `authentication`, `permission`, `storage`, `cache`, `logger`, `monitoring`,
/// `cluster_node`, `lock_registry`, `cluster_registry`, `state_registry_factory`,
/// `subscription_registry_factory`, `connection_endpoint`, `custom`.
#[macro_export]
macro_rules! export_plugin {
    (name: $name:literal, $($slot:ident : $ty:ty),+ $(,)?) => {
        /// Read by the server before anything else to check the plugin API version.
        #[unsafe(no_mangle)]
        pub static deepstream_plugin_api_version: u32 = $crate::PLUGIN_API_VERSION;

        fn __deepstream_plugin_root() -> $crate::abi::PluginLibraryRef {
            #[allow(unused_mut)]
            let mut library = $crate::sdk::library($name, env!("CARGO_PKG_VERSION"));
            $( $crate::__plugin_slot!(library, $slot, $ty); )+
            $crate::abi_stable::prefix_type::PrefixTypeTrait::leak_into_prefix(library)
        }

        /// The abi_stable root module header (what `#[export_root_module]` would generate).
        #[unsafe(no_mangle)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::abi_stable::library::LibHeader = {
            pub extern "C" fn erased_root() -> $crate::abi_stable::library::RootModuleResult {
                $crate::abi_stable::library::__call_root_module_loader(__deepstream_plugin_root)
            }
            // SAFETY: `erased_root` returns the module built by `__deepstream_plugin_root`,
            // whose type is the one named here.
            unsafe {
                $crate::abi_stable::library::LibHeader::from_constructor::<$crate::abi::PluginLibraryRef>(
                    erased_root,
                    $crate::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __plugin_slot {
    ($lib:ident, authentication, $ty:ty) => {
        $lib.new_authentication = Some($crate::sdk::new_authentication::<$ty>);
    };
    ($lib:ident, permission, $ty:ty) => {
        $lib.new_permission = Some($crate::sdk::new_permission::<$ty>);
    };
    ($lib:ident, storage, $ty:ty) => {
        $lib.new_storage = Some($crate::sdk::new_storage::<$ty>);
    };
    ($lib:ident, cache, $ty:ty) => {
        $lib.new_cache = Some($crate::sdk::new_cache::<$ty>);
    };
    ($lib:ident, logger, $ty:ty) => {
        $lib.new_logger = Some($crate::sdk::new_logger::<$ty>);
    };
    ($lib:ident, monitoring, $ty:ty) => {
        $lib.new_monitoring = Some($crate::sdk::new_monitoring::<$ty>);
    };
    ($lib:ident, cluster_node, $ty:ty) => {
        $lib.new_cluster_node = Some($crate::sdk::new_cluster_node::<$ty>);
    };
    ($lib:ident, lock_registry, $ty:ty) => {
        $lib.new_lock_registry = Some($crate::sdk::new_lock_registry::<$ty>);
    };
    ($lib:ident, cluster_registry, $ty:ty) => {
        $lib.new_cluster_registry = Some($crate::sdk::new_cluster_registry::<$ty>);
    };
    ($lib:ident, state_registry_factory, $ty:ty) => {
        $lib.new_state_registry_factory = Some($crate::sdk::new_state_registry_factory::<$ty>);
    };
    ($lib:ident, subscription_registry_factory, $ty:ty) => {
        $lib.new_subscription_registry_factory =
            Some($crate::sdk::new_subscription_registry_factory::<$ty>);
    };
    ($lib:ident, connection_endpoint, $ty:ty) => {
        $lib.new_connection_endpoint = Some($crate::sdk::new_connection_endpoint::<$ty>);
    };
    ($lib:ident, custom, $ty:ty) => {
        $lib.new_custom = Some($crate::sdk::new_custom::<$ty>);
    };
}
