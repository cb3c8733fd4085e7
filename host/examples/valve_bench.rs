//! Cost of Valve permission checks: ns and heap allocations per evaluation.
//!
//! `cargo run -p deepstream --release --example valve_bench`

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use deepstream::permission::valve::{
    Decision, NoRecords, RecordLookup, Request, RuleTopic, RuleType, Valve,
};
use serde_json::{Value, json};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn measure(label: &str, want: &Decision, mut f: impl FnMut() -> Decision) {
    const ITERS: u32 = 2_000_000;
    for _ in 0..ITERS / 10 {
        assert_eq!(&f(), want, "{label}");
    }
    let allocs_before = ALLOCATIONS.load(Ordering::Relaxed);
    let start = Instant::now();
    for _ in 0..ITERS {
        black_box(f());
    }
    let elapsed = start.elapsed();
    let allocs = ALLOCATIONS.load(Ordering::Relaxed) - allocs_before;
    println!(
        "{label}: {:.0} ns/eval, {:.2} allocations/eval",
        elapsed.as_nanos() as f64 / f64::from(ITERS),
        allocs as f64 / f64::from(ITERS)
    );
}

fn main() {
    let mut doc = Valve::default_document();
    doc["record"]["profile/$userId"] = json!({"write": "user.id === $userId"});
    doc["record"]["order/$id"] = json!({"write": "_('item/' + data.itemId).stock > 0"});
    doc["record"]["doc/$id"] = json!({"write": "!oldData || oldData.owner === user.id"});
    let valve = Valve::compile(&doc).expect("valid document");

    let r =
        Request::new(RuleTopic::Record, RuleType::Write, "profile/alice").with_user("alice", None);
    measure("user.id === $userId", &Decision::Allow, || {
        valve.check(black_box(&r), &NoRecords)
    });

    let data = json!({"itemId": "apple"});
    let r = Request::new(RuleTopic::Record, RuleType::Write, "order/7")
        .with_user("alice", None)
        .with_data(&data);
    let mut store: HashMap<String, Option<Value>> = HashMap::new();
    store.insert("item/apple".to_owned(), Some(json!({"stock": 3})));
    let lookup: &dyn RecordLookup = &store;
    measure(
        "_('item/' + data.itemId).stock > 0 (record supplied)",
        &Decision::Allow,
        || valve.check(black_box(&r), lookup),
    );

    let mut current: HashMap<String, Option<Value>> = HashMap::new();
    current.insert("doc/1".to_owned(), Some(json!({"owner": "alice"})));
    let r = Request::new(RuleTopic::Record, RuleType::Write, "doc/1").with_user("alice", None);
    measure(
        "!oldData || oldData.owner === user.id (record supplied)",
        &Decision::Allow,
        || valve.check(black_box(&r), &current),
    );

    let r = Request::new(RuleTopic::Record, RuleType::Read, "anything").with_user("alice", None);
    measure("true on *", &Decision::Allow, || {
        valve.check(black_box(&r), &NoRecords)
    });
}
