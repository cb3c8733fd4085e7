//! The deepstream host: config, plugin loader, protocol core and handlers.

pub mod permission;
