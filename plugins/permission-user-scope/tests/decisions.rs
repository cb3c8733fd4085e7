//! The permission decisions, through the SDK's `Permission` trait and the exported slot.

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RArc, ROption, RResult, RStr, RString},
};
use deepstream_plugin::abi::{self, Answer, HostServices, HostServices_TO, LogLevel, PluginInit};
use deepstream_plugin::sdk::{Check, Permission, PermissionRequest};
use permission_user_scope::{Options, UserScopePermission, is_allowed};

fn check(user_id: &str, topic: u8, action: i32, name: &str) -> bool {
    let plugin = UserScopePermission;
    let request = PermissionRequest {
        user_id,
        server_data: None,
        topic,
        action,
        name,
        data: Some(r#"{"x":1}"#),
    };
    match plugin.can_perform_action(&request) {
        Check::Ready(result) => result.expect("no error"),
        Check::Pending(_) => panic!("answers are always ready"),
    }
}

#[test]
fn names_containing_the_user_id_are_allowed() {
    for topic in [4, 5, 6] {
        assert!(check("alice", topic, 1, "alice"));
        assert!(check("alice", topic, 1, "alice/settings"));
        assert!(check("alice", topic, 1, "chat-alice"));
        assert!(check("alice", topic, 1, "rooms/alice/inbox"));
        assert!(check("ünï", topic, 1, "profile/ünï/ß"));
    }
}

#[test]
fn other_names_are_denied_on_event_record_rpc() {
    for topic in [4, 5, 6] {
        assert!(!check("alice", topic, 1, "bob/settings"));
        assert!(
            !check("alice", topic, 1, "Alice/settings"),
            "case sensitive"
        );
        assert!(!check("alice", topic, 1, "ali"));
        assert!(!check("alice", topic, 1, "a l i c e"));
    }
}

#[test]
fn messages_without_a_name_and_other_topics_are_allowed() {
    for topic in [4, 5, 6] {
        assert!(check("alice", topic, 1, ""), "no name (e.g. an ack)");
    }
    assert!(check("alice", 7, 1, "bob"), "presence");
    assert!(check("alice", 3, 1, "bob"), "auth topic");
    assert!(check("alice", 0, 1, "bob"));
}

#[test]
fn empty_user_id_is_denied_on_scoped_names() {
    assert!(!is_allowed("", 5, "anything"));
    assert!(is_allowed("", 7, "anything"));
    assert!(is_allowed("", 5, ""));
}

#[test]
fn options_must_be_empty() {
    assert!(serde_json::from_str::<Options>("{}").is_ok());
    assert!(serde_json::from_str::<Options>(r#"{"topics": [5]}"#).is_err());
}

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
        instance_name: "permission".into(),
        options_json: options.into(),
        host: HostServices_TO::from_ptr(RArc::new(TestHost), TD_Opaque),
    }
}

#[test]
fn exported_slot_decides() {
    let instance = deepstream_plugin::sdk::new_permission::<UserScopePermission>(init("{}"))
        .into_result()
        .expect("instance builds");
    let ask = |name: &str| {
        let request = abi::PermissionRequest {
            user_id: RStr::from("alice"),
            server_data: ROption::RNone,
            topic: 5,
            action: 2,
            name: RStr::from(name),
            data: ROption::RNone,
        };
        match instance.slot.can_perform_action(request) {
            Answer::Ready(RResult::ROk(allowed)) => allowed,
            _ => panic!("expected a ready verdict"),
        }
    };
    assert!(ask("alice/x"));
    assert!(!ask("bob/x"));

    let refused =
        deepstream_plugin::sdk::new_permission::<UserScopePermission>(init(r#"{"topics": []}"#))
            .into_result();
    assert!(refused.is_err());
}
