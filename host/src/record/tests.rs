//! Raw messages through the record handler, replies read back off the connections' frame
//! queues. Stores that answer later (tokio's paused clock) exercise the queue's ordering and
//! the write-ack rules; stores that answer at once exercise the synchronous path.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use parking_lot::Mutex;
use serde_json::{Value, json};

use super::*;
use crate::{
    config::RecordConfig,
    connection::{Connection, Outbound, Outbox},
    protocol::{self, RecordAction as A},
    services::{
        Answer, Lifecycle, PermissionRequest, RecordStore, ServiceError, StateRegistryFactory,
        StoredRecord,
        builtin::{
            MemoryCache, NoMonitoring, OpenPermission, SingleClusterNode,
            SingleStateRegistryFactory,
        },
    },
};

/// How a [`TestStore`] answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// At once (`Answer::Ready`), like the memory cache.
    Sync,
    /// After a delay on the (paused) tokio clock; sets may take their delay from `set_delays`.
    Delayed(u64),
    /// Every call fails.
    Failing,
    /// Reads answer at once, writes and deletes fail.
    FailingWrites,
    /// Nothing ever answers.
    Hanging,
}

/// A record map with configurable answers, counting its calls.
struct TestStore {
    /// The records.
    records: Arc<MemoryCache>,
    /// How answers come.
    mode: Mode,
    /// Delays (ms) for the next sets, in order, overriding the mode's delay.
    set_delays: Mutex<VecDeque<u64>>,
    /// Calls made, of any method.
    calls: AtomicUsize,
}

impl TestStore {
    fn new(mode: Mode) -> Arc<Self> {
        Arc::new(TestStore {
            records: Arc::default(),
            mode,
            set_delays: Mutex::default(),
            calls: AtomicUsize::new(0),
        })
    }

    fn holding(mode: Mode, name: &str, version: i32, data: &str) -> Arc<Self> {
        let store = TestStore::new(mode);
        seed(&store.records, name, version, data);
        store
    }

    fn stored(&self, name: &str) -> Option<(i32, Value)> {
        match self.records.get(name) {
            Answer::Ready(Ok(Some(record))) => {
                Some((record.version, serde_json::from_str(&record.data).unwrap()))
            }
            _ => None,
        }
    }

    /// Answers with `operation` run on the map, the way `mode` says.
    fn answer<T: Send + 'static>(
        &self,
        delay: Option<u64>,
        write: bool,
        operation: impl FnOnce(&MemoryCache) -> Answer<T> + Send + 'static,
    ) -> Answer<T> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let records = self.records.clone();
        match self.mode {
            Mode::FailingWrites if write => Answer::Ready(Err("store failure".into())),
            Mode::Sync | Mode::FailingWrites => operation(&records),
            Mode::Failing => Answer::Ready(Err("store failure".into())),
            Mode::Hanging => Answer::Pending(Box::pin(std::future::pending())),
            Mode::Delayed(default) => Answer::Pending(Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(delay.unwrap_or(default))).await;
                operation(&records).resolve().await
            })),
        }
    }
}

impl Lifecycle for TestStore {
    fn description(&self) -> String {
        "test store".into()
    }
}

impl RecordStore for TestStore {
    fn get(&self, name: &str) -> Answer<Option<StoredRecord>> {
        let name = name.to_owned();
        self.answer(None, false, move |records| records.get(&name))
    }

    fn set(&self, name: &str, version: i32, data: Arc<str>) -> Answer<()> {
        let name = name.to_owned();
        let delay = self.set_delays.lock().pop_front();
        self.answer(delay, true, move |records| {
            records.set(&name, version, data)
        })
    }

    fn delete(&self, name: &str) -> Answer<()> {
        let name = name.to_owned();
        self.answer(None, true, move |records| records.delete(&name))
    }

    fn delete_bulk(&self, names: &[String]) -> Answer<()> {
        let names = names.to_vec();
        self.answer(None, true, move |records| records.delete_bulk(&names))
    }

    fn head(&self, name: &str) -> Answer<Option<i32>> {
        let name = name.to_owned();
        self.answer(None, false, move |records| records.head(&name))
    }

    fn head_bulk(&self, names: &[String]) -> Answer<Vec<(String, i32)>> {
        let names = names.to_vec();
        self.answer(None, false, move |records| records.head_bulk(&names))
    }
}

/// Denies the listed record actions, allows everything else.
struct Deny(Vec<A>);

impl Lifecycle for Deny {
    fn description(&self) -> String {
        "deny".into()
    }
}

impl Permission for Deny {
    fn can_perform_action(&self, request: &PermissionRequest<'_>) -> Answer<bool> {
        Answer::Ready(Ok(!self
            .0
            .iter()
            .any(|action| *action as i32 == request.action)))
    }
}

/// Records what reaches the listen delegate.
#[derive(Default)]
struct Listen(Mutex<Vec<i32>>);

impl TopicHandler for Listen {
    fn handle(&self, _connection: &ConnectionHandle, message: Message) {
        self.0.lock().push(message.action);
    }
}

/// A handler with its stores and the next connection id.
struct Setup {
    handler: RecordHandler,
    cache: Arc<TestStore>,
    storage: Arc<TestStore>,
    /// Next connection id.
    ids: AtomicU64,
}

/// A client connection and what was sent to it.
struct Client {
    connection: ConnectionHandle,
    frames: Outbox,
}

impl Client {
    /// Everything received since the last call, decoded.
    fn received(&mut self) -> Vec<Message> {
        let mut messages = Vec::new();
        while let Some(Outbound::Frame(frame)) = self.frames.try_recv() {
            messages.push(protocol::decode(frame).expect("the server sent a decodable frame"));
        }
        messages
    }

    /// The one message received since the last call.
    fn only(&mut self) -> Message {
        let mut received = self.received();
        assert_eq!(received.len(), 1, "expected one message, got {received:#?}");
        received.remove(0)
    }
}

fn config() -> RecordConfig {
    RecordConfig {
        cache_retrieval_timeout: Duration::from_millis(1000),
        storage_retrieval_timeout: Duration::from_millis(2000),
        storage_exclusion_prefixes: vec!["local/".into()],
        storage_hot_path_prefixes: vec!["hot/".into()],
    }
}

impl Setup {
    fn new(cache: Arc<TestStore>, storage: Arc<TestStore>) -> Self {
        Setup::with(cache, storage, Arc::new(OpenPermission), None)
    }

    fn sync() -> Self {
        Setup::new(TestStore::new(Mode::Sync), TestStore::new(Mode::Sync))
    }

    fn with(
        cache: Arc<TestStore>,
        storage: Arc<TestStore>,
        permission: Arc<dyn Permission>,
        listen: Option<Arc<dyn TopicHandler>>,
    ) -> Self {
        let states = SingleStateRegistryFactory::new("test".into());
        let subscriptions = SubscriptionRegistry::new(
            Topic::Record,
            RECORD_ACTIONS,
            states.registry(12).unwrap(),
            Arc::new(SingleClusterNode),
            Arc::new(NoMonitoring),
        );
        let handler = RecordHandler::new(
            Arc::new(Store::new(&config(), cache.clone(), storage.clone())),
            permission,
            subscriptions,
            listen,
        );
        Setup {
            handler,
            cache,
            storage,
            ids: AtomicU64::new(1),
        }
    }

    fn client(&self) -> Client {
        let (connection, frames) = Connection::new(self.ids.fetch_add(1, Ordering::SeqCst), "test");
        Client { connection, frames }
    }

    fn send(&self, client: &Client, message: Message) {
        self.handler.handle(&client.connection, message);
    }

    /// A client holding `name` (SUBSCRIBECREATEANDREAD), its replies consumed.
    async fn holder(&self, name: &str) -> Client {
        let mut client = self.client();
        self.send(
            &client,
            Message::new(Topic::Record, A::SubscribeCreateAndRead)
                .with_names([name])
                .with_correlation_id("0"),
        );
        settle().await;
        let replies = client.received();
        assert!(
            replies.iter().any(|m| m.action == A::ReadResponse as i32),
            "{name} was read: {replies:#?}"
        );
        client
    }
}

/// Lets spawned work and (paused) timers run to completion.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(60)).await;
}

fn record(action: A) -> Message {
    Message::new(Topic::Record, action)
}

fn update(name: &str, version: i32, data: &str) -> Message {
    record(A::Update)
        .with_name(name)
        .with_version(version)
        .with_data(data.to_owned())
}

fn patch(name: &str, version: i32, path: &str, data: &str) -> Message {
    record(A::Patch)
        .with_name(name)
        .with_version(version)
        .with_path(path)
        .with_data(data.to_owned())
}

fn with_ack(message: Message, correlation_id: &str) -> Message {
    message
        .with_correlation_id(correlation_id)
        .with_write_ack(true)
}

fn data(message: &Message) -> Value {
    message.parse_data().unwrap().expect("message has data")
}

fn is(message: &Message, action: A) -> bool {
    message.action == action as i32
}

#[tokio::test(start_paused = true)]
async fn subscribe_create_and_read_acks_first_then_creates_version_0() {
    let setup = Setup::sync();
    let mut client = setup.client();
    let request = record(A::SubscribeCreateAndRead)
        .with_names(["r"])
        .with_correlation_id("0");
    setup.send(&client, request.clone());
    let replies = client.received();
    assert_eq!(replies.len(), 2, "{replies:#?}");
    assert_eq!(
        replies[0],
        request.with_ack(),
        "the ack echoes the whole request"
    );
    assert_eq!(
        replies[1],
        record(A::ReadResponse)
            .with_name("r")
            .with_version(0)
            .with_data("{}")
    );
    assert_eq!(setup.cache.stored("r"), Some((0, json!({}))));
    assert_eq!(setup.storage.stored("r"), Some((0, json!({}))));
}

#[tokio::test(start_paused = true)]
async fn subscribe_and_read_of_a_missing_record_reads_minus_1_and_creates_nothing() {
    let setup = Setup::sync();
    let mut client = setup.client();
    setup.send(
        &client,
        record(A::SubscribeAndRead)
            .with_names(["r"])
            .with_correlation_id("0"),
    );
    let replies = client.received();
    assert_eq!(
        replies[1],
        record(A::ReadResponse)
            .with_name("r")
            .with_version(-1)
            .with_data("{}")
    );
    assert_eq!(setup.cache.stored("r"), None);
    // Subscribed all the same: a later write reaches it.
    let writer = setup.client();
    setup.send(
        &writer,
        record(A::CreateAndUpdate)
            .with_name("r")
            .with_version(-1)
            .with_data("{\"x\":1}"),
    );
    assert!(is(&client.only(), A::Update));
}

#[tokio::test(start_paused = true)]
async fn a_storage_hit_is_read_and_copied_into_the_cache() {
    let setup = Setup::new(
        TestStore::new(Mode::Sync),
        TestStore::holding(Mode::Sync, "r", 7, "{\"s\":1}"),
    );
    let mut client = setup.client();
    setup.send(
        &client,
        record(A::SubscribeCreateAndRead)
            .with_names(["r"])
            .with_correlation_id("0"),
    );
    let read = client.received().pop().unwrap();
    assert_eq!((read.version, data(&read)), (Some(7), json!({"s": 1})));
    assert_eq!(setup.cache.stored("r"), Some((7, json!({"s": 1}))));
}

#[tokio::test(start_paused = true)]
async fn storage_excluded_names_never_touch_storage() {
    let setup = Setup::sync();
    let mut client = setup.holder("local/r").await;
    setup.send(&client, update("local/r", 1, "{\"a\":1}"));
    setup.send(&client, record(A::Read).with_name("local/missing"));
    setup.send(&client, record(A::Delete).with_name("local/r"));
    assert!(is(&client.received()[0], A::RecordNotFound));
    assert_eq!(setup.storage.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn duplicate_subscriptions_get_multiple_subscriptions_and_still_a_read() {
    let setup = Setup::sync();
    let mut client = setup.holder("r").await;
    setup.send(
        &client,
        record(A::SubscribeCreateAndRead)
            .with_names(["r"])
            .with_correlation_id("1"),
    );
    let replies = client.received();
    assert_eq!(
        replies[1],
        record(A::MultipleSubscriptions)
            .with_original_action(A::Subscribe)
            .with_name("r")
    );
    assert!(is(&replies[2], A::ReadResponse));
}

#[tokio::test(start_paused = true)]
async fn writes_are_broadcast_to_other_subscribers_not_the_writer() {
    let setup = Setup::sync();
    let mut writer = setup.holder("r").await;
    let mut other = setup.holder("r").await;
    setup.send(
        &writer,
        with_ack(update("r", 1, "{\"a\":1,\"b\":{\"c\":[1,2]}}"), "1"),
    );
    assert_eq!(
        writer.only(),
        record(A::WriteAcknowledgement)
            .with_name("r")
            .with_correlation_id("1")
            .with_write_ack(true)
    );
    assert_eq!(
        other.only(),
        update("r", 1, "{\"a\":1,\"b\":{\"c\":[1,2]}}").with_write_ack(false),
        "broadcasts carry isWriteAck: false and no correlationId"
    );

    setup.send(&writer, patch("r", 2, "b.c[1]", "5"));
    assert_eq!(
        other.only(),
        patch("r", 2, "b.c[1]", "5").with_write_ack(false)
    );
    setup.send(
        &writer,
        record(A::Erase)
            .with_name("r")
            .with_version(3)
            .with_path("a"),
    );
    assert_eq!(
        other.only(),
        record(A::Patch)
            .with_name("r")
            .with_version(3)
            .with_path("a")
            .with_write_ack(false),
        "an erase goes out as a PATCH without data"
    );
    assert!(writer.received().is_empty());
    assert_eq!(
        setup.cache.stored("r"),
        Some((3, json!({"b": {"c": [1, 5]}})))
    );
    assert_eq!(
        setup.storage.stored("r"),
        Some((3, json!({"b": {"c": [1, 5]}})))
    );
}

#[tokio::test(start_paused = true)]
async fn force_writes_take_the_next_version() {
    let setup = Setup::sync();
    let writer = setup.holder("r").await;
    let mut other = setup.holder("r").await;
    setup.send(&writer, update("r", 1, "{\"a\":1}"));
    setup.send(&writer, update("r", -1, "{\"a\":2}"));
    setup.send(
        &writer,
        record(A::CreateAndPatch)
            .with_name("r")
            .with_version(-1)
            .with_path("b")
            .with_data("true"),
    );
    let versions: Vec<_> = other
        .received()
        .iter()
        .map(|m| (m.action, m.version))
        .collect();
    assert_eq!(
        versions,
        [
            (A::Update as i32, Some(1)),
            (A::Update as i32, Some(2)),
            (A::Patch as i32, Some(3))
        ]
    );
    assert_eq!(
        setup.cache.stored("r"),
        Some((3, json!({"a": 2, "b": true})))
    );
}

#[tokio::test(start_paused = true)]
async fn a_stale_write_gets_version_exists_with_the_current_version_and_data() {
    let setup = Setup::sync();
    let mut writer = setup.holder("r").await;
    let mut other = setup.holder("r").await;
    setup.send(&other, update("r", 1, "{\"n\":1}"));
    writer.received();
    setup.send(&writer, with_ack(update("r", 1, "{\"n\":2}"), "7"));
    let conflict = writer.only();
    assert_eq!(
        conflict,
        record(A::VersionExists)
            .with_original_action(A::Update)
            .with_name("r")
            .with_version(1)
            .with_data("{\"n\":1}")
            .with_correlation_id("7")
            .with_write_ack(true),
        "no isError: the client merges"
    );
    assert!(other.received().is_empty());
    assert_eq!(setup.cache.stored("r"), Some((1, json!({"n": 1}))));
}

#[tokio::test(start_paused = true)]
async fn a_version_from_the_future_is_invalid_version_with_the_current_version() {
    let setup = Setup::sync();
    let mut writer = setup.holder("r").await;
    setup.send(&writer, update("r", 5, "{\"x\":1}"));
    let expected = Message {
        original_action: Some(A::Update as i32),
        ..update("r", 0, "{\"x\":1}")
    };
    assert_eq!(
        writer.only(),
        Message {
            action: A::InvalidVersion as i32,
            ..expected
        }
    );
}

/// The reference (7.0.2) stops a record's queue at INVALID_VERSION, so every later write to
/// that record is refused until a restart. Here the queue goes on.
#[tokio::test(start_paused = true)]
async fn invalid_version_does_not_stall_the_record_queue() {
    let setup = Setup::new(TestStore::new(Mode::Delayed(5)), TestStore::new(Mode::Sync));
    let mut writer = setup.holder("r").await;
    let mut other = setup.holder("r").await;
    // Queued together behind the (slow) load: the bad one first.
    setup.send(&writer, update("r", 5, "{\"bad\":true}"));
    setup.send(&writer, update("r", 1, "{\"good\":1}"));
    setup.send(&writer, patch("r", 2, "good", "2"));
    assert!(setup.handler.records.transitions.is_active("r"));
    settle().await;
    assert!(
        !setup.handler.records.transitions.is_active("r"),
        "the queue drained and was removed"
    );
    assert!(is(&writer.only(), A::InvalidVersion));
    let broadcast: Vec<_> = other.received().iter().map(|m| m.version).collect();
    assert_eq!(broadcast, [Some(1), Some(2)]);
    // A later write, on a fresh queue, works too.
    setup.send(&writer, with_ack(update("r", 3, "{\"good\":3}"), "1"));
    settle().await;
    assert!(is(&writer.only(), A::WriteAcknowledgement));
    assert_eq!(setup.cache.stored("r"), Some((3, json!({"good": 3}))));
}

#[tokio::test(start_paused = true)]
async fn queued_writes_are_applied_and_broadcast_in_arrival_order() {
    let cache = TestStore::new(Mode::Delayed(1));
    let setup = Setup::new(cache.clone(), TestStore::new(Mode::Delayed(3)));
    let mut writer = setup.holder("r").await;
    let mut other = setup.holder("r").await;
    // Later cache writes finish faster: only a queue that waits keeps them in order.
    cache.set_delays.lock().extend((1..=10).map(|i| 50 - 4 * i));
    for i in 1..=10 {
        setup.send(
            &writer,
            with_ack(patch("r", i, "n", &i.to_string()), &i.to_string()),
        );
    }
    settle().await;
    let broadcast: Vec<_> = other
        .received()
        .iter()
        .map(|m| (m.version, data(m)))
        .collect();
    assert_eq!(
        broadcast,
        (1..=10).map(|i| (Some(i), json!(i))).collect::<Vec<_>>()
    );
    let acks: Vec<_> = writer
        .received()
        .into_iter()
        .map(|m| (m.action, m.correlation_id))
        .collect();
    assert_eq!(acks.len(), 10);
    assert!(
        acks.iter()
            .all(|(action, _)| *action == A::WriteAcknowledgement as i32)
    );
    assert_eq!(cache.stored("r"), Some((10, json!({"n": 10}))));
}

/// Regression: the storage writes of consecutive versions were issued side by side, so a
/// slower earlier one could land last and leave storage behind an acknowledged newer version.
#[tokio::test(start_paused = true)]
async fn storage_writes_of_one_record_land_in_version_order() {
    let storage = TestStore::new(Mode::Delayed(1));
    let setup = Setup::new(TestStore::new(Mode::Sync), storage.clone());
    let writer = setup.holder("r").await;
    // Earlier storage writes take longer than later ones.
    storage
        .set_delays
        .lock()
        .extend((1..=10).map(|i| 50 - 4 * i));
    for i in 1..=10 {
        setup.send(
            &writer,
            with_ack(patch("r", i, "n", &i.to_string()), &i.to_string()),
        );
    }
    settle().await;
    assert_eq!(storage.stored("r"), Some((10, json!({"n": 10}))));
}

#[tokio::test(start_paused = true)]
async fn the_write_ack_waits_for_storage_the_broadcast_does_not() {
    let setup = Setup::new(
        TestStore::new(Mode::Sync),
        TestStore::new(Mode::Delayed(100)),
    );
    let mut writer = setup.holder("r").await;
    let mut other = setup.holder("r").await;
    setup.send(&writer, with_ack(update("r", 1, "{\"a\":1}"), "1"));
    assert!(
        is(&other.only(), A::Update),
        "broadcast as soon as the cache has it"
    );
    assert!(
        writer.received().is_empty(),
        "no ack before storage answered"
    );
    assert_eq!(
        setup.storage.stored("r").map(|(version, _)| version),
        Some(0)
    );
    settle().await;
    assert!(is(&writer.only(), A::WriteAcknowledgement));
    assert_eq!(setup.storage.stored("r"), Some((1, json!({"a": 1}))));
}

#[tokio::test(start_paused = true)]
async fn a_failed_storage_write_turns_the_ack_into_record_update_error() {
    let setup = Setup::new(
        TestStore::holding(Mode::Sync, "r", 0, "{}"),
        TestStore::new(Mode::Failing),
    );
    let mut writer = setup.holder("r").await;
    setup.send(&writer, with_ack(update("r", 1, "{\"a\":1}"), "4"));
    assert_eq!(
        writer.only(),
        record(A::RecordUpdateError)
            .with_name("r")
            .with_error()
            .with_correlation_id("4")
            .with_write_ack(true)
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_cache_write_is_an_error_and_not_broadcast() {
    let cache = TestStore::holding(Mode::FailingWrites, "r", 0, "{}");
    let setup = Setup::new(cache.clone(), TestStore::new(Mode::Sync));
    let mut writer = setup.holder("r").await;
    let mut other = setup.holder("r").await;
    setup.send(&writer, with_ack(update("r", 1, "{\"a\":1}"), "2"));
    assert_eq!(
        writer.only(),
        record(A::RecordUpdateError)
            .with_name("r")
            .with_error()
            .with_correlation_id("2")
            .with_write_ack(true)
    );
    assert!(other.received().is_empty());
    assert_eq!(cache.stored("r"), Some((0, json!({}))));

    // A record that cannot be loaded cannot be written.
    let setup = Setup::new(TestStore::new(Mode::Failing), TestStore::new(Mode::Sync));
    setup.send(
        &writer,
        record(A::CreateAndUpdate)
            .with_name("r")
            .with_version(-1)
            .with_data("{}"),
    );
    assert_eq!(
        writer.only(),
        record(A::RecordUpdateError).with_name("r").with_error()
    );

    // Nor created by getRecord.
    let setup = Setup::new(
        TestStore::new(Mode::FailingWrites),
        TestStore::new(Mode::Sync),
    );
    setup.send(
        &writer,
        record(A::SubscribeCreateAndRead)
            .with_names(["r"])
            .with_correlation_id("0"),
    );
    let create_error = writer.received().pop().unwrap();
    assert_eq!(
        create_error,
        record(A::RecordCreateError)
            .with_original_action(A::SubscribeCreateAndRead)
            .with_name("r")
    );
}

#[tokio::test(start_paused = true)]
async fn updating_a_missing_record_fails_and_an_upsert_creates_it_at_version_1() {
    let setup = Setup::sync();
    let mut writer = setup.client();
    setup.send(&writer, update("r", 1, "{\"a\":1}"));
    assert_eq!(
        writer.only(),
        record(A::RecordUpdateError).with_name("r").with_error()
    );
    setup.send(
        &writer,
        with_ack(
            record(A::CreateAndUpdate)
                .with_name("r")
                .with_version(-1)
                .with_data("{\"a\":1}"),
            "1",
        ),
    );
    assert!(is(&writer.only(), A::WriteAcknowledgement));
    assert_eq!(setup.cache.stored("r"), Some((1, json!({"a": 1}))));
    // An offline-created record arrives at version 1 (§5.11); on an existing one it conflicts.
    setup.send(
        &writer,
        record(A::CreateAndUpdate)
            .with_name("new")
            .with_version(1)
            .with_data("[\"x\"]"),
    );
    assert_eq!(setup.cache.stored("new"), Some((1, json!(["x"]))));
    setup.send(
        &writer,
        record(A::CreateAndUpdate)
            .with_name("new")
            .with_version(1)
            .with_data("[\"y\"]"),
    );
    assert!(is(&writer.only(), A::VersionExists));
}

#[tokio::test(start_paused = true)]
async fn bad_writes_get_invalid_message_data_and_consume_no_version() {
    let setup = Setup::sync();
    let mut writer = setup.holder("r").await;
    let invalid = |message: Message, original: A| Message {
        action: A::InvalidMessageData as i32,
        original_action: Some(original as i32),
        ..message
    };

    let scalar = update("r", 1, "5");
    setup.send(&writer, scalar.clone());
    assert_eq!(writer.only(), invalid(scalar, A::Update));

    let broken = update("r", 1, "{\"a\":");
    setup.send(&writer, broken.clone());
    assert_eq!(
        writer.only(),
        Message {
            data: None,
            ..invalid(broken, A::Update)
        },
        "text that is not JSON is not echoed"
    );

    for path in ["a.__proto__.b", "constructor", "x.prototype", " . ", "a[x]"] {
        let bad = patch("r", 1, path, "1");
        setup.send(&writer, bad.clone());
        assert_eq!(writer.only(), invalid(bad, A::Patch), "path {path:?}");
    }

    let unversioned = record(A::Update).with_name("r").with_data("{}");
    setup.send(&writer, unversioned.clone());
    assert_eq!(writer.only(), invalid(unversioned, A::Update));

    let nameless = update("", 1, "{}");
    let nameless = Message {
        name: None,
        ..nameless
    };
    setup.send(&writer, nameless.clone());
    assert_eq!(writer.only(), invalid(nameless, A::Update));

    let erase_without_path = record(A::Erase).with_name("r").with_version(1);
    setup.send(&writer, erase_without_path.clone());
    assert_eq!(writer.only(), invalid(erase_without_path, A::Update));

    // Into a list by key: JSON cannot hold it.
    setup.send(&writer, update("r", 1, "{\"l\":[]}"));
    let key_on_array = patch("r", 2, "l.x", "1");
    setup.send(&writer, key_on_array.clone());
    assert_eq!(writer.only(), invalid(key_on_array, A::Patch));

    setup.send(&writer, with_ack(patch("r", 2, "l[1]", "\"ok\""), "1"));
    assert!(
        is(&writer.only(), A::WriteAcknowledgement),
        "the refused writes used no version"
    );
    assert_eq!(
        setup.cache.stored("r"),
        Some((2, json!({"l": [null, "ok"]})))
    );
}

#[tokio::test(start_paused = true)]
async fn patch_multi_applies_every_operation_as_one_version() {
    let setup = Setup::sync();
    let mut writer = setup.holder("r").await;
    let mut other = setup.holder("r").await;
    let operations = r#"[{"path":"a","data":1},{"path":"b.c","data":[1]},{"path":"a"}]"#;
    let multi = record(A::PatchMulti)
        .with_name("r")
        .with_version(1)
        .with_data(operations);
    setup.send(&writer, multi.clone());
    assert_eq!(other.only(), multi.with_write_ack(false));
    assert_eq!(setup.cache.stored("r"), Some((1, json!({"b": {"c": [1]}}))));

    for bad in [
        "[]",
        "{}",
        r#"[{"data":1}]"#,
        r#"[{"path":"__proto__","data":1}]"#,
        r#"[5]"#,
    ] {
        let message = record(A::PatchMulti)
            .with_name("r")
            .with_version(2)
            .with_data(bad);
        setup.send(&writer, message);
        assert!(is(&writer.only(), A::InvalidMessageData), "{bad}");
    }
    assert_eq!(setup.cache.stored("r").unwrap().0, 1);
}

#[tokio::test(start_paused = true)]
async fn upserts_check_create_and_write_and_denials_name_the_client_action() {
    let permission = Arc::new(Deny(vec![A::Create]));
    let setup = Setup::with(
        TestStore::new(Mode::Sync),
        TestStore::new(Mode::Sync),
        permission,
        None,
    );
    let mut writer = setup.client();
    setup.send(
        &writer,
        with_ack(
            record(A::CreateAndUpdate)
                .with_name("r")
                .with_version(-1)
                .with_data("{}"),
            "3",
        ),
    );
    assert_eq!(
        writer.only(),
        record(A::MessageDenied)
            .with_original_action(A::CreateAndUpdate)
            .with_name("r")
            .with_error()
            .with_correlation_id("3")
            .with_write_ack(true)
    );
    assert_eq!(setup.cache.stored("r"), None);
    // getRecord cannot create it either.
    setup.send(
        &writer,
        record(A::SubscribeCreateAndRead)
            .with_names(["r"])
            .with_correlation_id("0"),
    );
    let denial = writer.received().pop().unwrap();
    assert_eq!(denial.action, A::MessageDenied as i32);
    assert_eq!(
        denial.original_action,
        Some(A::SubscribeCreateAndRead as i32)
    );
    assert_eq!(denial.correlation_id.as_deref(), Some("0"));

    // An existing record still needs `create` for an upsert (server.md §3.2).
    seed(&setup.cache.records, "e", 0, "{}");
    setup.send(
        &writer,
        with_ack(
            record(A::CreateAndPatch)
                .with_name("e")
                .with_version(-1)
                .with_path("a")
                .with_data("1"),
            "4",
        ),
    );
    assert!(is(&writer.only(), A::MessageDenied));

    let no_writes = Setup::with(
        TestStore::new(Mode::Sync),
        TestStore::new(Mode::Sync),
        Arc::new(Deny(vec![A::Patch])),
        None,
    );
    let mut writer = no_writes.client();
    no_writes.send(
        &writer,
        record(A::CreateAndPatch)
            .with_name("r")
            .with_version(-1)
            .with_path("a")
            .with_data("1"),
    );
    assert_eq!(
        writer.only().original_action,
        Some(A::CreateAndPatch as i32)
    );
}

#[tokio::test(start_paused = true)]
async fn hot_path_upserts_store_version_0_and_path_writes_are_refused() {
    let setup = Setup::sync();
    let mut other = setup.holder("hot/r").await;
    let mut writer = setup.client();
    setup.send(
        &writer,
        with_ack(
            record(A::CreateAndUpdate)
                .with_name("hot/r")
                .with_version(-1)
                .with_data("{\"a\":1}"),
            "1",
        ),
    );
    assert_eq!(
        writer.only(),
        record(A::WriteAcknowledgement)
            .with_name("hot/r")
            .with_correlation_id("1")
            .with_write_ack(true),
        "with isWriteAck, so the client can match it"
    );
    assert_eq!(other.only().version, Some(0));
    assert_eq!(setup.cache.stored("hot/r"), Some((0, json!({"a": 1}))));
    assert_eq!(setup.storage.stored("hot/r"), Some((0, json!({"a": 1}))));

    setup.send(
        &writer,
        record(A::CreateAndPatch)
            .with_name("hot/r")
            .with_version(-1)
            .with_path("a")
            .with_data("2")
            .with_correlation_id("2"),
    );
    assert_eq!(
        writer.only(),
        record(A::InvalidPatchOnHotpath)
            .with_original_action(A::CreateAndPatch)
            .with_name("hot/r")
            .with_correlation_id("2")
    );
}

#[tokio::test(start_paused = true)]
async fn reads_and_heads_answer_from_cache_then_storage() {
    let setup = Setup::new(
        TestStore::holding(Mode::Sync, "c", 2, "{\"c\":1}"),
        TestStore::holding(Mode::Sync, "s", 4, "[1]"),
    );
    let mut client = setup.client();
    setup.send(&client, record(A::Read).with_name("c"));
    assert_eq!(
        client.only(),
        record(A::ReadResponse)
            .with_name("c")
            .with_version(2)
            .with_data("{\"c\":1}")
    );
    setup.send(&client, record(A::Read).with_name("s"));
    assert_eq!(
        client.only(),
        record(A::ReadResponse)
            .with_name("s")
            .with_version(4)
            .with_data("[1]")
    );
    assert_eq!(
        setup.cache.stored("s"),
        None,
        "one-off reads do not promote"
    );
    setup.send(&client, record(A::Read).with_name("none"));
    assert_eq!(
        client.only(),
        record(A::RecordNotFound)
            .with_original_action(A::Read)
            .with_name("none")
            .with_error()
    );
    setup.send(&client, record(A::Head).with_name("s"));
    assert_eq!(
        client.only(),
        record(A::HeadResponse).with_name("s").with_version(4)
    );
    setup.send(&client, record(A::Head).with_name("none"));
    assert_eq!(
        client.only(),
        record(A::HeadResponse).with_name("none").with_version(-1)
    );
}

#[tokio::test(start_paused = true)]
async fn lookups_that_time_out_answer_cache_and_storage_retrieval_timeouts() {
    let setup = Setup::new(TestStore::new(Mode::Hanging), TestStore::new(Mode::Sync));
    let mut client = setup.client();
    setup.send(&client, record(A::Read).with_name("r"));
    setup.send(
        &client,
        record(A::SubscribeCreateAndRead)
            .with_names(["r"])
            .with_correlation_id("0"),
    );
    settle().await;
    let replies = client.received();
    assert_eq!(replies.len(), 3, "ack and two timeouts: {replies:#?}");
    for original in [A::Read, A::SubscribeCreateAndRead] {
        let timeout = record(A::CacheRetrievalTimeout)
            .with_original_action(original)
            .with_name("r")
            .with_error();
        assert!(replies.contains(&timeout), "{original:?}");
    }

    let setup = Setup::new(TestStore::new(Mode::Sync), TestStore::new(Mode::Hanging));
    setup.send(&client, record(A::Head).with_name("r"));
    settle().await;
    assert_eq!(
        client.only(),
        record(A::StorageRetrievalTimeout)
            .with_original_action(A::Head)
            .with_name("r")
            .with_error()
    );
}

#[tokio::test(start_paused = true)]
async fn subscribe_and_head_sends_cached_versions_in_bulk_then_heads_the_rest() {
    let setup = Setup::new(
        TestStore::holding(Mode::Sync, "a", 3, "{}"),
        TestStore::holding(Mode::Sync, "b", 5, "{}"),
    );
    let mut client = setup.client();
    let request = record(A::SubscribeAndHead)
        .with_names(["a", "b", "c"])
        .with_correlation_id("0");
    setup.send(&client, request.clone());
    let replies = client.received();
    assert_eq!(
        replies[0],
        Message {
            versions: vec![("a".into(), 3)],
            ..record(A::HeadResponseBulk)
        }
    );
    assert_eq!(replies[1], request.ack());
    assert_eq!(
        replies[2],
        record(A::HeadResponse).with_name("b").with_version(5)
    );
    assert_eq!(
        replies[3],
        record(A::HeadResponse).with_name("c").with_version(-1)
    );
    let writer = setup.client();
    setup.send(&writer, update("a", 4, "{\"x\":1}"));
    assert!(is(&client.only(), A::Update), "subscribed");
}

#[tokio::test(start_paused = true)]
async fn unsubscribed_connections_get_no_more_writes() {
    let setup = Setup::sync();
    let mut sub = setup.holder("r").await;
    let writer = setup.holder("r").await;
    let request = record(A::Unsubscribe)
        .with_names(["r"])
        .with_correlation_id("r");
    setup.send(&sub, request.clone());
    assert_eq!(sub.only(), request.ack());
    setup.send(&writer, update("r", 1, "{}"));
    assert!(sub.received().is_empty());
}

#[tokio::test(start_paused = true)]
async fn delete_answers_the_requester_tells_the_others_and_ends_their_subscriptions() {
    let cache = TestStore::new(Mode::Delayed(5));
    let setup = Setup::new(cache.clone(), TestStore::new(Mode::Sync));
    let mut deleter = setup.holder("r").await;
    let mut other = setup.holder("r").await;
    // A write queued before the delete is applied first; one after it finds no record.
    setup.send(&other, update("r", 1, "{\"a\":1}"));
    setup.send(&deleter, record(A::Delete).with_name("r"));
    setup.send(&other, update("r", 2, "{\"a\":2}"));
    settle().await;
    let to_deleter = deleter.received();
    assert!(is(&to_deleter[0], A::Update));
    assert_eq!(to_deleter[1], record(A::DeleteSuccess).with_name("r"));
    assert_eq!(to_deleter.len(), 2, "no DELETED for the deleter");
    assert_eq!(
        other.received(),
        [
            record(A::Deleted).with_name("r"),
            record(A::RecordUpdateError).with_name("r").with_error()
        ]
    );
    assert_eq!(cache.stored("r"), None);

    // Both subscriptions ended: a recreated record reaches neither.
    let writer = setup.client();
    setup.send(
        &writer,
        record(A::CreateAndUpdate)
            .with_name("r")
            .with_version(-1)
            .with_data("{}"),
    );
    settle().await;
    assert!(deleter.received().is_empty() && other.received().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failed_delete_is_record_delete_error() {
    let setup = Setup::new(TestStore::new(Mode::Sync), TestStore::new(Mode::Failing));
    let mut client = setup.client();
    setup.send(&client, record(A::Delete).with_name("r"));
    assert_eq!(client.only(), record(A::RecordDeleteError).with_name("r"));
}

#[tokio::test(start_paused = true)]
async fn notify_refreshes_every_subscriber_from_storage_and_acks_with_the_request() {
    let storage = TestStore::holding(Mode::Sync, "kept", 9, "{\"new\":true}");
    let setup = Setup::new(TestStore::new(Mode::Sync), storage);
    let mut notifier = setup.holder("kept").await;
    // Storage-excluded, so only the cache had it.
    let mut other = setup.holder("local/gone").await;
    seed(&setup.cache.records, "kept", 1, "{\"old\":true}");
    let request = record(A::Notify)
        .with_names(["kept", "local/gone"])
        .with_correlation_id("n1");
    setup.send(&notifier, request.clone());
    let to_notifier = notifier.received();
    let refreshed = record(A::Update)
        .with_name("kept")
        .with_version(9)
        .with_data("{\"new\":true}");
    assert_eq!(
        to_notifier,
        [refreshed, request.with_ack()],
        "no sender exclusion"
    );
    assert_eq!(
        other.only(),
        record(A::Deleted).with_name("local/gone"),
        "gone everywhere"
    );
    let writer = setup.client();
    setup.send(
        &writer,
        record(A::CreateAndUpdate)
            .with_name("local/gone")
            .with_version(-1)
            .with_data("{}"),
    );
    assert!(other.received().is_empty(), "unsubscribed");
}

#[tokio::test(start_paused = true)]
async fn notify_reports_a_failed_cache_clear() {
    let setup = Setup::new(TestStore::new(Mode::Failing), TestStore::new(Mode::Sync));
    let mut client = setup.client();
    setup.send(
        &client,
        record(A::Notify).with_names(["r"]).with_correlation_id("n"),
    );
    let reply = client.only();
    assert_eq!(
        (
            reply.action,
            reply.is_error,
            reply.correlation_id.as_deref()
        ),
        (A::RecordNotifyError as i32, true, Some("n"))
    );
    assert!(data(&reply).is_string());
}

#[tokio::test(start_paused = true)]
async fn a_create_never_resets_a_record_written_meanwhile() {
    let setup = Setup::new(TestStore::new(Mode::Delayed(5)), TestStore::new(Mode::Sync));
    let mut first = setup.client();
    let mut second = setup.client();
    // Two getRecords of a new record and an upsert between them, all queued on one record.
    setup.send(
        &first,
        record(A::SubscribeCreateAndRead)
            .with_names(["r"])
            .with_correlation_id("0"),
    );
    setup.send(
        &first,
        record(A::CreateAndUpdate)
            .with_name("r")
            .with_version(-1)
            .with_data("{\"w\":1}"),
    );
    setup.send(
        &second,
        record(A::SubscribeCreateAndRead)
            .with_names(["r"])
            .with_correlation_id("0"),
    );
    settle().await;
    let read = second.received().pop().unwrap();
    assert_eq!((read.version, data(&read)), (Some(1), json!({"w": 1})));
    assert_eq!(first.received()[1].version, Some(0));
    assert_eq!(setup.cache.stored("r"), Some((1, json!({"w": 1}))));
}

#[tokio::test(start_paused = true)]
async fn a_closed_connection_is_not_left_subscribed() {
    let setup = Setup::sync();
    let client = setup.client();
    client.connection.mark_closed();
    setup.send(
        &client,
        record(A::SubscribeCreateAndRead)
            .with_names(["r"])
            .with_correlation_id("0"),
    );
    assert!(
        !setup
            .handler
            .records
            .subscriptions
            .has_local_subscribers("r")
    );
}

#[tokio::test(start_paused = true)]
async fn listen_actions_go_to_the_listen_delegate() {
    let listen = Arc::new(Listen::default());
    let setup = Setup::with(
        TestStore::new(Mode::Sync),
        TestStore::new(Mode::Sync),
        Arc::new(OpenPermission),
        Some(listen.clone()),
    );
    let mut client = setup.client();
    for action in [A::Listen, A::Unlisten, A::ListenAccept, A::ListenReject] {
        setup.send(&client, record(action).with_name("^r/.*"));
    }
    assert_eq!(*listen.0.lock(), [27, 28, 29, 30]);

    let without = Setup::sync();
    without.send(&client, record(A::Listen).with_name("^r/.*"));
    assert!(
        client.received().is_empty(),
        "unknown without a delegate: no reply"
    );
}

#[tokio::test(start_paused = true)]
async fn unknown_and_server_only_actions_are_ignored() {
    let setup = Setup::sync();
    let mut client = setup.client();
    for action in [
        7,
        11,
        12,
        15,
        24,
        A::ReadResponse as i32,
        A::VersionExists as i32,
        999,
    ] {
        setup.send(
            &client,
            Message {
                action,
                ..record(A::Unknown)
            }
            .with_name("r"),
        );
    }
    assert!(client.received().is_empty());
    assert_eq!(setup.cache.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn lookup_errors_map_to_their_actions() {
    assert_eq!(LookupError::CacheTimeout.action(), A::CacheRetrievalTimeout);
    assert_eq!(
        LookupError::StorageTimeout.action(),
        A::StorageRetrievalTimeout
    );
    assert_eq!(
        LookupError::Load(ServiceError::from("x")).action(),
        A::RecordLoadError
    );
}

/// Puts a record into a memory cache (whose writes answer at once) before a test acts.
fn seed(cache: &MemoryCache, name: &str, version: i32, data: &str) {
    assert!(
        matches!(
            cache.set(name, version, Arc::from(data)),
            Answer::Ready(Ok(()))
        ),
        "seeding {name}"
    );
}
