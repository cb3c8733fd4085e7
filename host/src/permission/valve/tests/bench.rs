//! Evaluation cost figures (no assertions on timing). Run with
//! `cargo test -p deepstream --release valve_ns_per_eval -- --ignored --nocapture`.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use serde_json::{Value as Json, json};

use super::valve;
use crate::permission::valve::{Decision, NoRecords, RecordLookup, Request, RuleTopic, RuleType};

fn ns_per_iter(iters: u32, mut f: impl FnMut() -> Decision, want: &Decision) -> f64 {
    for _ in 0..iters / 10 {
        assert_eq!(&f(), want);
    }
    let start = Instant::now();
    for _ in 0..iters {
        black_box(f());
    }
    start.elapsed().as_nanos() as f64 / f64::from(iters)
}

#[test]
#[ignore = "prints timing figures; run in release"]
fn valve_ns_per_eval() {
    let v = valve(json!({
        "record": {
            "profile/$userId": {"write": "user.id === $userId"},
            "order/$id": {"write": "_('item/' + data.itemId).stock > 0"},
        }
    }));
    let iters = 1_000_000;

    let r =
        Request::new(RuleTopic::Record, RuleType::Write, "profile/alice").with_user("alice", None);
    let simple = ns_per_iter(
        iters,
        || v.check(black_box(&r), &NoRecords),
        &Decision::Allow,
    );

    let data = json!({"itemId": "apple"});
    let r2 = Request::new(RuleTopic::Record, RuleType::Write, "order/7")
        .with_user("alice", None)
        .with_data(&data);
    let mut store: HashMap<String, Option<Json>> = HashMap::new();
    store.insert("item/apple".to_owned(), Some(json!({"stock": 3})));
    let lookup: &dyn RecordLookup = &store;
    let cross = ns_per_iter(iters, || v.check(black_box(&r2), lookup), &Decision::Allow);

    let r3 = Request::new(RuleTopic::Record, RuleType::Read, "anything").with_user("alice", None);
    let constant = ns_per_iter(
        iters,
        || v.check(black_box(&r3), &NoRecords),
        &Decision::Allow,
    );

    println!("valve: `user.id === $userId`: {simple:.0} ns/eval");
    println!("valve: `_('item/' + data.itemId).stock > 0` (record supplied): {cross:.0} ns/eval");
    println!("valve: `true` on `*`: {constant:.0} ns/eval");
}
