//! Rule application: passes, cross-references, data loading, errors (§3.6, §3.7).

use std::collections::HashMap;

use serde_json::{Value as Json, json};

use super::{req, run_to_end, valve};
use crate::permission::valve::{
    Decision, EXCEEDED_ITERATIONS, Needs, NoRecords, Payload, Request, RuleTopic, RuleType, Valve,
    ValveOptions,
};

fn records(entries: &[(&str, Option<Json>)]) -> HashMap<String, Option<Json>> {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn shop() -> Valve {
    valve(json!({
        "record": {
            "order/$id": {"write": "_('item/' + data.itemId).stock > 0"},
            "nested/$id": {"read": "_(_('ptr/' + $id).target).ok === true"},
            "deeper/$id": {"read": "_(_(_('ptr/' + $id).target).next).ok === true"},
            "gone/$id": {"read": "_(\"doesNotExist\").isInStock === true"},
        },
        "event": {"news/$x": {"publish": "_('cfg')?.open || _('cfg2')?.open"}},
    }))
}

#[test]
fn cross_reference_needs_records_then_decides() {
    let v = shop();
    let data = json!({"itemId": "apple"});
    let r = req(RuleTopic::Record, RuleType::Write, "order/1").with_data(&data);
    assert_eq!(
        v.needs(&r),
        Needs {
            rule_selected: true,
            data: true,
            current_record: false,
            cross_references: true
        }
    );
    let mut ev = v.start(&r);
    assert_eq!(
        ev.pass(&NoRecords),
        Decision::NeedRecords(vec!["item/apple".to_owned()])
    );
    let in_stock = records(&[("item/apple", Some(json!({"stock": 3})))]);
    assert_eq!(ev.pass(&in_stock), Decision::Allow);
    assert_eq!(ev.passes(), 2);

    let sold_out = records(&[("item/apple", Some(json!({"stock": 0})))]);
    assert_eq!(v.check(&r, &sold_out), Decision::Deny);
    // A missing record is `null`: reading a property of it is an error.
    let missing = records(&[("item/apple", None)]);
    assert_eq!(
        v.check(&r, &missing),
        Decision::Error("TypeError: Cannot read properties of null (reading 'stock')".to_owned())
    );
}

#[test]
fn all_references_of_a_pass_are_requested_together() {
    let v = shop();
    let data = json!(null);
    let r = req(RuleTopic::Event, RuleType::Publish, "news/a").with_data(&data);
    assert_eq!(
        v.check(&r, &NoRecords),
        Decision::NeedRecords(vec!["cfg".to_owned(), "cfg2".to_owned()])
    );
    let both = records(&[
        ("cfg", Some(json!({"open": false}))),
        ("cfg2", Some(json!({"open": 1}))),
    ]);
    assert_eq!(v.check(&r, &both), Decision::Allow);
}

#[test]
fn nested_cross_reference_within_the_iteration_limit() {
    let v = shop();
    let store = records(&[
        ("ptr/1", Some(json!({"target": "t"}))),
        ("t", Some(json!({"ok": true, "next": "u"}))),
        ("u", Some(json!({"ok": true}))),
    ]);
    let r = req(RuleTopic::Record, RuleType::Read, "nested/1");
    // Pass 1 loads ptr/1, pass 2 loads t, pass 3 decides (default limit 3).
    assert_eq!(run_to_end(&v, &r, &store), (Decision::Allow, 3));
}

#[test]
fn iteration_limit() {
    let v = shop();
    let store = records(&[
        ("ptr/1", Some(json!({"target": "t"}))),
        ("t", Some(json!({"ok": true, "next": "u"}))),
        ("u", Some(json!({"ok": true}))),
    ]);
    let r = req(RuleTopic::Record, RuleType::Read, "deeper/1");
    assert_eq!(
        run_to_end(&v, &r, &store),
        (Decision::Error(EXCEEDED_ITERATIONS.to_owned()), 3)
    );
    // With a higher limit the same rule resolves.
    let opts = ValveOptions {
        max_rule_iterations: 4,
        ..ValveOptions::default()
    };
    let v4 = Valve::compile_with(
        &super::doc_with(json!({"record": {"deeper/$id": {"read": "_(_(_('ptr/' + $id).target).next).ok === true"}}})),
        opts,
    )
    .unwrap();
    assert_eq!(run_to_end(&v4, &r, &store), (Decision::Allow, 4));
    // With a limit of one, any load is too many.
    let one = ValveOptions {
        max_rule_iterations: 1,
        ..ValveOptions::default()
    };
    let v1 = Valve::compile_with(
        &super::doc_with(json!({"record": {"a": {"read": "_('x') === null"}}})),
        one,
    )
    .unwrap();
    let ra = req(RuleTopic::Record, RuleType::Read, "a");
    assert_eq!(
        v1.check(&ra, &NoRecords),
        Decision::Error(EXCEEDED_ITERATIONS.to_owned())
    );
    assert_eq!(v1.check(&ra, &records(&[("x", None)])), Decision::Allow);
    // Passes after the limit are refused.
    let mut ev = v1.start(&ra);
    assert_eq!(ev.pass(&records(&[("x", None)])), Decision::Allow);
    assert_eq!(
        ev.pass(&records(&[("x", None)])),
        Decision::Error(EXCEEDED_ITERATIONS.to_owned())
    );
}

#[test]
fn cross_reference_to_missing_record_is_an_error_not_a_denial() {
    let v = shop();
    let r = req(RuleTopic::Record, RuleType::Read, "gone/1");
    let (d, _) = run_to_end(&v, &r, &HashMap::new());
    assert_eq!(
        d,
        Decision::Error(
            "TypeError: Cannot read properties of null (reading 'isInStock')".to_owned()
        )
    );
    let ev = v.start(&r);
    assert_eq!(
        ev.log_message("TypeError: x"),
        "error when executing _(\"doesNotExist\").isInStock === true\nfor gone/1: TypeError: x"
    );
}

#[test]
fn undefined_names_are_not_loaded() {
    let v = valve(json!({"record": {"a/$id": {"write": "_('user/' + data.owner) === undefined"}}}));
    let data = json!({});
    let r = req(RuleTopic::Record, RuleType::Write, "a/1").with_data(&data);
    assert_eq!(v.check(&r, &NoRecords), Decision::Allow);
}

#[test]
fn errors_of_a_pass_with_pending_loads_are_discarded() {
    let v = valve(json!({"record": {"a": {"read": "_('x').y.z || _('w')"}}}));
    let r = req(RuleTopic::Record, RuleType::Read, "a");
    // `_('x')` is undefined while loading, so `.y` throws, but the load wins.
    assert_eq!(
        v.check(&r, &NoRecords),
        Decision::NeedRecords(vec!["x".to_owned()])
    );
}

#[test]
fn old_data_is_loaded_from_the_record_named_by_the_message() {
    let v = valve(json!({"record": {
        "doc/$id": {"write": "!oldData || oldData.owner === user.id", "delete": "oldData.owner === user.id"},
    }}));
    let data = json!({"x": 1});
    let w = req(RuleTopic::Record, RuleType::Write, "doc/1")
        .with_user("alice", None)
        .with_data(&data);
    assert_eq!(
        v.needs(&w),
        Needs {
            rule_selected: true,
            data: false,
            current_record: true,
            cross_references: false
        }
    );
    assert_eq!(
        v.check(&w, &NoRecords),
        Decision::NeedRecords(vec!["doc/1".to_owned()])
    );
    assert_eq!(v.check(&w, &records(&[("doc/1", None)])), Decision::Allow);
    assert_eq!(
        v.check(&w, &records(&[("doc/1", Some(json!({"owner": "alice"})))])),
        Decision::Allow
    );
    assert_eq!(
        v.check(&w, &records(&[("doc/1", Some(json!({"owner": "bob"})))])),
        Decision::Deny
    );
    let d = req(RuleTopic::Record, RuleType::Delete, "doc/1").with_user("alice", None);
    assert_eq!(
        v.check(&d, &records(&[("doc/1", None)])),
        Decision::Error("TypeError: Cannot read properties of null (reading 'owner')".to_owned())
    );
}

#[test]
fn patch_data_is_the_current_value_with_the_patch_applied() {
    let v = valve(json!({"record": {
        "p/$id": {"write": "data.a.b === 2 && data.keep === true && data.list[2] === 'z'"},
    }}));
    let current = records(&[(
        "p/1",
        Some(json!({"keep": true, "a": {"b": 1}, "list": ["x"]})),
    )]);
    let two = json!(2);
    let patch = |path: Option<&'static str>, value: Option<&'static Json>| -> Payload<'static> {
        Payload::Patch { path, value }
    };
    let r = req(RuleTopic::Record, RuleType::Write, "p/1").with_payload(patch(Some("a.b"), None));
    // Deleting a.b → data.a.b is undefined.
    assert_eq!(v.check(&r, &current), Decision::Deny);
    let r2 = Request {
        data: Payload::Patch {
            path: Some("a.b"),
            value: Some(&two),
        },
        ..r
    };
    assert_eq!(
        v.needs(&r2),
        Needs {
            rule_selected: true,
            data: true,
            current_record: true,
            cross_references: false
        }
    );
    assert_eq!(
        v.check(&r2, &NoRecords),
        Decision::NeedRecords(vec!["p/1".to_owned()])
    );
    // list[2] is still missing.
    assert_eq!(v.check(&r2, &current), Decision::Deny);

    let ops = json!([{"path": "a.b", "data": 2}, {"path": "list[2]", "data": "z"}]);
    let multi =
        req(RuleTopic::Record, RuleType::Write, "p/1").with_payload(Payload::MultiPatch(&ops));
    assert_eq!(v.check(&multi, &current), Decision::Allow);
    // The supplied record itself is not modified.
    assert_eq!(
        current["p/1"],
        Some(json!({"keep": true, "a": {"b": 1}, "list": ["x"]}))
    );

    let bad = json!({"path": "a"});
    let multi_bad =
        req(RuleTopic::Record, RuleType::Write, "p/1").with_payload(Payload::MultiPatch(&bad));
    assert_eq!(
        v.check(&multi_bad, &current),
        Decision::Error("Invalid MultiPatch Data p/1".to_owned())
    );
    let no_path = req(RuleTopic::Record, RuleType::Write, "p/1").with_payload(patch(None, None));
    assert_eq!(
        v.check(&no_path, &current),
        Decision::Error("Missing path for record patch p/1".to_owned())
    );
    assert_eq!(
        v.check(&r2, &records(&[("p/1", None)])),
        Decision::Error("Tried to apply patch to non-existant record p/1".to_owned())
    );
    let proto = Request {
        data: Payload::Patch {
            path: Some("__proto__.x"),
            value: Some(&two),
        },
        ..r
    };
    assert_eq!(
        v.check(&proto, &current),
        Decision::Error("error when converting message data invalid path __proto__.x".to_owned())
    );
}

#[test]
fn json_path_set_semantics() {
    use crate::permission::valve::json_path::set_path;
    let set = |mut root: Json, path: &str, value: Option<Json>| {
        set_path(&mut root, path, value.as_ref()).unwrap();
        root
    };
    assert_eq!(
        set(json!({}), "a.b", Some(json!(1))),
        json!({"a": {"b": 1}})
    );
    assert_eq!(
        set(json!({}), "a[1]", Some(json!(1))),
        json!({"a": [null, 1]})
    );
    assert_eq!(
        set(json!({}), "a[0].b", Some(json!(1))),
        json!({"a": [{"b": 1}]})
    );
    assert_eq!(
        set(json!({"a": null}), "a.b", Some(json!(1))),
        json!({"a": {"b": 1}})
    );
    assert_eq!(
        set(json!({"a": 5}), "a.b", Some(json!(1))),
        json!({"a": {"b": 1}})
    );
    assert_eq!(
        set(json!({"a": [1, 2]}), "a.1", Some(json!(9))),
        json!({"a": [1, 9]})
    );
    assert_eq!(
        set(json!({"a": {"b": 1, "c": 2}}), "a.b", None),
        json!({"a": {"c": 2}})
    );
    assert_eq!(
        set(json!({"a": [1, 2]}), "a[0]", None),
        json!({"a": [null, 2]})
    );
    assert_eq!(
        set(json!({"x": 1}), " a . b ", Some(json!(1))),
        json!({"x": 1, "a": {"b": 1}})
    );
    assert_eq!(
        set(json!({"x": 1}), "", Some(json!({"y": 2}))),
        json!({"y": 2})
    );
    assert_eq!(
        set(json!({}), "..", Some(json!(1))),
        json!({"undefined": 1})
    );
    assert_eq!(set(json!({}), "a[x]", Some(json!(1))), json!({"a": []}));
    assert_eq!(
        set(json!({}), "a.b[x]", Some(json!(1))),
        json!({"a": {"b": []}})
    );
    let mut root = json!({});
    assert!(set_path(&mut root, "a.constructor", Some(&json!(1))).is_err());
    assert!(set_path(&mut root, "a[10000000]", Some(&json!(1))).is_err());
    // The record handler's gap limit, not more: the check never builds what the write cannot.
    assert!(set_path(&mut root, "a[2000]", Some(&json!(1))).is_err());
    assert!(set_path(&mut root, "b[1000]", Some(&json!(1))).is_ok());
}

#[test]
fn data_is_only_computed_when_the_rule_uses_it() {
    let v = valve(
        json!({"event": {"e/uses": {"publish": "data.ok === true"}, "e/not": {"publish": "true && 1"}}}),
    );
    let uses = req(RuleTopic::Event, RuleType::Publish, "e/uses")
        .with_payload(Payload::Invalid("Unexpected token"));
    assert_eq!(
        v.check(&uses, &NoRecords),
        Decision::Error("error when converting message data Unexpected token".to_owned())
    );
    let not = req(RuleTopic::Event, RuleType::Publish, "e/not").with_payload(Payload::Invalid("x"));
    assert_eq!(v.check(&not, &NoRecords), Decision::Allow);
    assert!(!v.needs(&not).data);
    assert!(v.needs(&uses).data);
    // No payload: data is null.
    let v = valve(json!({"event": {"n": {"publish": "data === null"}}}));
    assert_eq!(
        v.check(&req(RuleTopic::Event, RuleType::Publish, "n"), &NoRecords),
        Decision::Allow
    );
}

#[test]
fn user_variables() {
    let v = valve(json!({"rpc": {
        "who": {"request": "user.id"},
        "auth": {"request": "user.isAuthenticated"},
        "admin": {"request": "user.data.role === 'admin'"},
        "nodata": {"request": "user.data === null"},
    }}));
    let c = |name: &'static str, id: Option<&'static str>, data: Option<&'static Json>| {
        let mut r = req(RuleTopic::Rpc, RuleType::Request, name);
        r.user_id = id;
        r.user_data = data;
        v.check(&r, &NoRecords)
    };
    assert_eq!(c("who", Some("bob"), None), Decision::Allow);
    // No id in the auth result: user.id is "OPEN", which counts as authenticated.
    assert_eq!(c("auth", None, None), Decision::Allow);
    assert_eq!(c("auth", Some("OPEN"), None), Decision::Allow);
    assert_eq!(c("auth", Some("open"), None), Decision::Deny);
    assert_eq!(c("who", Some(""), None), Decision::Deny);
    static ADMIN: std::sync::LazyLock<Json> = std::sync::LazyLock::new(|| json!({"role": "admin"}));
    assert_eq!(c("admin", Some("x"), Some(&ADMIN)), Decision::Allow);
    assert_eq!(c("nodata", Some("x"), None), Decision::Allow);
    assert_eq!(
        c("admin", Some("x"), None),
        Decision::Error("TypeError: Cannot read properties of null (reading 'role')".to_owned())
    );
}

#[test]
fn request_for_message() {
    let r = Request::for_message(5, 19, "rec").expect("PATCH is checked");
    assert_eq!(
        (r.topic, r.rule, r.action, r.name),
        (RuleTopic::Record, RuleType::Write, 19, "rec")
    );
    assert!(Request::for_message(5, 26, "rec").is_none());
}

#[test]
fn now_action_and_name() {
    let v = valve(
        json!({"record": {"t/$x": {"create": "now === 1234 && action === 15 && name === 't/' + $x"}}}),
    );
    let r = Request::new(RuleTopic::Record, RuleType::Create, "t/9")
        .with_now(1234)
        .with_action(15);
    assert_eq!(v.check(&r, &NoRecords), Decision::Allow);
}

/// Spec §2.4.2 quirk: the reference denies only on a strict `false` in one
/// path and on any falsy value in another. Decision: coerce to boolean
/// everywhere; truthy allows.
#[test]
fn quirk_rule_result_is_coerced_to_boolean() {
    let cases = [
        ("'yes'", Decision::Allow),
        ("1", Decision::Allow),
        ("[]", Decision::Allow),
        ("data", Decision::Allow),
        ("''", Decision::Deny),
        ("0", Decision::Deny),
        ("NaN", Decision::Deny),
        ("null", Decision::Deny),
        ("undefined", Decision::Deny),
        ("data.missing", Decision::Deny),
        ("false", Decision::Deny),
    ];
    for (rule, want) in cases {
        let v = valve(json!({"event": {"e": {"publish": rule}}}));
        let data = json!({"x": 1});
        let r = req(RuleTopic::Event, RuleType::Publish, "e").with_data(&data);
        assert_eq!(v.check(&r, &NoRecords), want, "rule {rule}");
    }
}

/// Spec §3.4 (not a quirk, but a deliberate deviation): textual checks in
/// the reference reject `'new'` inside string literals; here they run on tokens.
#[test]
fn decision_keywords_inside_strings_are_allowed() {
    let v = valve(
        json!({"record": {"s/$x": {"write": "data.status === 'new' || data.kind === 'function'"}}}),
    );
    let data = json!({"status": "new"});
    let r = req(RuleTopic::Record, RuleType::Write, "s/1").with_data(&data);
    assert_eq!(v.check(&r, &NoRecords), Decision::Allow);
}

#[test]
fn boolean_rules_need_nothing() {
    let v = Valve::compile(&Valve::default_document()).unwrap();
    for topic in RuleTopic::ALL {
        for rule in topic.rule_types() {
            let r = req(topic, *rule, "any/name");
            assert_eq!(v.check(&r, &NoRecords), Decision::Allow);
            assert_eq!(
                v.needs(&r),
                Needs {
                    rule_selected: true,
                    ..Needs::default()
                }
            );
        }
    }
}

#[test]
fn valve_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<Valve>();
    assert_send::<crate::permission::valve::Evaluation<'static, 'static>>();
    assert_send_sync::<Decision>();
}
