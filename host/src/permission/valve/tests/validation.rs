//! Every validation reason of spec §3.1 / §3.2 / §3.4.

use serde_json::json;

use super::{doc_with, reason, rule_reason};
use crate::permission::valve::{Valve, ValveOptions};

#[test]
fn default_document_is_valid() {
    assert_eq!(reason(&Valve::default_document()), "ok");
}

#[test]
fn document_must_be_an_object() {
    assert_eq!(
        reason(&json!("x")),
        "config should be an object literal, but was of type string"
    );
    assert_eq!(
        reason(&json!(1)),
        "config should be an object literal, but was of type number"
    );
    assert_eq!(
        reason(&json!(true)),
        "config should be an object literal, but was of type boolean"
    );
    assert_eq!(
        reason(&json!(null)),
        "config should be an object literal, but was of type null"
    );
    assert_eq!(
        reason(&json!([])),
        "config should be an object literal, but was of type array"
    );
}

#[test]
fn sections() {
    let mut doc = Valve::default_document();
    doc.as_object_mut().unwrap().remove("rpc");
    assert_eq!(reason(&doc), "missing configuration section \"rpc\"");

    let mut doc = Valve::default_document();
    doc["foo"] = json!({"*": {"read": true}});
    assert_eq!(reason(&doc), "unexpected configuration section \"foo\"");

    let mut doc = Valve::default_document();
    doc["event"] = json!({});
    assert_eq!(reason(&doc), "empty section \"event\"");

    let mut doc = Valve::default_document();
    doc["event"] = json!(true);
    assert_eq!(reason(&doc), "empty section \"event\"");
}

#[test]
fn path_errors() {
    let bad = |path: &str| reason(&doc_with(json!({"record": {path: {"read": true}}})));
    assert_eq!(bad(""), "path can't be empty for path  in section record");
    assert_eq!(
        bad("/a"),
        "path can't start with / for path /a in section record"
    );
    assert_eq!(
        bad("a/$-x"),
        "invalid variable name $- for path a/$-x in section record"
    );
    assert_eq!(
        bad("a/$"),
        "invalid variable name $ for path a/$ in section record"
    );
    // Non-scalar YAML keys are not strings.
    let yaml = "record:\n  ? [a, b]\n  : {read: true}\n  '*': {read: true}\nevent: {'*': {publish: true}}\nrpc: {'*': {request: true}}\npresence: {'*': {allow: true}}\n";
    let err = Valve::from_yaml_str(yaml).unwrap_err();
    assert_eq!(
        err.reason(),
        "path must be a string for path [object Object] in section record"
    );
}

#[test]
fn missing_root_entry() {
    let mut doc = Valve::default_document();
    doc["rpc"] = json!({"a": {"provide": true}});
    assert_eq!(reason(&doc), "missing root entry \"*\" for section rpc");
}

#[test]
fn unknown_rule_type() {
    let doc = doc_with(json!({"event": {"a": {"write": true}}}));
    assert_eq!(reason(&doc), "unknown rule type write in section event");
    let doc = doc_with(json!({"record": {"a": {"reed": true}}}));
    assert_eq!(reason(&doc), "unknown rule type reed in section record");
}

#[test]
fn rules_of_a_path_must_be_a_map() {
    let doc = doc_with(json!({"record": {"a": true}}));
    let err = Valve::compile(&doc).unwrap_err();
    assert_eq!(
        err.to_string(),
        "record.'a': the rules of a path must be an object mapping rule types to rules, but was of type boolean"
    );
}

#[test]
fn rule_level_reasons() {
    let r = |rule| rule_reason("record", "write", rule);
    assert_eq!(r(json!(true)), "ok");
    assert_eq!(r(json!(false)), "ok");
    assert_eq!(r(json!(1)), "rule must be a string");
    assert_eq!(r(json!(null)), "rule must be a string");
    assert_eq!(r(json!(["a"])), "rule must be a string");
    assert_eq!(r(json!("")), "rule can't be empty");
    assert_eq!(
        r(json!("new Date() > 0")),
        "rule can't contain the new keyword"
    );
    assert_eq!(r(json!("(new)")), "rule can't contain the new keyword");
    assert_eq!(
        r(json!("(function(){ return true })()")),
        "rule can't contain user functions"
    );
    assert_eq!(
        r(json!("[1].some(x => x)")),
        "rule can't contain user functions"
    );
    assert_eq!(
        r(json!("Math.max(1, 2) > 1")),
        "function max is not supported"
    );
    assert_eq!(
        r(json!("/a/.test(data.s)")),
        "function test is not supported"
    );
    assert_eq!(
        r(json!("data.s.substr(1) === 'b'")),
        "function substr is not supported"
    );
    assert_eq!(r(json!("data[\"x\"](1)")), "function x is not supported");
    assert_eq!(r(json!("data['x'] (1)")), "function x is not supported");
    assert_eq!(r(json!("data[`x`](1)")), "function x is not supported");
    assert_eq!(r(json!("foo(1)")), "function foo is not supported");
    assert_eq!(r(json!("`${eval('1')}`")), "function eval is not supported");
    assert_eq!(
        r(json!("data[data.k](1)")),
        "function data[data.k] is not supported"
    );
    assert_eq!(
        r(json!("user.id ===")),
        "SyntaxError: Unexpected end of input"
    );
    assert_eq!(
        r(json!("user.id user.id")),
        "SyntaxError: Unexpected identifier"
    );
    // Allowed calls.
    assert_eq!(
        r(json!(
            "_('a').x && data.s.startsWith('a') && data.s.endsWith('a') && data.s.includes('a') && data.s.indexOf('a') > 0 && data.s.match(/a/) && data.s.toUpperCase() && data.s.toLowerCase() && data.s.trim()"
        )),
        "ok"
    );
    assert_eq!(r(json!("data['startsWith']")), "ok");
}

#[test]
fn rule_level_checks_run_in_spec_order() {
    let r = |rule| rule_reason("record", "read", rule);
    // `new` is reported before user functions, calls and syntax.
    assert_eq!(
        r(json!("new function() {} foo( )")),
        "rule can't contain the new keyword"
    );
    assert_eq!(
        r(json!("function() {} foo( )")),
        "rule can't contain user functions"
    );
    assert_eq!(r(json!("foo( ) ) )")), "function foo is not supported");
    // Syntax before data/oldData availability.
    assert_eq!(
        r(json!("data.x ===")),
        "SyntaxError: Unexpected end of input"
    );
    // Availability before unknown identifiers.
    assert_eq!(
        r(json!("data.x === Foo")),
        "rule read for record does not support data"
    );
}

#[test]
fn data_and_old_data_availability() {
    let cases = [
        ("record", "read", false, true),
        ("record", "create", false, false),
        ("record", "write", true, true),
        ("record", "delete", false, true),
        ("record", "listen", false, false),
        ("record", "notify", false, false),
        ("event", "publish", true, false),
        ("event", "subscribe", true, false),
        ("event", "listen", false, false),
        ("rpc", "provide", false, false),
        ("rpc", "request", true, false),
        ("presence", "allow", false, false),
    ];
    for (section, rule_type, data, old_data) in cases {
        let with_data = rule_reason(section, rule_type, json!("data !== null"));
        let want = if data {
            "ok".to_owned()
        } else {
            format!("rule {rule_type} for {section} does not support data")
        };
        assert_eq!(with_data, want, "{section}.{rule_type} data");
        let with_old = rule_reason(section, rule_type, json!("oldData !== null"));
        let want = if old_data {
            "ok".to_owned()
        } else {
            format!("rule {rule_type} for {section} does not support oldData")
        };
        assert_eq!(with_old, want, "{section}.{rule_type} oldData");
    }
    // oldData is checked before data.
    assert_eq!(
        rule_reason("record", "create", json!("data && oldData")),
        "rule create for record does not support oldData"
    );
}

#[test]
fn usage_detection_is_by_token_not_text() {
    let r = |rule| rule_reason("record", "read", rule);
    assert_eq!(r(json!("user.data.role === 'admin'")), "ok");
    assert_eq!(r(json!("_('data/' + $id) !== null")), "ok");
    assert_eq!(r(json!("$id !== 'new' && $id !== 'function'")), "ok");
    assert_eq!(r(json!("oldData.new === 1")), "ok");
    assert_eq!(r(json!("typeof (oldData) === 'object'")), "ok");
    assert_eq!(
        r(json!("`${data}`")),
        "rule read for record does not support data"
    );
}

#[test]
fn every_problem_is_listed_with_its_place() {
    let doc = doc_with(json!({
        "record": {
            "chat/$id": {"write": "", "read": "data.x"},
            "user/$uid": {"read": "user.id === $uid"}
        },
        "event": {"news/*": {"publish": "new Date()"}}
    }));
    let err = Valve::compile(&doc).unwrap_err();
    let shown: Vec<String> = err.problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        vec![
            // serde_json maps iterate in key order here (no `preserve_order`).
            "record.'chat/$id'.read: rule read for record does not support data",
            "record.'chat/$id'.write: rule can't be empty",
            "event.'news/*'.publish: rule can't contain the new keyword",
        ]
    );
    assert_eq!(err.reason(), "rule read for record does not support data");
    assert_eq!(err.to_string(), shown.join("; "));
}

#[test]
fn rule_problems_are_listed_after_structural_ones() {
    let doc = doc_with(json!({
        "record": {"/bad": {"read": true}, "ok": {"read": ""}},
        "event": {"e": {"write": true, "publish": "new X()"}},
    }));
    let err = Valve::compile(&doc).unwrap_err();
    let shown: Vec<String> = err.problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        vec![
            "path can't start with / for path /bad in section record",
            "unknown rule type write in section event",
            "record.'ok'.read: rule can't be empty",
            "event.'e'.publish: rule can't contain the new keyword",
        ]
    );
}

#[test]
fn options() {
    assert_eq!(ValveOptions::default().max_rule_iterations, 3);
    assert_eq!(ValveOptions::default().cache_evacuation_interval_ms, 60_000);
    let o =
        ValveOptions::from_config(&json!({"maxRuleIterations": 5, "cacheEvacuationInterval": 10}))
            .unwrap();
    assert_eq!(o.max_rule_iterations, 5);
    assert_eq!(o.cache_evacuation_interval_ms, 10);
    for bad in [0, -1] {
        let e = ValveOptions::from_config(&json!({ "maxRuleIterations": bad })).unwrap_err();
        assert_eq!(e.reason(), "Maximum rule iteration has to be at least one");
    }
    let opts = ValveOptions {
        max_rule_iterations: 0,
        ..ValveOptions::default()
    };
    let e = Valve::compile_with(&Valve::default_document(), opts).unwrap_err();
    assert_eq!(e.reason(), "Maximum rule iteration has to be at least one");
}

#[test]
fn yaml_documents() {
    let yaml = r#"
record:
  "*":
    read: true
    write: "user.id === 'admin'"
  "profile/$userId":
    write: "user.id === $userId"
event:
  "*":
    publish: true
rpc:
  "*":
    request: true
presence:
  "*":
    allow: true
"#;
    let v = Valve::from_yaml_str(yaml).expect("valid");
    assert_eq!(v.options().max_rule_iterations, 3);
    let err = Valve::from_yaml_str("record: [").unwrap_err();
    assert!(
        err.reason().starts_with("invalid permissions file:"),
        "{err}"
    );
    let parsed: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    assert!(Valve::compile_yaml(&parsed, ValveOptions::default()).is_ok());
}
