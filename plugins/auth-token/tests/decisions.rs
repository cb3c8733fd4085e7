//! The login decisions, through the SDK's `Authentication` trait.

use auth_token::{Options, TokenAuthentication};
use deepstream_plugin::sdk::{Authentication, Check, Plugin, Verdict};
use serde_json::{Value, json};

fn plugin(options: Value) -> TokenAuthentication {
    let options: Options = serde_json::from_value(options).expect("options parse");
    TokenAuthentication::from_options(options).expect("plugin builds")
}

fn two_users() -> TokenAuthentication {
    plugin(json!({
        "tokens": {
            "alice-token": {
                "id": "alice",
                "clientData": { "theme": "dark" },
                "serverData": { "role": "admin", "teams": ["a", "b"] }
            },
            "bob-token": { "id": "bob" }
        }
    }))
}

fn ask(plugin: &TokenAuthentication, auth_data: Value) -> Option<Verdict> {
    match plugin.is_valid_user(&json!({"remoteAddress": "127.0.0.1"}), &auth_data) {
        Check::Ready(result) => result.expect("no error"),
        Check::Pending(_) => panic!("auth-token answers are always ready"),
    }
}

fn rejected() -> Option<Verdict> {
    Some(Verdict {
        is_valid: false,
        id: None,
        client_data: Some(json!({"error": "invalid token"})),
        server_data: None,
    })
}

#[test]
fn listed_token_logs_in_with_configured_data() {
    let plugin = two_users();
    assert_eq!(
        ask(&plugin, json!({"token": "alice-token"})),
        Some(Verdict {
            is_valid: true,
            id: Some("alice".into()),
            client_data: Some(json!({"theme": "dark"})),
            server_data: Some(json!({"role": "admin", "teams": ["a", "b"]})),
        })
    );
}

#[test]
fn token_without_optional_data_gives_none_for_them() {
    let plugin = two_users();
    assert_eq!(
        ask(&plugin, json!({"token": "bob-token"})),
        Some(Verdict {
            is_valid: true,
            id: Some("bob".into()),
            client_data: None,
            server_data: None,
        })
    );
}

#[test]
fn unknown_token_is_rejected_with_error() {
    let plugin = two_users();
    assert_eq!(ask(&plugin, json!({"token": "mallory"})), rejected());
    // Prefixes, case changes and whitespace are different tokens.
    assert_eq!(ask(&plugin, json!({"token": "alice"})), rejected());
    assert_eq!(ask(&plugin, json!({"token": "ALICE-TOKEN"})), rejected());
    assert_eq!(ask(&plugin, json!({"token": " alice-token"})), rejected());
}

#[test]
fn missing_or_malformed_token_is_rejected() {
    let plugin = two_users();
    assert_eq!(ask(&plugin, json!({})), rejected());
    assert_eq!(ask(&plugin, json!({"username": "alice"})), rejected());
    assert_eq!(ask(&plugin, json!({"token": null})), rejected());
    assert_eq!(ask(&plugin, json!({"token": 42})), rejected());
    assert_eq!(ask(&plugin, json!({"token": ["alice-token"]})), rejected());
    assert_eq!(ask(&plugin, Value::Null), rejected());
    assert_eq!(ask(&plugin, json!("alice-token")), rejected());
}

#[test]
fn no_tokens_lets_nobody_in() {
    let plugin = plugin(json!({"tokens": {}}));
    assert_eq!(ask(&plugin, json!({"token": ""})), rejected());
    assert_eq!(ask(&plugin, json!({"token": "anything"})), rejected());
}

#[test]
fn options_are_checked() {
    let parse = |value: Value| serde_json::from_value::<Options>(value).map_err(|e| e.to_string());
    // Unknown fields are rejected, at both levels.
    assert!(parse(json!({"tokens": {}, "token": {}})).is_err());
    assert!(parse(json!({"tokens": {"t": {"id": "a", "client_data": {}}}})).is_err());
    // `tokens` is required, `id` is required.
    assert!(parse(json!({})).is_err());
    assert!(parse(json!({"tokens": {"t": {"clientData": {}}}})).is_err());
    // clientData / serverData must be objects.
    assert!(parse(json!({"tokens": {"t": {"id": "a", "clientData": [1]}}})).is_err());
    assert!(parse(json!({"tokens": {"t": {"id": "a", "serverData": "x"}}})).is_err());
    // An empty id is refused when building.
    let options = parse(json!({"tokens": {"t": {"id": ""}}})).expect("parses");
    assert!(TokenAuthentication::from_options(options).is_err());
}

#[test]
fn description_counts_tokens() {
    assert_eq!(two_users().description(), "token authentication (2 tokens)");
}
