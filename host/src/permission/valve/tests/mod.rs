//! Tests of the Valve engine.

mod bench;
mod evaluation;
mod grammar;
mod selection;
mod semantics;
mod validation;

use std::collections::HashMap;

use serde_json::{Value as Json, json};

use super::eval::{Scope, Thrown, eval};
use super::parser::{Availability, compile_rule};
use super::value::{Value, number_to_string};
use super::{Decision, Request, RuleTopic, RuleType, Valve};

/// Everything allowed (data and oldData available).
const ALL: Availability = Availability {
    data: true,
    old_data: true,
    rule_type: "write",
    section: "record",
};

/// Renders a value like a JS console would (strings quoted).
fn render(v: &Value<'_>) -> String {
    match v {
        Value::Str(s) => format!("'{s}'"),
        Value::Num(n) => number_to_string(*n),
        Value::Json(j) => j.to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(render).collect::<Vec<_>>().join(",")
        ),
        Value::Regex(re) => re.display(),
        Value::User => "user".to_owned(),
        other => other.clone().into_js_string().into_owned(),
    }
}

/// The record store used by [`js`]: `a` = `{"ref": "b", "n": 1}`, `b` =
/// `{"ok": true}`, `missing` does not exist.
fn store() -> HashMap<String, Option<Json>> {
    let mut m = HashMap::new();
    m.insert("a".to_owned(), Some(json!({"ref": "b", "n": 1})));
    m.insert("b".to_owned(), Some(json!({"ok": true})));
    m.insert("missing".to_owned(), None);
    m
}

/// Evaluates an expression with a fixed scope and renders the result, or
/// `throws <error>`; compile errors are `compile: <reason>`.
/// Scope: `user.id` = "alice", `user.data` = `{"role": "admin"}`,
/// `data` = `{"n": 5, "s": "abc", "arr": [1, 2, 3], "obj": {"k": null}, "empty": ""}`,
/// `oldData` = `{"owner": "alice"}`, `now` = 1000, `action` = 18,
/// `name` = "item/42", `$id` = "42".
fn js(src: &str) -> String {
    let vars = vec!["$id".to_owned()];
    let parsed = match compile_rule(src, &vars, ALL) {
        Ok(p) => p,
        Err(e) => return format!("compile: {e}"),
    };
    let user_data = json!({"role": "admin"});
    let data = json!({"n": 5, "s": "abc", "arr": [1, 2, 3], "obj": {"k": null}, "empty": ""});
    let old = json!({"owner": "alice"});
    let records = store();
    let caps = ["42"];
    let mut scope = Scope {
        user_id: "alice",
        user_data: Some(&user_data),
        data: Value::from_json(&data),
        old_data: Value::from_json(&old),
        now: 1000.0,
        action: 18.0,
        name: "item/42",
        vars: &caps,
        records: &records,
        needs: Vec::new(),
    };
    match eval(&parsed.expr, &mut scope) {
        Ok(v) => render(&v),
        Err(Thrown::Error(e)) => format!("throws {e}"),
        Err(Thrown::Short) => "short-circuit leaked".to_owned(),
    }
}

/// A document with only `"*": true` everywhere, plus `extra` merged into
/// the sections (`extra` = `{"record": {"path": {"read": "..."}}}`).
fn doc_with(extra: Json) -> Json {
    let mut doc = Valve::default_document();
    if let Json::Object(sections) = extra {
        for (s, paths) in sections {
            let target = doc[&s].as_object_mut().expect("section");
            if let Json::Object(paths) = paths {
                for (p, rules) in paths {
                    target.insert(p, rules);
                }
            }
        }
    }
    doc
}

fn valve(extra: Json) -> Valve {
    Valve::compile(&doc_with(extra)).expect("document compiles")
}

/// The first (spec) reason of compiling `doc`.
fn reason(doc: &Json) -> String {
    match Valve::compile(doc) {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.reason().to_owned(),
    }
}

/// The reason a single record write rule is rejected with.
fn rule_reason(section: &str, rule_type: &str, rule: Json) -> String {
    reason(&doc_with(
        json!({ section: { "x/$id": { rule_type: rule } } }),
    ))
}

fn req<'a>(topic: RuleTopic, rule: RuleType, name: &'a str) -> Request<'a> {
    Request::new(topic, rule, name).with_now(1_000)
}

/// Runs passes like a caller would, loading from `store` until a final decision.
fn run_to_end(
    valve: &Valve,
    r: &Request<'_>,
    store: &HashMap<String, Option<Json>>,
) -> (Decision, u32) {
    let mut loaded: HashMap<String, Option<Json>> = HashMap::new();
    let mut ev = valve.start(r);
    loop {
        match ev.pass(&loaded) {
            Decision::NeedRecords(names) => {
                for n in names {
                    let v = store.get(&n).cloned().unwrap_or(None);
                    loaded.insert(n, v);
                }
            }
            d => return (d, ev.passes()),
        }
    }
}
