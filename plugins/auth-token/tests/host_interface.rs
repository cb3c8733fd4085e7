//! The exported authentication slot, driven the way the server drives it: options as JSON
//! text through `Plugin::new`, answers as FFI values.

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RArc, ROption, RResult, RStr, RString},
};
use auth_token::TokenAuthentication;
use deepstream_plugin::abi::{
    Answer, AuthVerdict, HostServices, HostServices_TO, LogLevel, PluginInit,
};

struct TestHost;

impl HostServices for TestHost {
    fn log_enabled(&self, _level: LogLevel) -> bool {
        false
    }
    fn log(&self, _level: LogLevel, _target: RStr<'_>, _message: RStr<'_>) {}
    fn server_name(&self) -> RString {
        "test-server".into()
    }
}

fn init(options: &str) -> PluginInit {
    PluginInit {
        instance_name: "auth[0]".into(),
        options_json: options.into(),
        host: HostServices_TO::from_ptr(RArc::new(TestHost), TD_Opaque),
    }
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
