//! The file store against real folders in temporary directories.

use std::{fs, path::Path, sync::Arc};

use deepstream_plugin::sdk::{Plugin, RecordStore, Stored};
use serde_json::json;
use storage_file::{FileStorage, Options, file_name, record_name};
// `conformance::Store` is called by path: its method names are `RecordStore`'s too.
use store_conformance::{self as conformance, Hosted};
use tempfile::TempDir;

async fn open(directory: &Path) -> FileStorage {
    let store = FileStorage::from_options(Options {
        directory: directory.to_owned(),
    })
    .expect("store builds");
    store.when_ready().await.expect("folder ready");
    store
}

async fn fresh() -> (TempDir, FileStorage) {
    let dir = TempDir::new().unwrap();
    let store = open(&dir.path().join("records")).await;
    (dir, store)
}

/// The folder's file names, sorted.
fn listing(directory: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Only record files: no temporary file is ever left behind.
fn assert_no_temp_files(directory: &Path) {
    for name in listing(directory) {
        assert!(
            name.ends_with(".json") && !name.starts_with('.'),
            "unexpected file {name:?} in {}",
            directory.display()
        );
    }
}

/// Every shared storage check, in one run (as the other storage plugins).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance() {
    let (dir, store) = fresh().await;
    conformance::all(Arc::new(store), "ns").await;
    assert_eq!(
        listing(&dir.path().join("records")),
        Vec::<String>::new(),
        "deleted records leave no files"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_leave_no_temp_files() {
    let (dir, store) = fresh().await;
    let store = Arc::new(store);
    // The conformance check deletes its records at the end; look at the folder before that
    // too, with writes of our own.
    for index in 0..20 {
        store
            .set(format!("kept/{index}"), index, json!([index]).to_string())
            .await
            .unwrap();
    }
    conformance::concurrent_writers(store.clone(), "ns").await;
    let folder = dir.path().join("records");
    assert_no_temp_files(&folder);
    assert_eq!(listing(&folder).len(), 20);
}

#[tokio::test]
async fn file_layout() {
    let (dir, store) = fresh().await;
    store
        .set("users/alice smith".into(), 7, r#"{"a": [1, 2]}"#.into())
        .await
        .unwrap();
    let folder = dir.path().join("records");
    assert_eq!(
        listing(&folder),
        vec!["users%2Falice%20smith.json".to_owned()]
    );
    let content = fs::read_to_string(folder.join("users%2Falice%20smith.json")).unwrap();
    assert_eq!(content, r#"{"version":7,"data":{"a": [1, 2]}}"#);
    // The data text is handed back as it was given.
    assert_eq!(
        store.get("users/alice smith".into()).await.unwrap(),
        Some(Stored {
            version: 7,
            data: r#"{"a": [1, 2]}"#.into()
        })
    );
}

#[test]
fn names_encode_reversibly_into_flat_file_names() {
    let names = [
        "plain",
        "a/b/c",
        "/",
        ".",
        "..",
        ".hidden",
        "with space",
        "ünïcødé/日本語/😀",
        "100%",
        "%2F",
        "x.json",
        "tab\there",
        "back\\slash",
        "",
    ];
    for name in names {
        let file = file_name(name);
        assert!(file.ends_with(".json"));
        // Only the empty name gives a hidden file (`.json`), still a record file.
        assert!(!file.starts_with('.') || name.is_empty(), "{file}");
        assert!(!file.contains('/') && !file.contains('\\'), "{file}");
        assert!(
            file.bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"-_%.".contains(&byte)),
            "{file}"
        );
        assert_eq!(record_name(&file).as_deref(), Some(name), "{file}");
    }
    // Distinct names, distinct files.
    let mut files: Vec<String> = names.iter().map(|name| file_name(name)).collect();
    files.sort();
    files.dedup();
    assert_eq!(files.len(), names.len());
    // Files that are not record files are recognised.
    assert_eq!(record_name(".abc.tmp"), None);
    assert_eq!(record_name("notes.txt"), None);
    assert_eq!(record_name("a b.json"), None);
}

#[tokio::test]
async fn too_long_names_are_refused() {
    let (_dir, store) = fresh().await;
    let long = "ü".repeat(100);
    assert!(store.set(long.clone(), 1, "{}".into()).await.is_err());
    assert_eq!(store.get(long.clone()).await.ok(), None);
    let fits = "x".repeat(240);
    store.set(fits.clone(), 1, "{}".into()).await.unwrap();
    assert_eq!(store.head(fits).await.unwrap(), Some(1));
}

#[tokio::test]
async fn invalid_data_is_refused_and_changes_nothing() {
    let (dir, store) = fresh().await;
    store.set("r".into(), 1, "[1]".into()).await.unwrap();
    let error = store
        .set("r".into(), 2, "{not json".into())
        .await
        .expect_err("not JSON");
    assert!(error.contains("not JSON"), "{error}");
    assert_eq!(store.head("r".into()).await.unwrap(), Some(1));
    assert_no_temp_files(&dir.path().join("records"));
}

#[tokio::test]
async fn corrupt_file_is_an_error_not_a_panic() {
    let (dir, store) = fresh().await;
    fs::write(
        dir.path().join("records").join(file_name("bad")),
        b"{\"version\":",
    )
    .unwrap();
    assert!(store.get("bad".into()).await.is_err());
    assert!(store.head("bad".into()).await.is_err());
    store.delete("bad".into()).await.unwrap();
    assert_eq!(store.get("bad".into()).await.unwrap(), None);
}

#[tokio::test]
async fn persists_across_instances_and_cleans_leftover_temp_files() {
    let dir = TempDir::new().unwrap();
    let folder = dir.path().join("records");
    let store = open(&folder).await;
    store
        .set("kept".into(), 3, r#"["x"]"#.into())
        .await
        .unwrap();
    drop(store);
    // A crash mid-write leaves a temporary file.
    fs::write(folder.join(".abc123.tmp"), b"{\"version\":9,\"da").unwrap();

    let store = open(&folder).await;
    assert_eq!(listing(&folder), vec![file_name("kept")]);
    assert_eq!(
        store.get("kept".into()).await.unwrap(),
        Some(Stored {
            version: 3,
            data: r#"["x"]"#.into()
        })
    );
}

#[tokio::test]
async fn folder_is_created_when_missing() {
    let dir = TempDir::new().unwrap();
    let folder = dir.path().join("a").join("b").join("c");
    let store = open(&folder).await;
    store.set("r".into(), 1, "{}".into()).await.unwrap();
    assert!(folder.join(file_name("r")).exists());
}

#[tokio::test]
async fn through_the_host_interface() {
    let dir = TempDir::new().unwrap();
    let folder = dir.path().join("hosted");
    let options = json!({"directory": folder}).to_string();
    let hosted = Hosted::storage::<FileStorage>(&options).expect("instance builds");
    assert!(hosted.description().contains("teaching example"));
    hosted.when_ready().await.expect("ready");
    conformance::all(Arc::new(hosted), "hosted").await;
    assert_eq!(listing(&folder), Vec::<String>::new());

    let error = Hosted::storage::<FileStorage>(r#"{"dir": "x"}"#)
        .err()
        .expect("unknown option refused");
    assert!(error.contains("dir"), "{error}");
}

#[test]
fn default_options() {
    assert_eq!(
        Options::default().directory,
        Path::new("deepstream-records")
    );
    let parsed: Options = serde_json::from_str("{}").unwrap();
    assert_eq!(parsed.directory, Path::new("deepstream-records"));
}
