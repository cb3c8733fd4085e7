use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use super::paths::{Format, normalize};
use super::*;

// ---------------------------------------------------------------------------------------
// helpers

fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ds-config-test-{}-{}-{tag}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn env_map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Parses YAML text located in `dir` with a fake environment.
fn parse_in(
    dir: &Path,
    text: &str,
    env: &[(&str, &str)],
    overrides: &Overrides,
) -> Result<Config, ConfigError> {
    let env = env_map(env);
    let lookup = move |name: &str| env.get(name).cloned();
    from_text(text, Format::Yaml, dir, None, overrides, &lookup)
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_in(Path::new("/conf"), text, &[], &Overrides::default())
}

fn ok(text: &str) -> Config {
    parse(text).unwrap_or_else(|e| panic!("config should be valid, got:\n{e}"))
}

/// The problems of an invalid config, as displayed lines.
fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => panic!("config should be invalid:\n{text}"),
        Err(e) => e.problems(),
    }
}

fn has_error(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

#[track_caller]
fn assert_error(text: &str, needle: &str) {
    let lines = errors(text);
    assert!(
        has_error(&lines, needle),
        "expected an error containing {needle:?}, got {lines:#?}"
    );
}

fn ws(endpoint: &EndpointDecl) -> &WebSocketEndpointOptions {
    match &endpoint.options {
        EndpointOptions::WebSocket(o) => o,
        other => panic!("not a websocket endpoint: {other:?}"),
    }
}

fn http_ep(endpoint: &EndpointDecl) -> &HttpEndpointOptions {
    match &endpoint.options {
        EndpointOptions::Http(o) => o,
        other => panic!("not an http endpoint: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// defaults

#[test]
fn defaults_cover_every_section() {
    let c = ok("");
    assert!(!c.show_logo);
    assert_eq!(c.log_level, LogLevel::Info);
    assert_eq!(
        c.dependency_initialization_timeout,
        Duration::from_millis(2000)
    );
    assert!(!c.exit_on_fatal_error);
    assert_eq!(c.lib_dir, None);
    assert_eq!(
        c.enabled_features,
        EnabledFeatures {
            record: true,
            event: true,
            rpc: true,
            presence: true,
            monitoring: false
        }
    );
    assert_eq!(
        c.rpc,
        RpcConfig {
            ack_timeout: Duration::from_millis(1000),
            response_timeout: Duration::from_millis(10000),
            provide_requestor_name: false,
            provide_requestor_data: false,
        }
    );
    assert_eq!(
        c.record,
        RecordConfig {
            cache_retrieval_timeout: Duration::from_millis(1000),
            storage_retrieval_timeout: Duration::from_millis(2000),
            storage_exclusion_prefixes: vec![],
            storage_hot_path_prefixes: vec![],
        }
    );
    assert_eq!(
        c.listen,
        ListenConfig {
            shuffle_providers: true,
            response_timeout: Duration::from_millis(500),
            rematch_interval: Duration::from_millis(30000),
            match_cooldown: Duration::from_millis(10000),
        }
    );
    assert_eq!(
        c.http_server_options,
        HttpServerOptions {
            host: "0.0.0.0".into(),
            port: 6020,
            health_check_path: "/health-check".into(),
            allow_all_origins: true,
            origins: vec![],
            headers: vec![],
            max_message_size: 1_048_576,
            host_url: None,
            ssl: None,
        }
    );
    assert_eq!(c.http_server.type_.as_deref(), Some("default"));

    let kinds: Vec<EndpointKind> = c.connection_endpoints.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EndpointKind::WsBinary,
            EndpointKind::WsText,
            EndpointKind::WsJson,
            EndpointKind::Http,
            EndpointKind::Mqtt
        ]
    );
    assert_eq!(ws(&c.connection_endpoints[0]).url_path, "/deepstream");
    assert_eq!(ws(&c.connection_endpoints[1]).url_path, "/deepstream-v3");
    assert_eq!(ws(&c.connection_endpoints[2]).url_path, "/deepstream-json");
    match &c.connection_endpoints[4].options {
        EndpointOptions::Mqtt(m) => {
            assert_eq!(m.port, 1883);
            assert_eq!(m.host, "0.0.0.0");
            assert_eq!(m.idle_timeout, Duration::from_millis(180_000));
            assert_eq!(m.max_auth_attempts, None);
            assert_eq!(m.ssl, None);
        }
        other => panic!("{other:?}"),
    }

    assert_eq!(c.logger.type_.as_deref(), Some("default"));
    assert_eq!(c.logger.options, json!({}));
    assert_eq!(
        c.subscriptions.options,
        json!({"subscriptionsSanityTimer": 10000})
    );
    assert_eq!(c.auth.len(), 1);
    assert_eq!(c.auth[0].type_.as_deref(), Some("none"));
    assert_eq!(c.auth[0].options, json!({}));
    assert_eq!(c.permission.type_.as_deref(), Some("none"));
    assert_eq!(
        c.permission.options,
        json!({"maxRuleIterations": 3, "cacheEvacuationInterval": 60000})
    );
    assert_eq!(c.cache.type_.as_deref(), Some("default"));
    assert_eq!(c.storage.type_.as_deref(), Some("default"));
    assert_eq!(c.monitoring.len(), 1);
    assert_eq!(c.monitoring[0].type_.as_deref(), Some("none"));
    assert_eq!(c.telemetry.type_.as_deref(), Some("deepstreamIO"));
    assert_eq!(c.telemetry.options, json!({"enabled": false}));
    assert_eq!(
        c.locks.options,
        json!({"holdTimeout": 1000, "requestTimeout": 1000})
    );
    assert_eq!(c.cluster_node.type_.as_deref(), Some("default"));
    assert_eq!(
        c.cluster_registry.options,
        json!({"keepAliveInterval": 5000, "activeCheckInterval": 1000, "nodeInactiveTimeout": 6000})
    );
    assert_eq!(
        c.cluster_states.options,
        json!({"reconciliationTimeout": 500})
    );
    assert!(c.plugins.is_empty());
    assert_eq!(c.effective_log_level(), LogLevel::Info);
    assert_eq!(c.raw["serverName"], Value::String(c.server_name.clone()));
}

#[test]
fn default_impl_matches_empty_config() {
    let c = Config::default();
    assert_eq!(c.connection_endpoints.len(), 5);
    assert_eq!(c.config_file, None);
}

#[test]
fn plugin_kinds_are_set_per_section() {
    let c = ok("plugins: {p: {name: x}}\nconnectionEndpoints: [{name: custom}]");
    assert_eq!(c.http_server.kind, PluginKind::HttpServer);
    assert_eq!(c.auth[0].kind, PluginKind::Authentication);
    assert_eq!(c.cluster_registry.kind, PluginKind::ClusterRegistry);
    assert_eq!(c.monitoring[0].kind, PluginKind::Monitoring);
    assert_eq!(c.plugins[0].1.kind, PluginKind::Plugin);
    assert_eq!(c.connection_endpoints[0].decl.kind, PluginKind::Connection);
    assert_eq!(c.connection_endpoints[0].kind, EndpointKind::Custom);
    assert_eq!(c.connection_endpoints[0].options, EndpointOptions::Custom);
}

// ---------------------------------------------------------------------------------------
// merging

#[test]
fn merge_objects_recursively_arrays_and_scalars_replace_null_overwrites() {
    let mut base = json!({"a": {"x": 1, "y": [1, 2]}, "b": 1, "c": {"k": 1}});
    merge(
        &mut base,
        json!({"a": {"y": [3], "z": true}, "b": {"now": "object"}, "c": null}),
    );
    assert_eq!(
        base,
        json!({"a": {"x": 1, "y": [3], "z": true}, "b": {"now": "object"}, "c": null})
    );
}

#[test]
fn file_values_merge_over_section_defaults() {
    let c = ok("rpc:\n  ackTimeout: 5\nlocks:\n  options:\n    holdTimeout: 99\n");
    assert_eq!(c.rpc.ack_timeout, Duration::from_millis(5));
    assert_eq!(c.rpc.response_timeout, Duration::from_millis(10000));
    assert_eq!(c.locks.type_.as_deref(), Some("default"));
    assert_eq!(
        c.locks.options,
        json!({"holdTimeout": 99, "requestTimeout": 1000})
    );
}

#[test]
fn lists_replace_defaults_entirely() {
    let c =
        ok("auth:\n  - type: none\n    options: {a: 1}\nconnectionEndpoints:\n  - type: http\n");
    assert_eq!(c.auth.len(), 1);
    assert_eq!(c.auth[0].options, json!({"a": 1}));
    assert_eq!(c.connection_endpoints.len(), 1);
    assert_eq!(c.connection_endpoints[0].kind, EndpointKind::Http);
    let c = ok("httpServer:\n  options:\n    origins: ['https://a.example']\n");
    assert_eq!(c.http_server_options.origins, ["https://a.example"]);
}

#[test]
fn null_overwrites_defaults() {
    // null options → {} (the defaults are gone)
    let c = ok("subscriptions:\n  options:\n");
    assert_eq!(c.subscriptions.options, json!({}));
    // a null value where a number is required is reported, not replaced by the default
    assert_error(
        "subscriptions:\n  options:\n    subscriptionsSanityTimer: null\n",
        "/subscriptions/options/subscriptionsSanityTimer: must be an integer >= 50, got null",
    );
    // a null section is reported with a hint
    assert_error("cache:\n", "/cache: must be a plugin declaration");
}

#[test]
fn section_naming_a_library_has_no_builtin_type() {
    let c = ok("cache:\n  name: redis\n  options: {host: localhost}\n");
    assert_eq!(c.cache.type_, None);
    assert_eq!(c.cache.name.as_deref(), Some("redis"));
    assert!(c.cache.is_external());
    assert_eq!(c.cache.options, json!({"host": "localhost"}));
}

/// Regression: the built-ins' option checks and rewrites ran on library sections too, so a
/// locks plugin with its own `holdTimeout` syntax was refused and an auth plugin's
/// `options.path` was rewritten against the config folder.
#[test]
fn options_of_a_library_section_reach_the_library_unchecked_and_unchanged() {
    let c = ok("locks:\n  name: redlock\n  options: {holdTimeout: 1s}\n\
         logger: {name: buffered, options: {colors: sometimes}}\n\
         permission: {name: custom, options: {path: rules.bin, maxRuleIterations: many}}\n\
         auth: [{name: my-auth, options: {path: keys/, requestTimeout: soon}}]\n");
    assert_eq!(c.locks.options, json!({"holdTimeout": "1s"}));
    assert_eq!(c.logger.options, json!({"colors": "sometimes"}));
    assert_eq!(
        c.permission.options,
        json!({"path": "rules.bin", "maxRuleIterations": "many"})
    );
    assert_eq!(
        c.auth[0].options,
        json!({"path": "keys/", "requestTimeout": "soon"})
    );
}

#[test]
fn plugins_keep_config_order() {
    let c = ok("plugins:\n  zeta: {name: z}\n  alpha: {name: a}\n  mid: {path: ./m.so}\n");
    let keys: Vec<&str> = c.plugins.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["zeta", "alpha", "mid"]);
    assert_eq!(c.plugin("alpha").unwrap().name.as_deref(), Some("a"));
    let raw_keys: Vec<&String> = c.raw["plugins"].as_object().unwrap().keys().collect();
    assert_eq!(raw_keys, ["zeta", "alpha", "mid"]);
}

#[test]
fn permission_documents_keep_document_order() {
    // Valve breaks ties between equally long patterns by document order.
    let dir = temp_dir("perm-order");
    write(
        &dir,
        "permissions.yml",
        "record:\n  'b*':\n    read: true\n  'a*':\n    read: false\n  '*':\n    read: true\nevent: {'*': {publish: true}}\nrpc: {'*': {provide: true}}\npresence: {'*': {allow: true}}\n",
    );
    let c = parse_in(
        &dir,
        "permission:\n  type: config\n  options:\n    permissions: fileLoad(permissions.yml)\n",
        &[],
        &Overrides::default(),
    )
    .unwrap();
    let keys: Vec<&String> = c.permission.options["permissions"]["record"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, ["b*", "a*", "*"]);
}

#[test]
fn yaml_merge_keys_are_applied() {
    let c = ok("rpc: &r\n  ackTimeout: 7\nrecord:\n  <<: {cacheRetrievalTimeout: 8}\n");
    assert_eq!(c.rpc.ack_timeout, Duration::from_millis(7));
    assert_eq!(c.record.cache_retrieval_timeout, Duration::from_millis(8));
}

// ---------------------------------------------------------------------------------------
// ${VAR}

#[test]
fn env_vars_are_substituted_textually_before_parsing() {
    let overrides = Overrides::default();
    let c = parse_in(
        Path::new("/conf"),
        "serverName: node-${ID}\nhttpServer:\n  options:\n    port: ${PORT}\n    host: \"${HOST}\"\n",
        &[("PORT", "7000"), ("ID", "7"), ("HOST", "127.0.0.1")],
        &overrides,
    )
    .unwrap();
    assert_eq!(c.http_server_options.port, 7000); // a number, not a string
    assert_eq!(c.server_name, "node-7");
    assert_eq!(c.http_server_options.host, "127.0.0.1");
}

#[test]
fn unset_env_var_becomes_empty_and_thus_null() {
    let e = parse_in(
        Path::new("/conf"),
        "httpServer:\n  options:\n    port: ${UNSET_PORT}\n",
        &[],
        &Overrides::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.problems(),
        ["/httpServer/options/port: must be an integer >= 1 and <= 65535, got null"]
    );
    // inside a string it is simply empty
    let c = parse_in(
        Path::new("/conf"),
        "serverName: \"a${UNSET}b\"\n",
        &[],
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.server_name, "ab");
}

#[test]
fn only_braced_env_form_is_supported_and_comments_are_left_alone() {
    let c = parse_in(
        Path::new("/conf"),
        "serverName: \"$NAME-${}\" # ${NAME}\n",
        &[("NAME", "x")],
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.server_name, "$NAME-${}");
}

// ---------------------------------------------------------------------------------------
// file() / fileLoad()

#[test]
fn file_resolves_against_conf_dir() {
    let c = ok(
        "plugins:\n  p:\n    name: x\n    options:\n      a: file(users.yml)\n      b: file(./users.yml)\n      c: file(/abs/x.pem)\n      d: file(../up/y.pem)\n      e: [file(a(1).pem), file(b.pem)]\n      f: profile(x)\n      g: file( 'spaced name.pem' )\n",
    );
    let o = &c.plugin("p").unwrap().options;
    assert_eq!(o["a"], "/conf/users.yml");
    assert_eq!(o["b"], "/conf/users.yml");
    assert_eq!(o["c"], "/abs/x.pem");
    assert_eq!(o["d"], "/up/y.pem");
    assert_eq!(o["e"], json!(["/conf/a(1).pem", "/conf/b.pem"]));
    assert_eq!(o["f"], "profile(x)");
    assert_eq!(o["g"], "/conf/spaced name.pem");
}

#[test]
fn file_argument_may_use_env_vars() {
    let c = parse_in(
        Path::new("/conf"),
        "plugins: {p: {name: x, options: {a: file(${DIR}/k.pem)}}}\n",
        &[("DIR", "/secrets")],
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.plugin("p").unwrap().options["a"], "/secrets/k.pem");
}

#[test]
fn file_load_parses_yaml_json_and_keeps_text() {
    let dir = temp_dir("fileload");
    write(
        &dir,
        "users.yml",
        "# users\nalice:\n  password: \"a#b\" # comment\n  serverData: {role: ${ROLE}}\n",
    );
    write(
        &dir,
        "sub/data.json",
        "{\"z\": 1, \"a\": [true, null], \"s\": \"${ROLE}\"}",
    );
    write(
        &dir,
        "cert.pem",
        "-----BEGIN CERT-----\nabc\"def\\g\n\tü\n-----END CERT-----\n",
    );
    let text = "plugins:\n  p:\n    name: x\n    options:\n      users: fileLoad(users.yml)\n      data: fileLoad(./sub/data.json)\n      cert: fileLoad(cert.pem)\n";
    let c = parse_in(&dir, text, &[("ROLE", "admin")], &Overrides::default()).unwrap();
    let o = &c.plugin("p").unwrap().options;
    assert_eq!(
        o["users"],
        json!({"alice": {"password": "a#b", "serverData": {"role": "admin"}}})
    );
    assert_eq!(o["data"], json!({"z": 1, "a": [true, null], "s": "admin"}));
    assert_eq!(
        o["cert"],
        "-----BEGIN CERT-----\nabc\"def\\g\n\tü\n-----END CERT-----\n"
    );
}

#[test]
fn file_load_missing_file_is_a_hard_error_naming_file_line_and_key() {
    let dir = temp_dir("fileload-missing");
    let text = "permission:\n  type: config\n  options:\n    permissions: fileLoad(nope.yml)\n";
    let e = parse_in(&dir, text, &[], &Overrides::default()).unwrap_err();
    let lines = e.problems();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let expected = format!(
        "<config>:4 (permission.options.permissions): fileLoad(nope.yml): missing file {}",
        dir.join("nope.yml").display()
    );
    assert_eq!(lines[0], expected);
}

#[test]
fn file_load_invalid_format_is_a_hard_error() {
    let dir = temp_dir("fileload-invalid");
    write(&dir, "bad.json", "{not json");
    write(&dir, "bad.yml", "a: [1, 2\n");
    let text = "plugins:\n  p:\n    name: x\n    options:\n      a: fileLoad(bad.json)\n      b: fileLoad(bad.yml)\n      c: fileLoad(code.js)\n";
    let lines = parse_in(&dir, text, &[], &Overrides::default())
        .unwrap_err()
        .problems();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines[0].starts_with(
        "<config>:5 (plugins.p.options.a): fileLoad(bad.json): invalid format in file "
    ));
    assert!(lines[1].contains("(plugins.p.options.b): fileLoad(bad.yml): invalid format in file "));
    assert!(lines[2].contains("is a JavaScript file"));
}

#[test]
fn file_tokens_in_comments_are_ignored() {
    let c = ok("# key: fileLoad(missing.pem)\nshowLogo: true # fileLoad(also-missing.yml)\n");
    assert!(c.show_logo);
}

#[test]
fn file_tokens_in_block_scalars_are_expanded_despite_hashes() {
    let dir = temp_dir("block");
    let c = parse_in(
        &dir,
        "plugins:\n  p:\n    name: x\n    options:\n      text: |\n        a # not a comment ${V}\n        file(x)\n      after: ${V}\n",
        &[("V", "v")],
        &Overrides::default(),
    )
    .unwrap();
    let o = &c.plugin("p").unwrap().options;
    let expected = format!("a # not a comment v\n{}\n", dir.join("x").display());
    assert_eq!(o["text"], expected);
    assert_eq!(o["after"], "v");
}

/// Quirk (server.md §1.2 step 1): the reference strips everything after the first `#` on a
/// line, even inside quoted strings. We rely on the YAML parser instead.
#[test]
fn quirk_hash_inside_quoted_string_is_kept() {
    let c = ok(
        "serverName: \"ab#cd\"  # a real comment\nplugins:\n  p: {name: x, options: {pw: 'x #y', q: \"it's # fine\", r: 'it''s # ok'}}\n",
    );
    assert_eq!(c.server_name, "ab#cd");
    let o = &c.plugin("p").unwrap().options;
    assert_eq!(o["pw"], "x #y");
    assert_eq!(o["q"], "it's # fine");
    assert_eq!(o["r"], "it's # ok");
}

#[test]
fn quoted_hash_does_not_hide_later_tokens() {
    let c = parse_in(
        Path::new("/conf"),
        "serverName: \"a #b ${X}\"\n",
        &[("X", "x")],
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.server_name, "a #b x");
}

// ---------------------------------------------------------------------------------------
// path resolution (server.md §1.4)

#[test]
fn path_resolution_table_all_six_cells() {
    let cwd = std::env::current_dir().unwrap();
    let abs_dir = Path::new("/opt/ds/lib");
    let rel_dir = Path::new("plugins");
    // absolute P
    assert_eq!(
        resolve_path(Path::new("/x/y.so"), Some(abs_dir)),
        Path::new("/x/y.so")
    );
    assert_eq!(
        resolve_path(Path::new("/x/y.so"), None),
        Path::new("/x/y.so")
    );
    // relative starting with "."
    assert_eq!(
        resolve_path(Path::new("./y.so"), Some(abs_dir)),
        Path::new("/opt/ds/lib/y.so")
    );
    assert_eq!(
        resolve_path(Path::new("../y.so"), Some(rel_dir)),
        normalize(&cwd.join("y.so"))
    );
    assert_eq!(resolve_path(Path::new("./y.so"), None), cwd.join("y.so"));
    // bare
    assert_eq!(
        resolve_path(Path::new("y.so"), Some(abs_dir)),
        Path::new("/opt/ds/lib/y.so")
    );
    assert_eq!(
        resolve_path(Path::new("y.so"), Some(rel_dir)),
        cwd.join("plugins/y.so")
    );
    assert_eq!(resolve_path(Path::new("y.so"), None), Path::new("y.so"));
}

#[test]
fn plugin_paths_use_lib_dir_or_conf_dir() {
    let c = ok("libDir: ../lib\ncache: {path: ./libcache.so}\nstorage: {path: /abs/libs.so}\n");
    assert_eq!(c.lib_dir.as_deref(), Some(Path::new("/lib")));
    assert_eq!(c.cache.path.as_deref(), Some(Path::new("/lib/libcache.so")));
    assert_eq!(c.storage.path.as_deref(), Some(Path::new("/abs/libs.so")));
    assert_eq!(c.raw["cache"]["path"], "/lib/libcache.so");
    assert_eq!(c.raw["libDir"], "/lib");

    // no lib dir: "./x" is relative to the conf dir, bare names are left for the loader
    let c = ok("cache: {path: ./plugins/libcache.so}\nstorage: {path: libstorage.so}\n");
    assert_eq!(
        c.cache.path.as_deref(),
        Some(Path::new("/conf/plugins/libcache.so"))
    );
    assert_eq!(c.storage.path.as_deref(), Some(Path::new("libstorage.so")));
}

#[test]
fn lib_dir_precedence_cli_config_env() {
    let conf = Path::new("/etc/ds");
    let env = [(LIB_DIR_ENV, "/from/env")];
    let cli = Overrides {
        lib_dir: Some(PathBuf::from("/from/cli")),
        ..Overrides::default()
    };
    let c = parse_in(conf, "libDir: lib\n", &env, &cli).unwrap();
    assert_eq!(c.lib_dir.as_deref(), Some(Path::new("/from/cli")));
    let c = parse_in(conf, "libDir: lib\n", &env, &Overrides::default()).unwrap();
    assert_eq!(c.lib_dir.as_deref(), Some(Path::new("/etc/ds/lib")));
    let c = parse_in(conf, "", &env, &Overrides::default()).unwrap();
    assert_eq!(c.lib_dir.as_deref(), Some(Path::new("/from/env")));
    let c = parse_in(conf, "libDir: null\n", &[], &Overrides::default()).unwrap();
    assert_eq!(c.lib_dir, None);
}

// ---------------------------------------------------------------------------------------
// plugin library candidates

#[test]
fn name_resolves_to_library_candidates() {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
    let lib = |s: &str| format!("{DLL_PREFIX}{s}{DLL_SUFFIX}");
    let c = ok(
        "cache: {name: Redis}\nclusterNode: {name: redis}\nauth: [{name: my-auth}]\nconnectionEndpoints: [{name: ws2}]\nplugins: {x: {name: heap-snapshot}}\n",
    );
    let dir = Path::new("/opt/lib");
    assert_eq!(
        c.cache.library_candidates(Some(dir)),
        [
            dir.join(lib("deepstream_cache_redis")),
            dir.join(lib("redis"))
        ]
    );
    assert_eq!(
        c.cluster_node.library_candidates(Some(dir))[0],
        dir.join(lib("deepstream_clusternode_redis"))
    );
    assert_eq!(
        c.auth[0].library_candidates(Some(dir)),
        [
            dir.join(lib("deepstream_authentication_my_auth")),
            dir.join(lib("my_auth")),
            dir.join(lib("my-auth")),
        ]
    );
    assert_eq!(
        c.connection_endpoints[0].decl.library_candidates(None),
        [
            PathBuf::from(lib("deepstream_connection_ws2")),
            PathBuf::from(lib("ws2"))
        ]
    );
    assert_eq!(
        c.plugin("x").unwrap().library_candidates(Some(dir))[0],
        dir.join(lib("deepstream_plugin_heap_snapshot"))
    );
    // path wins; neither → nothing
    let c = ok("cache: {name: redis, path: /x/libc.so}\n");
    assert_eq!(
        c.cache.library_candidates(Some(dir)),
        [PathBuf::from("/x/libc.so")]
    );
    assert!(c.storage.library_candidates(Some(dir)).is_empty());
    for (kind, s) in [
        (PluginKind::Storage, "storage"),
        (PluginKind::Logger, "logger"),
        (PluginKind::Locks, "locks"),
        (PluginKind::Subscriptions, "subscriptions"),
        (PluginKind::ClusterStates, "clusterstates"),
        (PluginKind::HttpServer, "httpserver"),
        (PluginKind::Permission, "permission"),
        (PluginKind::Monitoring, "monitoring"),
        (PluginKind::Telemetry, "telemetry"),
    ] {
        assert_eq!(kind.as_str(), s);
    }
}

// ---------------------------------------------------------------------------------------
// validation

#[test]
fn unknown_top_level_key_is_rejected_with_suggestion() {
    assert_eq!(
        errors("logLevl: 1\nfoo: bar\n"),
        [
            "/logLevl: unknown top-level key \"logLevl\" (did you mean \"logLevel\"?)",
            format!(
                "/foo: unknown top-level key \"foo\"; allowed: {}",
                TOP_LEVEL_KEYS.join(", ")
            )
            .as_str(),
        ]
    );
}

#[test]
fn unknown_keys_in_known_sections_are_rejected() {
    assert_error(
        "rpc: {ackTimeot: 1}\n",
        "/rpc/ackTimeot: unknown key \"ackTimeot\" (did you mean \"ackTimeout\"?)",
    );
    assert_error(
        "enabledFeatures: {records: false}\n",
        "/enabledFeatures/records: unknown key",
    );
    assert_error(
        "cache: {type: default, option: {}}\n",
        "/cache/option: unknown key in plugin declaration \"option\" (did you mean \"options\"?)",
    );
}

#[test]
fn wrong_types_are_reported_with_pointer() {
    assert_eq!(
        errors("httpServer:\n  options:\n    port: abc\n"),
        ["/httpServer/options/port: must be an integer >= 1 and <= 65535, got \"abc\""]
    );
    assert_error(
        "showLogo: yes\n",
        "/showLogo: must be a boolean (true or false), got \"yes\"",
    );
    assert_error(
        "serverName: ''\n",
        "/serverName: must be a non-empty string, got \"\"",
    );
    assert_error("rpc: 5\n", "/rpc: must be a mapping (object), got 5");
    assert_error(
        "record: {storageExclusionPrefixes: x}\n",
        "/record/storageExclusionPrefixes: must be a list of strings, got \"x\"",
    );
    assert_error(
        "libDir: 5\n",
        "/libDir: must be a directory path or null, got 5",
    );
    assert_error(
        "httpServer: {options: {origins: [not-a-url]}}\n",
        "/httpServer/options/origins/0: must be a URL",
    );
    assert_error(
        "auth: {type: none, options: 3}\n",
        "/auth/options: must be a mapping (object), got 3",
    );
    assert_error(
        "plugins: [a]\n",
        "/plugins: must be a mapping of plugin names to declarations",
    );
    assert_error(
        "plugins: {x: {options: {}}}\n",
        "/plugins/x: needs a \"name\" or a \"path\"",
    );
    assert_error(
        "connectionEndpoints: {type: http}\n",
        "/connectionEndpoints: must be a list",
    );
    assert_error("- a\n- b\n", "/: the configuration must be a mapping");
}

#[test]
fn enum_values_are_checked() {
    assert_eq!(
        errors("auth:\n  - type: htp\n"),
        [
            "/auth/0/type: must be one of none, file, http, storage, got \"htp\" (did you mean \"http\"?)"
        ]
    );
    assert_error(
        "connectionEndpoints:\n  - type: ws-txt\n",
        "/connectionEndpoints/0/type: must be one of ws-text, ws-json, ws-binary, http, mqtt, got \"ws-txt\" (did you mean \"ws-text\"?)",
    );
    assert_error(
        "permission: {type: valve}\n",
        "/permission/type: must be one of config, none, got \"valve\"",
    );
    assert_error(
        "cache: {type: redis}\n",
        "/cache/type: must be one of default, got \"redis\"",
    );
    assert_error(
        "monitoring: [{type: prometheus}]\n",
        "/monitoring/0/type: must be one of none, default, log, http",
    );
    assert_error(
        "httpServer: {type: node}\n",
        "/httpServer/type: must be one of default, uws",
    );
    assert_error(
        "telemetry: {type: x}\n",
        "/telemetry/type: must be one of deepstreamIO",
    );
}

#[test]
fn log_level_accepts_numbers_and_names() {
    for (text, level) in [
        ("0", LogLevel::Debug),
        ("3", LogLevel::Error),
        ("4", LogLevel::Fatal),
        ("100", LogLevel::Off),
        ("DEBUG", LogLevel::Debug),
        ("warn", LogLevel::Warn),
        ("Off", LogLevel::Off),
    ] {
        assert_eq!(
            ok(&format!("logLevel: {text}\n")).log_level,
            level,
            "{text}"
        );
    }
    assert_error(
        "logLevel: 5\n",
        "/logLevel: must be one of 0 (DEBUG), 1 (INFO), 2 (WARN), 3 (ERROR), 4 (FATAL), 100 (OFF) or a level name",
    );
    assert_error("logLevel: verbose\n", "got \"verbose\"");
    assert_error(
        "logger: {options: {logLevel: LOUD}}\n",
        "/logger/options/logLevel: must be one of",
    );
    let c = ok("logLevel: 2\nlogger: {options: {logLevel: DEBUG}}\n");
    assert_eq!(c.log_level, LogLevel::Warn);
    assert_eq!(c.effective_log_level(), LogLevel::Debug);
    // The built-in JSON logger is checked like the std-out one; a library is not.
    assert_error(
        "logger: {name: pino, options: {logLevel: LOUD}}\n",
        "/logger/options/logLevel: must be one of",
    );
    let c = ok("logger: {name: pino, options: {logLevel: ERROR}}\n");
    assert!(c.logger.names_builtin(JSON_LOGGER));
    assert_eq!(c.effective_log_level(), LogLevel::Error);
    assert!(
        !ok("logger: {path: ./pino.so}\n")
            .logger
            .names_builtin(JSON_LOGGER)
    );
}

#[test]
fn minimums_are_enforced() {
    assert_eq!(
        errors("dependencyInitializationTimeout: 500\n"),
        ["/dependencyInitializationTimeout: must be an integer >= 1000, got 500"]
    );
    assert_error(
        "subscriptions: {options: {subscriptionsSanityTimer: 10}}\n",
        "/subscriptions/options/subscriptionsSanityTimer: must be an integer >= 50, got 10",
    );
    assert_error(
        "locks: {options: {holdTimeout: 1}}\n",
        "/locks/options/holdTimeout: must be an integer >= 50",
    );
    assert_error(
        "permission: {options: {maxRuleIterations: 0}}\n",
        "/permission/options/maxRuleIterations: must be an integer >= 1, got 0",
    );
    assert_error(
        "clusterRegistry: {options: {keepAliveInterval: 0}}\n",
        "/clusterRegistry/options/keepAliveInterval: must be an integer >= 1",
    );
    assert_error(
        "clusterStates: {options: {reconciliationTimeout: -1}}\n",
        "/clusterStates/options/reconciliationTimeout: must be an integer >= 1, got -1",
    );
    assert_error(
        "connectionEndpoints: [{type: ws-binary, options: {heartbeatInterval: 0}}]\n",
        "/connectionEndpoints/0/options/heartbeatInterval: must be an integer >= 1, got 0",
    );
    assert_error(
        "connectionEndpoints: [{type: ws-binary, options: {maxAuthAttempts: 0}}]\n",
        "/connectionEndpoints/0/options/maxAuthAttempts: must be an integer >= 1",
    );
    assert_error(
        "auth: [{type: file, options: {users: {}, iterations: 0}}]\n",
        "/auth/0/options/iterations: must be an integer >= 1, got 0",
    );
    assert_error(
        "httpServer: {options: {port: 70000}}\n",
        "/httpServer/options/port: must be an integer >= 1 and <= 65535, got 70000",
    );
    // 1.5e3 is an integral number
    assert_eq!(
        ok("dependencyInitializationTimeout: 1.5e3\n").dependency_initialization_timeout,
        Duration::from_millis(1500)
    );
}

#[test]
fn section_specific_requirements() {
    assert_error(
        "permission: {type: config}\n",
        "/permission/options: permission type \"config\" needs \"permissions\"",
    );
    assert_error(
        "auth: [{type: file}]\n",
        "/auth/0/options: auth type \"file\" needs \"users\"",
    );
    assert_error(
        "auth: [{type: http, options: {endpointUrl: 'https://x.example/a'}}]\n",
        "/auth/0/options: Missing key permittedStatusCodes",
    );
    assert_error(
        "auth: [{type: http, options: {endpointUrl: nope}}]\n",
        "/auth/0/options/endpointUrl: must be a URL",
    );
    assert_error("auth: []\n", "/auth: No authentication type specified");
    assert_error("auth:\n", "/auth: No authentication type specified");
    assert_error("auth: [{options: {}}]\n", "/auth/0: needs a \"type\"");
    assert_error(
        "monitoring: {type: http}\n",
        "/monitoring/options: Missing \"url\" for HTTP Monitoring",
    );
    assert_error(
        "httpServer: {options: {allowAllOrigins: false}}\n",
        "/httpServer/options/origins: allowAllOrigins is false but no origins are configured",
    );
    assert_error(
        "httpServer: {options: {ssl: {key: k}}}\n",
        "/httpServer/options/ssl: needs both \"key\" and \"cert\"",
    );
    let c = ok("monitoring: {type: http, options: {url: /m, allowOpenPermissions: true}}\n");
    assert_eq!(c.monitoring[0].options["url"], "/m");
}

#[test]
fn all_problems_are_collected_and_displayed_one_per_line() {
    let e = parse(
        "foo: 1\nshowLogo: maybe\nhttpServer:\n  options:\n    port: abc\nauth:\n  - type: htp\nconnectionEndpoints:\n  - type: ws-binary\n    options:\n      unauthenticatedClientTimeout: soon\n",
    )
    .unwrap_err();
    let problems = e.invalid_problems();
    assert_eq!(problems.len(), 5, "{problems:#?}");
    let locations: Vec<&str> = problems.iter().map(|p| p.location.as_str()).collect();
    assert_eq!(
        locations,
        [
            "/foo",
            "/showLogo",
            "/httpServer/options/port",
            "/auth/0/type",
            "/connectionEndpoints/0/options/unauthenticatedClientTimeout"
        ]
    );
    let display = e.to_string();
    assert_eq!(display.lines().count(), 5);
    assert_eq!(display.lines().next().unwrap(), e.problems()[0]);
    assert!(
        display
            .lines()
            .next()
            .unwrap()
            .starts_with("/foo: unknown top-level key")
    );
}

#[test]
fn parse_errors_are_single_line() {
    let e = parse("a: [1, 2\n").unwrap_err();
    assert!(matches!(e, ConfigError::Parse { .. }));
    assert_eq!(e.to_string().lines().count(), 1);
    assert!(e.to_string().starts_with("could not parse config: "));
}

// ---------------------------------------------------------------------------------------
// CLI overrides

#[test]
fn cli_host_and_port_override_http_server() {
    let overrides = Overrides {
        host: Some("127.0.0.1".into()),
        port: Some(7777),
        ..Overrides::default()
    };
    let c = parse_in(
        Path::new("/conf"),
        "httpServer:\n  options:\n    host: 0.0.0.0\n    port: 6020\n",
        &[],
        &overrides,
    )
    .unwrap();
    assert_eq!(c.http_server_options.host, "127.0.0.1");
    assert_eq!(c.http_server_options.port, 7777);
    assert_eq!(c.http_server.options["port"], 7777);
    assert_eq!(c.raw["httpServer"]["options"]["host"], "127.0.0.1");
    // also when the file nulls the options
    let c = parse_in(
        Path::new("/conf"),
        "httpServer:\n  options:\n",
        &[],
        &overrides,
    )
    .unwrap();
    assert_eq!(c.http_server_options.port, 7777);
}

#[test]
fn cli_log_level_auth_permissions_colors_and_server_name() {
    let overrides = Overrides {
        log_level: Some(LogLevel::Debug),
        colors: Some(false),
        disable_auth: true,
        disable_permissions: true,
        server_name: Some("node-a".into()),
        ..Overrides::default()
    };
    let c = parse_in(
        Path::new("/conf"),
        "logLevel: 3\nauth: [{type: file, options: {users: {}}}]\npermission: {name: custom, options: {maxRuleIterations: 5}}\n",
        &[],
        &overrides,
    )
    .unwrap();
    assert_eq!(c.log_level, LogLevel::Debug);
    assert_eq!(c.logger.options["logLevel"], "DEBUG");
    assert_eq!(c.logger.options["colors"], false);
    assert_eq!(c.effective_log_level(), LogLevel::Debug);
    assert_eq!(c.auth.len(), 1);
    assert_eq!(c.auth[0].type_.as_deref(), Some("none"));
    assert_eq!(c.permission.type_.as_deref(), Some("none"));
    assert_eq!(c.permission.name, None);
    assert_eq!(c.permission.options["maxRuleIterations"], 5);
    assert_eq!(c.server_name, "node-a");
}

#[test]
fn cli_value_parsers() {
    assert_eq!(Overrides::parse_port("8080"), Ok(8080));
    assert!(
        Overrides::parse_port("abc")
            .unwrap_err()
            .starts_with("Provided --port must be an integer")
    );
    assert!(Overrides::parse_port("0").is_err());
    assert_eq!(Overrides::parse_colors("true"), Ok(true));
    assert_eq!(
        Overrides::parse_colors("yes"),
        Err("Invalid argument for --colors, please provide true or false".into())
    );
    assert_eq!(LogLevel::parse_cli("WaRn"), Ok(LogLevel::Warn));
    assert_eq!(LogLevel::parse_cli("off"), Ok(LogLevel::Off));
    assert_eq!(
        LogLevel::parse_cli("fatal"),
        Err("Log level must be one of the following (debug|info|warn|error|off)".into())
    );
}

// ---------------------------------------------------------------------------------------
// monitoring / endpoints / auth details

#[test]
fn monitoring_accepts_object_or_list() {
    let c = ok("monitoring:\n  type: log\n  options: {logInterval: 30000}\n");
    assert_eq!(c.monitoring.len(), 1);
    assert_eq!(c.monitoring[0].type_.as_deref(), Some("log"));
    let c = ok("monitoring:\n  - type: none\n  - type: log\n  - name: prom\n");
    let types: Vec<Option<&str>> = c.monitoring.iter().map(|m| m.type_.as_deref()).collect();
    assert_eq!(types, [Some("none"), Some("log"), None]);
    assert_eq!(c.monitoring[2].name.as_deref(), Some("prom"));
    assert!(ok("monitoring: null\n").monitoring.is_empty());
    assert!(c.raw["monitoring"].is_array());
}

#[test]
fn endpoint_options_merge_over_type_defaults() {
    let c = ok(
        "connectionEndpoints:\n  - type: ws-text\n    options:\n      heartbeatInterval: 5000\n  - type: ws-json\n  - type: http\n    options:\n      postPath: /rpc\n  - type: mqtt\n    options:\n      port: 1884\n      maxAuthAttempts: 2\n",
    );
    let text = ws(&c.connection_endpoints[0]);
    assert_eq!(text.url_path, "/deepstream-v3");
    assert_eq!(text.heartbeat_interval, Duration::from_millis(5000));
    assert_eq!(text.max_auth_attempts, 3);
    assert_eq!(text.max_buffer_byte_size, 100_000);
    assert_eq!(text.outgoing_buffer_timeout, Duration::ZERO);
    assert_eq!(
        text.unauthenticated_client_timeout,
        Some(Duration::from_millis(180_000))
    );
    assert_eq!(text.max_message_size, 1_048_576);
    assert!(!text.log_invalid_auth_data);
    assert_eq!(
        c.connection_endpoints[0].decl.options["urlPath"],
        "/deepstream-v3"
    );
    assert_eq!(
        c.connection_endpoints[0].decl.options["heartbeatInterval"],
        5000
    );
    assert_eq!(ws(&c.connection_endpoints[1]).url_path, "/deepstream-json");
    let http = http_ep(&c.connection_endpoints[2]);
    assert_eq!(
        *http,
        HttpEndpointOptions {
            allow_auth_data: true,
            enable_auth_endpoint: true,
            auth_path: "/api/auth".into(),
            post_path: "/rpc".into(),
            get_path: "/api".into(),
            log_invalid_auth_data: false,
            request_timeout: Duration::from_millis(20000),
        }
    );
    match &c.connection_endpoints[3].options {
        EndpointOptions::Mqtt(m) => {
            assert_eq!(m.port, 1884);
            assert_eq!(m.max_auth_attempts, Some(2));
            assert_eq!(m.idle_timeout, Duration::from_millis(180_000));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.raw["connectionEndpoints"][2]["options"]["authPath"],
        "/api/auth"
    );
}

#[test]
fn custom_endpoint_options_are_not_defaulted() {
    let c = ok("connectionEndpoints:\n  - path: ./libws.so\n    options: {a: 1}\n");
    assert_eq!(c.connection_endpoints[0].kind, EndpointKind::Custom);
    assert_eq!(c.connection_endpoints[0].decl.options, json!({"a": 1}));
}

#[test]
fn unauthenticated_client_timeout_false_or_null_disables() {
    let c = ok(
        "connectionEndpoints:\n  - type: ws-binary\n    options: {unauthenticatedClientTimeout: false}\n  - type: ws-text\n    options: {unauthenticatedClientTimeout: null}\n  - type: ws-json\n    options: {unauthenticatedClientTimeout: 10}\n  - type: mqtt\n    options: {unauthenticatedClientTimeout: false}\n",
    );
    assert_eq!(
        ws(&c.connection_endpoints[0]).unauthenticated_client_timeout,
        None
    );
    assert_eq!(
        ws(&c.connection_endpoints[1]).unauthenticated_client_timeout,
        None
    );
    assert_eq!(
        ws(&c.connection_endpoints[2]).unauthenticated_client_timeout,
        Some(Duration::from_millis(10))
    );
    match &c.connection_endpoints[3].options {
        EndpointOptions::Mqtt(m) => assert_eq!(m.unauthenticated_client_timeout, None),
        other => panic!("{other:?}"),
    }
}

#[test]
fn null_endpoint_entry_disables_it() {
    let c = ok("connectionEndpoints:\n  - type: ws-binary\n  - null\n  - type: http\n");
    let kinds: Vec<EndpointKind> = c.connection_endpoints.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EndpointKind::WsBinary, EndpointKind::Http]);
    assert_eq!(c.raw["connectionEndpoints"].as_array().unwrap().len(), 2);
}

#[test]
fn no_connection_endpoints_configured() {
    for text in [
        "connectionEndpoints: []\n",
        "connectionEndpoints:\n  - null\n",
        "connectionEndpoints:\n",
    ] {
        assert_eq!(
            errors(text),
            ["/connectionEndpoints: No connection endpoints configured"],
            "{text}"
        );
    }
}

#[test]
fn multiple_auth_entries_stop_reporting_invalid_parameters() {
    let c = ok(
        "auth:\n  - type: http\n    options: {endpointUrl: 'http://a.example/x', permittedStatusCodes: [200], requestTimeout: 1, retryStatusCodes: [], retryAttempts: 0, retryInterval: 0}\n  - type: file\n    options: {users: {}, reportInvalidParameters: true}\n  - type: none\n",
    );
    assert_eq!(c.auth[0].options["reportInvalidParameters"], false);
    assert_eq!(c.auth[1].options["reportInvalidParameters"], true);
    assert_eq!(c.auth[2].options, json!({"reportInvalidParameters": false}));
    // a single entry is left alone
    let c = ok("auth: [{type: none}]\n");
    assert_eq!(c.auth[0].options, json!({}));
}

#[test]
fn legacy_option_paths_are_resolved_and_loaded() {
    let dir = temp_dir("legacy");
    write(&dir, "users.json", "{\"bob\": {\"password\": \"pw\"}}");
    write(
        &dir,
        "perm.yml",
        "record: {'*': {read: true}}\nevent: {'*': {publish: true}}\nrpc: {'*': {provide: true}}\npresence: {'*': {allow: true}}\n",
    );
    let c = parse_in(
        &dir,
        "auth: [{type: file, options: {path: users.json}}]\npermission: {type: config, options: {path: ./perm.yml}}\n",
        &[],
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(
        c.auth[0].options["users"],
        json!({"bob": {"password": "pw"}})
    );
    assert_eq!(
        c.auth[0].options["path"],
        dir.join("users.json").display().to_string()
    );
    assert_eq!(
        c.permission.options["permissions"]["record"]["*"]["read"],
        true
    );
    let e = parse_in(
        &dir,
        "auth: [{type: file, options: {path: missing.json}}]\n",
        &[],
        &Overrides::default(),
    )
    .unwrap_err();
    assert!(
        e.problems()[0].starts_with("/auth/0/options/path: missing file "),
        "{e}"
    );
}

#[test]
fn old_style_single_auth_object_is_accepted() {
    let c = ok("auth:\n  type: none\n");
    assert_eq!(c.auth.len(), 1);
    assert_eq!(c.auth[0].type_.as_deref(), Some("none"));
}

#[test]
fn server_name_uuid_and_random() {
    let c = ok("serverName: UUID\n");
    let parts: Vec<&str> = c.server_name.split('-').collect();
    assert_eq!(
        parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12]
    );
    assert!(parts[2].starts_with('4'));
    assert_ne!(c.server_name, ok("serverName: UUID\n").server_name);

    let c = ok("");
    let (time, random) = c.server_name.split_once('-').unwrap();
    assert!(
        time.chars()
            .all(|ch| ch.is_ascii_digit() || ch.is_ascii_lowercase())
    );
    assert!(!random.is_empty());
    assert!(
        random
            .chars()
            .all(|ch| ch.is_ascii_digit() || ch.is_ascii_lowercase())
    );
    assert_eq!(ok("serverName: fixed\n").server_name, "fixed");
}

// ---------------------------------------------------------------------------------------
// file discovery and formats

#[test]
fn load_explicit_file_and_conf_dir() {
    let dir = temp_dir("load");
    write(
        &dir,
        "permissions.json",
        "{\"record\": {\"*\": {\"read\": true}}}",
    );
    let file = write(
        &dir,
        "my.yml",
        "permission:\n  type: config\n  options:\n    permissions: fileLoad(permissions.json)\n",
    );
    let c = Config::load(Some(&file), &Overrides::default()).unwrap();
    assert_eq!(c.config_file.as_deref(), Some(file.as_path()));
    assert_eq!(c.conf_dir, dir);
    assert_eq!(
        c.permission.options["permissions"]["record"]["*"]["read"],
        true
    );
}

#[test]
fn load_json_config() {
    let dir = temp_dir("json");
    let file = write(
        &dir,
        "config.json",
        "{\"logLevel\": 3, \"serverName\": \"${N}\"}",
    );
    let env = env_map(&[("N", "from-env")]);
    let lookup = move |k: &str| env.get(k).cloned();
    let c = load_with(Some(&file), &Overrides::default(), &lookup, &[]).unwrap();
    assert_eq!(c.log_level, LogLevel::Error);
    assert_eq!(c.server_name, "from-env");
}

#[test]
fn load_errors() {
    let dir = temp_dir("load-errors");
    let missing = dir.join("nope.yml");
    assert_eq!(
        Config::load(Some(&missing), &Overrides::default()).unwrap_err(),
        ConfigError::FileNotFound(missing.clone())
    );
    assert_eq!(
        Config::load(Some(&missing), &Overrides::default())
            .unwrap_err()
            .to_string(),
        format!("Configuration file not found at: {}", missing.display())
    );
    let js = write(&dir, "config.js", "module.exports = {}");
    let e = Config::load(Some(&js), &Overrides::default()).unwrap_err();
    assert_eq!(e, ConfigError::JavaScriptNotSupported(js.clone()));
    assert!(
        e.to_string()
            .contains("JavaScript configuration files are not supported by this server")
    );
    let toml = write(&dir, "config.toml", "a = 1");
    let e = Config::load(Some(&toml), &Overrides::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            ".toml is not supported as configuration file ({}); use .yml, .yaml or .json",
            toml.display()
        )
    );
    let bad = write(&dir, "bad.yml", "a: [\n");
    let e = Config::load(Some(&bad), &Overrides::default()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("could not parse config file {}: ", bad.display()))
    );
    let invalid = write(
        &dir,
        "invalid.yml",
        "permission:\n  options:\n    permissions: fileLoad(x.yml)\n",
    );
    let e = Config::load(Some(&invalid), &Overrides::default()).unwrap_err();
    assert!(
        e.to_string().starts_with(
            "invalid.yml:3 (permission.options.permissions): fileLoad(x.yml): missing file "
        ),
        "{e}"
    );
}

#[test]
fn discovery_order_env_then_stems_and_extensions() {
    let dir = temp_dir("discover");
    let a = dir.join("a");
    let b = dir.join("b");
    write(&b, "config.json", "{\"serverName\": \"b-json\"}");
    write(&b, "config.yaml", "serverName: b-yaml\n");
    let stems = [a.join("config"), b.join("config")];
    let no_env = |_: &str| None;
    let c = load_with(None, &Overrides::default(), &no_env, &stems).unwrap();
    assert_eq!(c.server_name, "b-yaml"); // .yaml before .json, first existing stem
    write(&a, "config.yml", "serverName: a-yml\n");
    let c = load_with(None, &Overrides::default(), &no_env, &stems).unwrap();
    assert_eq!(c.server_name, "a-yml");

    // DEEPSTREAM_CONFIG_DIRECTORY names a file and wins over the search
    let other = write(&dir, "other.yml", "serverName: env\n");
    let other_str = other.display().to_string();
    let env = move |k: &str| (k == CONFIG_ENV).then(|| other_str.clone());
    let c = load_with(None, &Overrides::default(), &env, &stems).unwrap();
    assert_eq!(c.server_name, "env");
    // ... and an explicit path wins over the env
    let c = load_with(
        Some(&a.join("config.yml")),
        &Overrides::default(),
        &env,
        &stems,
    )
    .unwrap();
    assert_eq!(c.server_name, "a-yml");

    // nothing found
    let e = load_with(
        None,
        &Overrides::default(),
        &no_env,
        &[dir.join("none/config")],
    )
    .unwrap_err();
    assert!(matches!(e, ConfigError::NoConfigFile { ref searched } if searched.len() == 4));
    assert!(e.to_string().starts_with("No config file found"));

    // a discovered .js config is reported, not skipped
    let js = write(&dir, "js/config.js", "");
    let e = load_with(
        None,
        &Overrides::default(),
        &no_env,
        &[dir.join("js/config")],
    )
    .unwrap_err();
    assert_eq!(e, ConfigError::JavaScriptNotSupported(js));
}

#[test]
fn default_stems_follow_the_spec_order() {
    let stems = default_config_stems();
    assert_eq!(stems[0], Path::new("/etc/deepstream/conf"));
    assert_eq!(stems[1], Path::new("./conf/config"));
    assert_eq!(stems[2], Path::new("../conf/config"));
    assert!(stems[3].ends_with("conf/config"));
}

// ---------------------------------------------------------------------------------------
// shipped files

#[test]
fn shipped_config_files_load() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/config.yml");
    let c = Config::load(Some(&file), &Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.show_logo);
    assert_eq!(c.log_level, LogLevel::Info);
    assert_eq!(c.http_server_options.port, 6020);
    let kinds: Vec<EndpointKind> = c.connection_endpoints.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EndpointKind::WsBinary, EndpointKind::Http]);
    assert_eq!(c.auth.len(), 1);
    assert_eq!(c.auth[0].type_.as_deref(), Some("none"));
    assert_eq!(c.permission.type_.as_deref(), Some("config"));
    let perms = &c.permission.options["permissions"];
    for section in ["record", "event", "rpc", "presence"] {
        assert!(perms[section]["*"].is_object(), "{section}");
    }
    assert_eq!(perms["record"]["*"]["write"], true);
    assert_eq!(c.cache.type_.as_deref(), Some("default"));
    // Records persist through the SQLite storage plugin, found in libDir.
    assert_eq!(c.storage.name.as_deref(), Some("storage-sqlite"));
    assert!(
        c.lib_dir
            .as_ref()
            .is_some_and(|dir| dir.ends_with("target/release"))
    );
    assert_eq!(c.server_name.len(), 36);

    // the users example parses and uses the documented test vector
    let users = preprocess::load_file_value(&c.conf_dir.join("users.yml"), &|_| None).unwrap();
    assert_eq!(
        users["userA"]["password"],
        "rCOSZxJrgze2AZdVQh12c6ErDMOG0M+Rx5Yu7S5d91c=GS4SbTQYmoaGwjm2shEobg=="
    );
    assert!(users["userB"]["password"].is_string());
}

/// Regression: the permission defaults (`maxRuleIterations`, …) were merged into a plugin's
/// options and the plugin, rejecting unknown keys, refused to start.
#[test]
fn sections_naming_a_library_get_no_builtin_defaults() {
    let c = parse(
        "permission:\n  path: ./libperm.so\nstorage:\n  name: sqlite\n  options: {path: x}\n",
    )
    .unwrap();
    assert_eq!(c.permission.options, json!({}));
    assert_eq!(c.permission.type_, None);
    assert_eq!(c.storage.options, json!({"path": "x"}));
}

/// Regression: with several auth entries, `reportInvalidParameters: false` was forced into
/// plugin options too.
#[test]
fn report_invalid_parameters_is_only_forced_on_builtin_handlers() {
    let c = parse("auth:\n  - path: ./libauth.so\n  - type: none\n").unwrap();
    assert_eq!(c.auth[0].options, json!({}));
    assert_eq!(c.auth[1].options, json!({"reportInvalidParameters": false}));
}
