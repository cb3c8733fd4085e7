//! deepstream's documented example authentication plugin: only a user presenting one of the
//! tokens listed in the plugin's options may log in.
//!
//! ```yaml
//! auth:
//!   - path: ./libauth_token.so
//!     options:
//!       tokens:
//!         "s3cr3t-alice":
//!           id: alice
//!           clientData: { theme: dark }      # optional, sent to the client on login
//!           serverData: { role: admin }      # optional, visible to permission rules
//!         "s3cr3t-bob":
//!           id: bob
//! ```
//!
//! The client logs in with auth data `{"token": "s3cr3t-alice"}`. A listed token is accepted
//! with the configured id, `clientData` and `serverData`; an unknown or missing token is
//! rejected with client data `{"error": "invalid token"}` (the plugin gives a verdict either
//! way, so handlers configured after it are not asked). Every answer is ready at once.

use std::collections::HashMap;

use deepstream_plugin::sdk::{Authentication, Check, Context, Plugin, Verdict};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The `options:` of the plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Options {
    /// Accepted tokens and the user each one logs in as. Required (may be empty, which lets
    /// nobody in).
    pub tokens: HashMap<String, TokenUser>,
}

/// The user a token logs in as.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TokenUser {
    /// The user id the connection gets.
    pub id: String,
    /// Sent to the client with the login answer.
    #[serde(default)]
    pub client_data: Option<Map<String, Value>>,
    /// Kept on the server; permission rules see it as `user.data`.
    #[serde(default)]
    pub server_data: Option<Map<String, Value>>,
}

/// The plugin: a fixed map token → user.
#[derive(Debug)]
pub struct TokenAuthentication {
    tokens: HashMap<String, TokenUser>,
}

impl TokenAuthentication {
    /// Builds the plugin from its options (what [`Plugin::new`] does, minus the host context).
    pub fn from_options(options: Options) -> Result<Self, String> {
        // An empty id would make the server fall back to "OPEN": almost surely a typo.
        if options.tokens.values().any(|user| user.id.is_empty()) {
            return Err("auth-token: every token needs a non-empty `id`".into());
        }
        Ok(TokenAuthentication {
            tokens: options.tokens,
        })
    }

    /// The decision for one login attempt's auth data.
    pub fn verdict(&self, auth_data: &Value) -> Verdict {
        let user = auth_data
            .get("token")
            .and_then(Value::as_str)
            .and_then(|token| self.tokens.get(token));
        match user {
            Some(user) => Verdict {
                is_valid: true,
                id: Some(user.id.clone()),
                client_data: user.client_data.clone().map(Value::Object),
                server_data: user.server_data.clone().map(Value::Object),
                token: None,
            },
            None => Verdict {
                is_valid: false,
                id: None,
                client_data: Some(json!({ "error": "invalid token" })),
                server_data: None,
                token: None,
            },
        }
    }
}

impl Plugin for TokenAuthentication {
    type Options = Options;

    fn new(_context: Context, options: Options) -> Result<Self, String> {
        Self::from_options(options)
    }

    fn description(&self) -> String {
        format!("token authentication ({} tokens)", self.tokens.len())
    }
}

impl Authentication for TokenAuthentication {
    fn is_valid_user(&self, _connection_data: &Value, auth_data: &Value) -> Check<Option<Verdict>> {
        let verdict = self.verdict(auth_data);
        if !verdict.is_valid {
            tracing::debug!("login rejected: unknown or missing token");
        }
        Check::Ready(Ok(Some(verdict)))
    }
}

deepstream_plugin::export_plugin! {
    name: "auth-token",
    authentication: TokenAuthentication,
}
