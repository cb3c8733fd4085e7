//! deepstream's documented example permission plugin: a user may only act on event, record and
//! rpc names that contain their user id.
//!
//! ```yaml
//! permission:
//!   path: ./libpermission_user_scope.so
//!   options: {}
//! ```
//!
//! With user `alice`, `record.getRecord("alice/settings")` and `event.emit("chat-alice")` are
//! allowed, `record.getRecord("bob/settings")` is denied. The rule applies to messages of the
//! EVENT (4), RECORD (5) and RPC (6) topics that carry a name; everything else (presence,
//! messages without a name) is allowed. A connection whose user id is empty is denied on
//! those topics, since every name "contains" the empty string. Every answer is ready at once.
//!
//! The plugin takes no options (`{}`; anything else is rejected).

use deepstream_plugin::sdk::{Check, Context, Permission, PermissionRequest, Plugin};
use serde::Deserialize;

/// Protocol topic numbers the rule applies to.
pub const EVENT: u8 = 4;
pub const RECORD: u8 = 5;
pub const RPC: u8 = 6;

/// The plugin has no options; unknown fields are rejected.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {}

/// The plugin; stateless.
#[derive(Debug, Default)]
pub struct UserScopePermission;

/// The decision for one message.
pub fn is_allowed(user_id: &str, topic: u8, name: &str) -> bool {
    match topic {
        EVENT | RECORD | RPC if !name.is_empty() => !user_id.is_empty() && name.contains(user_id),
        _ => true,
    }
}

impl Plugin for UserScopePermission {
    type Options = Options;

    fn new(_context: Context, _options: Options) -> Result<Self, String> {
        Ok(UserScopePermission)
    }

    fn description(&self) -> String {
        "user scope: names must contain the user id".into()
    }
}

impl Permission for UserScopePermission {
    fn can_perform_action(&self, request: &PermissionRequest<'_>) -> Check<bool> {
        let allowed = is_allowed(request.user_id, request.topic, request.name);
        if !allowed {
            tracing::debug!(
                user = request.user_id,
                topic = request.topic,
                name = request.name,
                "denied: name does not contain the user id"
            );
        }
        Check::Ready(Ok(allowed))
    }
}

deepstream_plugin::export_plugin! {
    name: "permission-user-scope",
    permission: UserScopePermission,
}
