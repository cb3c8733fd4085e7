//! The binary wire protocol (spec `protocol.md` §1.2–§1.5, §2): topics and actions, the unified
//! [`Message`] every handler works with, and the frame codec that must match what the official
//! JS client (protobufjs) writes and reads, byte for byte.
//!
//! * [`topic`] / [`actions`]: the protobuf enums, as `#[repr(i32)]` Rust enums.
//! * [`message`]: one [`Message`] struct for all topics, with builders and JSON helpers.
//! * `schema`: the per-topic field-number tables (numbers differ between topics).
//! * [`codec`]: [`encode`] / [`decode`] of complete frames.

/// Declares a protobuf enum as a `#[repr(i32)]` Rust enum with conversions from and to its wire
/// number. Decoding never converts: messages keep the raw number and handlers call `try_from`.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $value:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum $name {
            $($(#[$variant_meta])* $variant = $value,)+
        }

        impl TryFrom<i32> for $name {
            type Error = $crate::protocol::UnknownNumber;

            fn try_from(value: i32) -> Result<Self, $crate::protocol::UnknownNumber> {
                match value {
                    $($value => Ok(Self::$variant),)+
                    _ => Err($crate::protocol::UnknownNumber(value)),
                }
            }
        }

        impl From<$name> for i32 {
            fn from(value: $name) -> i32 {
                value as i32
            }
        }
    };
}

pub mod actions;
pub mod codec;
pub mod message;
mod schema;
pub mod topic;

#[cfg(test)]
mod tests;

pub use actions::{
    AuthAction, ClusterAction, ConnectionAction, EventAction, LockAction, ParserAction,
    PresenceAction, RecordAction, RpcAction, StateAction, StateRegistryTopic,
};
pub use codec::{ParseError, decode, decode_from_client, encode, encode_into};
pub use message::Message;
pub use topic::Topic;

/// A wire number that names no variant of the enum it was converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no variant has wire number {0}")]
pub struct UnknownNumber(pub i32);
