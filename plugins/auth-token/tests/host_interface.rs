//! The exported authentication slot, driven the way the server drives it: options as JSON
//! text through `Plugin::new`, answers as FFI values.

use abi_stable::std_types::{ROption, RResult, RStr};
use auth_token::TokenAuthentication;
use deepstream_plugin::abi::{Answer, AuthVerdict, PluginInit};

fn init(options: &str) -> PluginInit {
    deepstream_plugin::sdk::standalone_init("auth[0]", options)
}

fn ready(answer: Answer<ROption<AuthVerdict>>) -> Option<AuthVerdict> {
    match answer {
        Answer::Ready(RResult::ROk(verdict)) => verdict.into_option(),
        Answer::Ready(RResult::RErr(error)) => panic!("error: {error}"),
        Answer::Pending(_) => panic!("expected a ready answer"),
    }
}

#[tokio::test]
async fn exported_slot_decides_logins() {
    let options = r#"{"tokens": {"t1": {"id": "alice", "serverData": {"admin": true}}}}"#;
    let instance = deepstream_plugin::sdk::new_authentication::<TokenAuthentication>(init(options))
        .into_result()
        .expect("instance builds");
    instance
        .lifecycle
        .when_ready()
        .await
        .into_result()
        .expect("ready");
    assert_eq!(
        instance.lifecycle.description().as_str(),
        "token authentication (1 tokens)"
    );

    let verdict = ready(
        instance
            .slot
            .is_valid_user(RStr::from("{}"), RStr::from(r#"{"token":"t1"}"#)),
    )
    .expect("a verdict");
    assert!(verdict.is_valid);
    assert_eq!(verdict.id.into_option().as_deref(), Some("alice"));
    assert_eq!(verdict.client_data, ROption::RNone);
    let server_data: serde_json::Value =
        serde_json::from_str(verdict.server_data.unwrap().as_str()).unwrap();
    assert_eq!(server_data, serde_json::json!({"admin": true}));

    let verdict = ready(
        instance
            .slot
            .is_valid_user(RStr::from("{}"), RStr::from(r#"{"token":"t2"}"#)),
    )
    .expect("a verdict");
    assert!(!verdict.is_valid);
    let client_data: serde_json::Value =
        serde_json::from_str(verdict.client_data.unwrap().as_str()).unwrap();
    assert_eq!(client_data, serde_json::json!({"error": "invalid token"}));
}

#[test]
fn exported_slot_rejects_bad_options() {
    let error = deepstream_plugin::sdk::new_authentication::<TokenAuthentication>(init(
        r#"{"tokens": {}, "extra": 1}"#,
    ))
    .into_result()
    .err()
    .expect("unknown option refused");
    assert!(error.as_str().contains("extra"), "{error}");
}
