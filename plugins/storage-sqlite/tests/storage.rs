//! The SQLite store against real database files in temporary folders.

use std::{path::Path, sync::Arc};

use deepstream_plugin::sdk::{Plugin, RecordStore, Stored};
use storage_sqlite::{Options, SqliteStorage};
// `conformance::Store` is called by path: its method names are `RecordStore`'s too.
use store_conformance::{self as conformance, Hosted};
use tempfile::TempDir;

async fn open(path: &Path, table: &str) -> SqliteStorage {
    let store = SqliteStorage::from_options(Options {
        path: path.to_owned(),
        table: table.to_owned(),
    })
    .expect("store builds");
    store.when_ready().await.expect("database opens");
    store
}

async fn fresh() -> (TempDir, SqliteStorage) {
    let dir = TempDir::new().unwrap();
    let store = open(&dir.path().join("records.sqlite"), "records").await;
    (dir, store)
}

/// Every shared storage check, in one run (as the other storage plugins).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance() {
    let (_dir, store) = fresh().await;
    conformance::all(Arc::new(store), "ns").await;
}

#[tokio::test]
async fn data_text_is_kept_verbatim() {
    let (_dir, store) = fresh().await;
    let text = r#"{ "b":1,   "a" : [ 1 , 2 ] }"#;
    store.set("verbatim".into(), 3, text.into()).await.unwrap();
    assert_eq!(
        store.get("verbatim".into()).await.unwrap(),
        Some(Stored {
            version: 3,
            data: text.into()
        })
    );
}

#[tokio::test]
async fn persists_across_reopen() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("records.sqlite");

    let store = open(&path, "records").await;
    store
        .set("kept/1".into(), 4, r#"{"x":[1,2]}"#.into())
        .await
        .unwrap();
    store.set("kept/2".into(), 1, "[]".into()).await.unwrap();
    store.set("gone".into(), 1, "{}".into()).await.unwrap();
    store.delete("gone".into()).await.unwrap();
    store.close().await.unwrap();
    assert!(
        store.get("kept/1".into()).await.is_err(),
        "a closed store answers with an error"
    );

    let reopened = open(&path, "records").await;
    assert_eq!(
        reopened.get("kept/1".into()).await.unwrap(),
        Some(Stored {
            version: 4,
            data: r#"{"x":[1,2]}"#.into()
        })
    );
    assert_eq!(reopened.head("kept/2".into()).await.unwrap(), Some(1));
    assert_eq!(reopened.get("gone".into()).await.unwrap(), None);

    // Dropping without close also stops the thread and keeps the data.
    reopened.set("kept/3".into(), 9, "{}".into()).await.unwrap();
    drop(reopened);
    let again = open(&path, "records").await;
    assert_eq!(again.head("kept/3".into()).await.unwrap(), Some(9));
}

#[tokio::test]
async fn durable_settings_are_applied() {
    let (dir, store) = fresh().await;
    store.set("x".into(), 1, "{}".into()).await.unwrap();
    // A second connection sees the committed row (it is in the database, not a buffer) and
    // the file is in WAL mode.
    let path = dir.path().join("records.sqlite");
    let peek = rusqlite_peek(&path);
    assert_eq!(peek.0, "wal");
    assert_eq!(peek.1, 1);
}

/// (journal mode, number of rows) read through a separate connection.
fn rusqlite_peek(path: &Path) -> (String, i64) {
    // The plugin's rusqlite is the same crate; open read-only to look.
    let connection =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mode: String = connection
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    let rows: i64 = connection
        .query_row("SELECT count(*) FROM records", [], |row| row.get(0))
        .unwrap();
    (mode, rows)
}

#[tokio::test]
async fn tables_in_one_file_are_independent() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("shared.sqlite");
    let first = open(&path, "first").await;
    let second = open(&path, "odd \"table\" name").await;
    first
        .set("r".into(), 1, r#"{"in":"first"}"#.into())
        .await
        .unwrap();
    second
        .set("r".into(), 2, r#"{"in":"second"}"#.into())
        .await
        .unwrap();
    assert_eq!(first.head("r".into()).await.unwrap(), Some(1));
    assert_eq!(second.head("r".into()).await.unwrap(), Some(2));
    first.delete_bulk(vec!["r".into()]).await.unwrap();
    assert_eq!(first.head("r".into()).await.unwrap(), None);
    assert_eq!(second.head("r".into()).await.unwrap(), Some(2));
}

#[tokio::test]
async fn missing_folders_are_created() {
    let dir = TempDir::new().unwrap();
    let path = dir
        .path()
        .join("fresh")
        .join("install")
        .join("records.sqlite");
    let store = SqliteStorage::from_options(Options {
        path: path.clone(),
        table: "records".into(),
    })
    .unwrap();
    store.when_ready().await.unwrap();
    store.set("r".into(), 1, "{}".into()).await.unwrap();
    assert!(path.is_file());
    store.close().await.unwrap();
}

#[tokio::test]
async fn unopenable_file_reports_an_error() {
    let dir = TempDir::new().unwrap();
    // A regular file where a folder should be: the database cannot be created.
    std::fs::write(dir.path().join("blocker"), "not a folder").unwrap();
    let store = SqliteStorage::from_options(Options {
        path: dir.path().join("blocker").join("records.sqlite"),
        table: "records".into(),
    })
    .expect("building never touches the disk");
    let error = store.when_ready().await.expect_err("cannot open");
    assert!(error.contains("blocker"), "{error}");
    let error = store.get("x".into()).await.expect_err("every call fails");
    assert!(error.contains("blocker"), "{error}");
    store.close().await.unwrap();
}

#[tokio::test]
async fn through_the_host_interface() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("hosted.sqlite");
    let options = serde_json_options(&path, "hosted_records");
    let hosted = Hosted::storage::<SqliteStorage>(&options).expect("instance builds");
    assert!(hosted.description().contains("hosted_records"));
    hosted.when_ready().await.expect("ready");
    conformance::all(Arc::new(hosted), "hosted").await;

    let error = Hosted::storage::<SqliteStorage>(r#"{"file": "x.sqlite"}"#)
        .err()
        .expect("unknown option refused");
    assert!(error.contains("file"), "{error}");
}

#[tokio::test]
async fn hosted_close_then_reopen() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("hosted.sqlite");
    let options = serde_json_options(&path, "records");
    let hosted = Hosted::storage::<SqliteStorage>(&options).unwrap();
    hosted.when_ready().await.unwrap();
    conformance::Store::set(&hosted, "a b/ü", 7, "[1]")
        .await
        .unwrap();
    hosted.close().await.unwrap();
    let hosted = Hosted::storage::<SqliteStorage>(&options).unwrap();
    hosted.when_ready().await.unwrap();
    assert_eq!(
        conformance::Store::head(&hosted, "a b/ü").await.unwrap(),
        Some(7)
    );
}

#[test]
fn default_options() {
    let options = Options::default();
    assert_eq!(options.path, Path::new("deepstream-records.sqlite"));
    assert_eq!(options.table, "records");
}

#[tokio::test]
async fn writes_are_batched_under_load() {
    // Many concurrent writers finish quickly because they share commits (one fsync each
    // batch); 2000 single-commit writes with fsync would take far longer on most disks.
    let (_dir, store) = fresh().await;
    let store = Arc::new(store);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..200 {
        let store = store.clone();
        tasks.spawn(async move {
            for write in 0..10 {
                store
                    .set(format!("load/{task}"), write, "{}".into())
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let names: Vec<String> = (0..200).map(|task| format!("load/{task}")).collect();
    let found = store.head_bulk(names).await.unwrap();
    assert_eq!(found.len(), 200);
    assert!(found.iter().all(|(_, version)| *version == 9));
}

fn serde_json_options(path: &Path, table: &str) -> String {
    format!(
        r#"{{"path": {}, "table": {}}}"#,
        serde_json::to_string(path.to_str().unwrap()).unwrap(),
        serde_json::to_string(table).unwrap()
    )
}
