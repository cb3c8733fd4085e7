//! Path patterns, rule selection order (§3.3), `$variable` binding and the
//! selection cache (§3.5).

use serde_json::json;

use super::{req, valve};
use crate::permission::valve::cache::MAX_ENTRIES;
use crate::permission::valve::{
    Decision, NO_NAME, NoRecords, Request, RuleTopic, RuleType, Valve, ValveOptions,
    rule_for_action,
};

fn read(v: &Valve, name: &str) -> Option<String> {
    v.start(&req(RuleTopic::Record, RuleType::Read, name))
        .matched_path()
        .map(str::to_owned)
}

#[test]
fn longest_matching_pattern_wins() {
    let v = valve(json!({"record": {
        "chat/*": {"read": true},
        "chat/$id": {"read": true},
        "chat/general": {"read": true},
        "*/general": {"read": true},
    }}));
    assert_eq!(read(&v, "chat/general").as_deref(), Some("chat/general"));
    assert_eq!(read(&v, "chat/other").as_deref(), Some("chat/$id"));
    assert_eq!(read(&v, "chat/a/b").as_deref(), Some("chat/*"));
    assert_eq!(read(&v, "x/general").as_deref(), Some("*/general"));
    assert_eq!(read(&v, "elsewhere").as_deref(), Some("*"));
}

#[test]
fn patterns_without_the_rule_type_are_skipped() {
    let v = valve(json!({"record": {
        "*": {"read": true, "write": "false"},
        "chat/$id": {"read": "false"},
    }}));
    let w = v.start(&req(RuleTopic::Record, RuleType::Write, "chat/1"));
    assert_eq!(w.matched_path(), Some("*"));
    assert_eq!(w.rule_source(), Some("false"));
    assert_eq!(read(&v, "chat/1").as_deref(), Some("chat/$id"));
}

#[test]
fn no_matching_rule_denies() {
    let doc = json!({
        "record": {"*": {"read": true}, "a/*": {"write": true}},
        "event": {"*": {"publish": true}},
        "rpc": {"*": {"provide": true}},
        "presence": {"*": {"allow": true}},
    });
    let v = Valve::compile(&doc).unwrap();
    let check = |rule, name| v.check(&req(RuleTopic::Record, rule, name), &NoRecords);
    assert_eq!(check(RuleType::Write, "b/1"), Decision::Deny);
    assert_eq!(check(RuleType::Write, "a/1"), Decision::Allow);
    assert_eq!(check(RuleType::Delete, "a/1"), Decision::Deny);
    // A rule type of another section never matches.
    assert_eq!(check(RuleType::Publish, "a/1"), Decision::Deny);
    assert!(
        !v.needs(&req(RuleTopic::Record, RuleType::Delete, "x"))
            .rule_selected
    );
}

#[test]
fn equal_length_the_later_definition_wins() {
    let yaml = |first: &str, second: &str| {
        format!(
            "record:\n  '*': {{read: true}}\n  '{first}': {{read: true}}\n  '{second}': {{read: true}}\n\
             event: {{'*': {{publish: true}}}}\nrpc: {{'*': {{request: true}}}}\npresence: {{'*': {{allow: true}}}}\n"
        )
    };
    let v = Valve::from_yaml_str(&yaml("a/$x", "$y/b")).unwrap();
    assert_eq!(read(&v, "a/b").as_deref(), Some("$y/b"));
    let v = Valve::from_yaml_str(&yaml("$y/b", "a/$x")).unwrap();
    assert_eq!(read(&v, "a/b").as_deref(), Some("a/$x"));
}

#[test]
fn variables_bind_path_segments() {
    let v = valve(json!({"record": {
        "profile/$userId": {"write": "user.id === $userId"},
        "user/$firstname/$lastname": {"read": "$firstname.toLowerCase() === 'egon' && $lastname.toLowerCase() === 'miller'"},
    }}));
    let write = |user: &'static str, name: &'static str| {
        v.check(
            &req(RuleTopic::Record, RuleType::Write, name).with_user(user, None),
            &NoRecords,
        )
    };
    assert_eq!(write("bob", "profile/bob"), Decision::Allow);
    assert_eq!(write("bob", "profile/alice"), Decision::Deny);
    // `$userId` does not match across `/`: falls back to `*` (write: true).
    assert_eq!(write("bob", "profile/bob/x"), Decision::Allow);
    let r = req(RuleTopic::Record, RuleType::Write, "profile/bob/x");
    assert_eq!(v.start(&r).matched_path(), Some("*"));
    let r = |name| v.check(&req(RuleTopic::Record, RuleType::Read, name), &NoRecords);
    assert_eq!(r("user/Egon/Miller"), Decision::Allow);
    assert_eq!(r("user/Egon/Mueller"), Decision::Deny);
}

#[test]
fn pattern_matching_details() {
    let v = valve(json!({"record": {
        "a.b": {"read": true},
        "x*y": {"read": true},
        "(g)+": {"read": true},
        "v/$a$b": {"read": "$a === 'xy' && $b === 'z'"},
        "d/$a/$a": {"read": "$a === 'q'"},
        "m/$a1/$a2/$a3/$a4/$a5/$a6/$a7/$a8/$a9/$a10": {"read": "$a1 === '1' && $a9 === '9' && $a10 === '10'"},
        "ü/$x": {"read": "$x === 'ß'"},
    }}));
    assert_eq!(read(&v, "a.b").as_deref(), Some("a.b"));
    // `.` is literal (escaped), unlike the reference's unescaped regex.
    assert_eq!(read(&v, "axb").as_deref(), Some("*"));
    assert_eq!(read(&v, "xy").as_deref(), Some("x*y"));
    assert_eq!(read(&v, "x/any/thing/y").as_deref(), Some("x*y"));
    assert_eq!(read(&v, "(g)+").as_deref(), Some("(g)+"));
    assert_eq!(read(&v, "gg").as_deref(), Some("*"));
    let check = |name| v.check(&req(RuleTopic::Record, RuleType::Read, name), &NoRecords);
    // Greedy like the reference's regex groups: `$a` takes all but one char.
    assert_eq!(check("v/xyz"), Decision::Allow);
    // Duplicate names: the last capture wins.
    assert_eq!(check("d/p/q"), Decision::Allow);
    assert_eq!(check("d/q/p"), Decision::Deny);
    // More than eight variables.
    assert_eq!(check("m/1/2/3/4/5/6/7/8/9/10"), Decision::Allow);
    assert_eq!(check("ü/ß"), Decision::Allow);
    assert_eq!(check("ü/s"), Decision::Deny);
}

#[test]
fn presence_without_name_matches_the_root() {
    let v = valve(
        json!({"presence": {"*": {"allow": "name === 'undefined'"}, "user/$x": {"allow": false}}}),
    );
    let r = Request::new(RuleTopic::Presence, RuleType::Allow, NO_NAME);
    assert_eq!(v.check(&r, &NoRecords), Decision::Allow);
}

#[test]
fn candidates_are_ordered_longest_first() {
    let v = valve(
        json!({"record": {"ab": {"read": true}, "abc": {"read": true}, "a": {"read": true}}}),
    );
    assert_eq!(
        v.candidate_paths(RuleTopic::Record, RuleType::Read),
        vec!["abc", "ab", "a", "*"]
    );
}

fn many_patterns() -> Valve {
    let opts = ValveOptions {
        cache_evacuation_interval_ms: 100,
        ..ValveOptions::default()
    };
    let mut doc = Valve::default_document();
    for i in 0..6 {
        doc["record"][format!("p{i}/$id")] = json!({"read": format!("$id === '{i}'")});
    }
    Valve::compile_with(&doc, opts).unwrap()
}

#[test]
fn selection_cache_is_used_and_purged() {
    let v = many_patterns();
    let at = |name: &'static str, t: u64| {
        v.check(
            &Request::new(RuleTopic::Record, RuleType::Read, name).with_now(t),
            &NoRecords,
        )
    };
    assert_eq!(at("p3/3", 1000), Decision::Allow);
    assert_eq!(at("p4/3", 1000), Decision::Deny);
    assert_eq!(at("zzz", 1000), Decision::Allow); // cached: selected "*"
    assert_eq!(v.cache_len(), 3);
    // Cached selections give the same decisions, with fresh variable bindings.
    assert_eq!(at("p3/3", 1010), Decision::Allow);
    assert_eq!(at("p4/3", 1010), Decision::Deny);
    assert_eq!(v.cache_len(), 3);
    // First purge: every entry was used since it was added; all are kept and marked unused.
    assert_eq!(at("p3/3", 1100), Decision::Allow);
    assert_eq!(v.cache_len(), 3);
    // Second purge: only p3/3 (used at 1100) survives, then p0/0 is added.
    assert_eq!(at("p0/0", 1200), Decision::Allow);
    assert_eq!(v.cache_len(), 2);
    // Rule types with few candidates bypass the cache.
    let w = Request::new(RuleTopic::Record, RuleType::Write, "p1/1").with_now(1200);
    assert_eq!(v.check(&w, &NoRecords), Decision::Allow);
    assert_eq!(v.cache_len(), 2);
}

#[test]
fn selection_cache_is_size_bounded() {
    let v = many_patterns();
    let names: Vec<String> = (0..MAX_ENTRIES + 10).map(|i| format!("p1/{i}")).collect();
    for n in &names {
        let r = Request::new(RuleTopic::Record, RuleType::Read, n).with_now(5);
        let _ = v.check(&r, &NoRecords);
    }
    assert!(v.cache_len() <= MAX_ENTRIES, "{}", v.cache_len());
    assert!(v.cache_len() > 0);
}

#[test]
fn actions_map_to_rule_types() {
    use RuleTopic::*;
    use RuleType::*;
    type Case = (u32, &'static [u32], Option<(RuleTopic, RuleType)>);
    let cases: &[Case] = &[
        (5, &[25, 21, 22, 3, 5], Some((Record, Read))),
        (5, &[27], Some((Record, Listen))),
        (5, &[15], Some((Record, Create))),
        (5, &[18, 19, 35], Some((Record, Write))),
        (5, &[2], Some((Record, Notify))),
        (5, &[9, 20], Some((Record, Delete))),
        (5, &[23, 16, 17, 26, 28, 29, 30], None),
        (4, &[3], Some((Event, Subscribe))),
        (4, &[2], Some((Event, Publish))),
        (4, &[5], Some((Event, Listen))),
        (4, &[4, 6, 7, 8], None),
        (6, &[8], Some((Rpc, Provide))),
        (6, &[2], Some((Rpc, Request))),
        (6, &[4, 5, 6, 7, 9], None),
        (7, &[10, 12, 4, 2], Some((Presence, Allow))),
        (7, &[11, 13], None),
        (2, &[2], None),
    ];
    for (topic, actions, want) in cases {
        for a in *actions {
            assert_eq!(
                rule_for_action(*topic, *a),
                *want,
                "topic {topic} action {a}"
            );
        }
    }
}

#[test]
fn pathological_patterns_fall_back_to_linear_matching() {
    use crate::permission::valve::path::{Captures, parse_path};
    let p = parse_path("*a*a*a*a*a*a*a*a*b").unwrap();
    let name = "a".repeat(3000);
    let mut caps = Captures::new(0);
    assert!(!p.matches(&name, &mut caps));
    // Generous bound: exponential backtracking would take far longer.
    let yes = format!("{name}b");
    assert!(p.matches(&yes, &mut caps));
}

#[test]
fn backtracking_and_regex_fallback_agree() {
    use crate::permission::valve::path::{BACKTRACK_BUDGET, Captures, parse_path};
    let patterns = [
        "$a$b", "$a/$b", "*/$x", "$x*", "a*$y*z", "$p.$q", "*$v", "$a/$a", "x*y",
    ];
    let names = [
        "abc", "a/b", "q/r/s", "a.b.c", "axyz", "a/b/z", "x/y", "xy", "", "é/ü",
    ];
    for pat in patterns {
        let p = parse_path(pat).unwrap();
        for name in names {
            let mut fast = Captures::new(p.vars.len());
            let mut slow = Captures::new(p.vars.len());
            let a = p.matches_with_budget(name, &mut fast, BACKTRACK_BUDGET);
            let b = p.matches_with_budget(name, &mut slow, 0);
            assert_eq!(a, b, "{pat} vs {name}");
            if a {
                assert_eq!(fast.as_slice(), slow.as_slice(), "{pat} vs {name}");
            }
        }
    }
}
