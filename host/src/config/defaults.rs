//! Built-in defaults (server.md §1.5, §1.5.1).

use serde_json::{Value, json};

use super::model::EndpointKind;

/// The top-level keys a config may contain.
pub const TOP_LEVEL_KEYS: [&str; 25] = [
    "serverName",
    "showLogo",
    "logLevel",
    "dependencyInitializationTimeout",
    "libDir",
    "exitOnFatalError",
    "enabledFeatures",
    "plugins",
    "rpc",
    "record",
    "listen",
    "httpServer",
    "connectionEndpoints",
    "logger",
    "subscriptions",
    "auth",
    "permission",
    "cache",
    "storage",
    "monitoring",
    "telemetry",
    "locks",
    "clusterNode",
    "clusterRegistry",
    "clusterStates",
];

/// The defaults every file config is merged over. `serverName` is absent on purpose (a
/// random id is generated when the key is missing).
pub fn defaults() -> Value {
    json!({
        "showLogo": false,
        "logLevel": 1,
        "dependencyInitializationTimeout": 2000,
        "libDir": null,
        "exitOnFatalError": false,
        "enabledFeatures": {
            "record": true,
            "event": true,
            "rpc": true,
            "presence": true,
            "monitoring": false
        },
        "rpc": {
            "ackTimeout": 1000,
            "responseTimeout": 10000,
            "provideRequestorName": false,
            "provideRequestorData": false
        },
        "record": {
            "cacheRetrievalTimeout": 1000,
            "storageRetrievalTimeout": 2000,
            "storageExclusionPrefixes": [],
            "storageHotPathPrefixes": []
        },
        "listen": {
            "shuffleProviders": true,
            "responseTimeout": 500,
            "rematchInterval": 30000,
            "matchCooldown": 10000
        },
        "httpServer": {
            "type": "default",
            "options": {
                "host": "0.0.0.0",
                "port": 6020,
                "healthCheckPath": "/health-check",
                "allowAllOrigins": true,
                "origins": [],
                "headers": [],
                "maxMessageSize": 1_048_576
            }
        },
        "connectionEndpoints": [
            {"type": "ws-binary", "options": {}},
            {"type": "ws-text", "options": {}},
            {"type": "ws-json", "options": {}},
            {"type": "http", "options": {}},
            {"type": "mqtt", "options": {}}
        ],
        "logger": {"type": "default", "options": {}},
        "subscriptions": {"type": "default", "options": {"subscriptionsSanityTimer": 10000}},
        "auth": [{"type": "none", "options": {}}],
        "permission": {
            "type": "none",
            "options": {"maxRuleIterations": 3, "cacheEvacuationInterval": 60000}
        },
        "cache": {"type": "default", "options": {}},
        "storage": {"type": "default", "options": {}},
        "monitoring": {"type": "none", "options": {}},
        "telemetry": {"type": "deepstreamIO", "options": {"enabled": false}},
        "locks": {"type": "default", "options": {"holdTimeout": 1000, "requestTimeout": 1000}},
        "clusterNode": {"type": "default", "options": {}},
        "clusterRegistry": {
            "type": "default",
            "options": {
                "keepAliveInterval": 5000,
                "activeCheckInterval": 1000,
                "nodeInactiveTimeout": 6000
            }
        },
        "clusterStates": {"type": "default", "options": {"reconciliationTimeout": 500}},
        "plugins": {}
    })
}

/// Default options of a built-in endpoint type; the user's options are deep-merged over them.
pub fn endpoint_defaults(kind: EndpointKind) -> Value {
    match kind {
        EndpointKind::WsBinary | EndpointKind::WsText | EndpointKind::WsJson => json!({
            "urlPath": kind.default_url_path(),
            "heartbeatInterval": 30000,
            "outgoingBufferTimeout": 0,
            "maxBufferByteSize": 100_000,
            "headers": [],
            "unauthenticatedClientTimeout": 180_000,
            "maxAuthAttempts": 3,
            "logInvalidAuthData": false,
            "maxMessageSize": 1_048_576
        }),
        EndpointKind::Http => json!({
            "allowAuthData": true,
            "enableAuthEndpoint": true,
            "authPath": "/api/auth",
            "postPath": "/api",
            "getPath": "/api",
            "logInvalidAuthData": false,
            "requestTimeout": 20000
        }),
        EndpointKind::Mqtt => json!({
            "port": 1883,
            "host": "0.0.0.0",
            "idleTimeout": 180_000,
            "unauthenticatedClientTimeout": 180_000
        }),
        EndpointKind::Custom => json!({}),
    }
}

/// Deep merge (deepstream `utils.merge`): objects merge recursively; arrays, scalars and
/// `null` in `over` replace the value in `base`.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge(existing, value);
                    }
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}
