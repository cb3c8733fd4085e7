//! JIF, the JSON Interchange Format of `POST /api` (server.md §5.4–§5.5): validating request
//! elements, turning them into protocol messages, and turning the server's replies into
//! results.

use serde_json::{Map, Value, json};

use crate::protocol::{EventAction, Message, PresenceAction, RecordAction, RpcAction, Topic};

/// One validated JIF request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    EventEmit {
        name: String,
        data: Option<Value>,
    },
    RpcMake {
        name: String,
        data: Option<Value>,
    },
    RecordRead {
        name: String,
    },
    RecordHead {
        name: String,
    },
    RecordDelete {
        name: String,
    },
    RecordWrite {
        name: String,
        data: Value,
        version: i32,
        path: Option<String>,
    },
    RecordNotify {
        names: Vec<String>,
    },
    PresenceQuery {
        names: Option<Vec<String>>,
    },
}

/// The fields each form allows, after `topic` and `action`.
fn form(topic: &str, action: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    // (required, optional)
    Some(match (topic, action) {
        ("event", "emit") => (&["eventName"], &["data"]),
        ("rpc", "make") => (&["rpcName"], &["data"]),
        ("record", "read" | "head" | "delete") => (&["recordName"], &[]),
        ("record", "write") => (&["recordName", "data"], &["version", "path"]),
        ("record", "notify") => (&["recordNames"], &[]),
        ("list", "read" | "delete") => (&["listName"], &[]),
        ("list", "write") => (&["listName", "data"], &["version"]),
        ("presence", "query") => (&[], &["names"]),
        _ => return None,
    })
}

/// Validates one element. The error is the reason text of §5.5, reported against the form
/// that `topic`/`action` select (not the first form tried, as the reference does).
pub fn parse(element: &Value) -> Result<Request, String> {
    let Some(object) = element.as_object() else {
        return Err("the request must be an object".into());
    };
    let text = |key: &str| object.get(key).and_then(Value::as_str);
    let (Some(topic), Some(action)) = (text("topic"), text("action")) else {
        return Err("properties 'topic' and 'action' are required and must be strings".into());
    };
    let Some((required, optional)) = form(topic, action) else {
        return Err(format!("unknown action '{action}' for topic '{topic}'"));
    };
    for key in object.keys() {
        if key != "topic"
            && key != "action"
            && !required.contains(&key.as_str())
            && !optional.contains(&key.as_str())
        {
            return Err(format!(
                "property '{key}' is not allowed for topic '{topic}'"
            ));
        }
    }
    for key in required {
        if !object.contains_key(*key) {
            return Err(format!("property '{key}' is required for topic '{topic}'"));
        }
    }
    let name = |key: &str| -> Result<String, String> {
        match object.get(key) {
            Some(Value::String(name)) if !name.is_empty() => Ok(name.clone()),
            Some(Value::String(_)) => Err(format!(
                "property '{key}' must NOT have fewer than 1 characters"
            )),
            _ => Err(format!("property '{key}' must be string")),
        }
    };
    let names = |key: &str| -> Result<Vec<String>, String> {
        let error = || format!("property '{key}' must be an array of strings");
        let list = object
            .get(key)
            .and_then(Value::as_array)
            .ok_or_else(error)?;
        list.iter()
            .map(|n| n.as_str().map(str::to_owned).ok_or_else(error))
            .collect()
    };
    let version = || -> Result<i32, String> {
        match object.get("version") {
            None => Ok(-1),
            Some(v) => match v.as_i64() {
                // 0 means "no version check" too (§5.4).
                Some(0) => Ok(-1),
                Some(n) if (-1..=i64::from(i32::MAX)).contains(&n) => Ok(n as i32),
                _ => Err("property 'version' must be an integer >= -1".into()),
            },
        }
    };
    let data = object.get("data").cloned();
    Ok(match (topic, action) {
        ("event", _) => Request::EventEmit {
            name: name("eventName")?,
            data,
        },
        ("rpc", _) => Request::RpcMake {
            name: name("rpcName")?,
            data,
        },
        ("record" | "list", "read") => Request::RecordRead {
            name: record_name(topic, name)?,
        },
        ("record", "head") => Request::RecordHead {
            name: name("recordName")?,
        },
        ("record" | "list", "delete") => Request::RecordDelete {
            name: record_name(topic, name)?,
        },
        ("record", "notify") => Request::RecordNotify {
            names: names("recordNames")?,
        },
        ("presence", _) => Request::PresenceQuery {
            names: if object.contains_key("names") {
                Some(names("names")?)
            } else {
                None
            },
        },
        ("record", _) => {
            let path = match object.get("path") {
                None => None,
                Some(Value::String(path)) => Some(path.clone()),
                Some(_) => return Err("property 'path' must be string".into()),
            };
            let data = data.unwrap_or(Value::Null);
            if path.is_none() && !(data.is_object() || data.is_array()) {
                return Err("property 'data' must be object or array".into());
            }
            Request::RecordWrite {
                name: name("recordName")?,
                data,
                version: version()?,
                path,
            }
        }
        _ => {
            let data = data.unwrap_or(Value::Null);
            let is_list = data
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string));
            if !is_list {
                return Err("property 'data' must be an array of strings".into());
            }
            Request::RecordWrite {
                name: name("listName")?,
                data,
                version: version()?,
                path: None,
            }
        }
    })
}

fn record_name(
    topic: &str,
    name: impl Fn(&str) -> Result<String, String>,
) -> Result<String, String> {
    name(if topic == "list" {
        "listName"
    } else {
        "recordName"
    })
}

impl Request {
    /// The protocol message a client would have sent; `correlation_id` is server-generated.
    pub fn to_message(&self, correlation_id: &str) -> Message {
        match self {
            Request::EventEmit { name, data } => with_data(
                Message::new(Topic::Event, EventAction::Emit).with_name(name),
                data,
            ),
            Request::RpcMake { name, data } => with_data(
                Message::new(Topic::Rpc, RpcAction::Request)
                    .with_name(name)
                    .with_correlation_id(correlation_id),
                data,
            ),
            Request::RecordRead { name } => {
                Message::new(Topic::Record, RecordAction::Read).with_name(name)
            }
            Request::RecordHead { name } => {
                Message::new(Topic::Record, RecordAction::Head).with_name(name)
            }
            Request::RecordDelete { name } => {
                Message::new(Topic::Record, RecordAction::Delete).with_name(name)
            }
            Request::RecordWrite {
                name,
                data,
                version,
                path,
            } => {
                let action = if path.is_some() {
                    RecordAction::CreateAndPatch
                } else {
                    RecordAction::CreateAndUpdate
                };
                let mut message = Message::new(Topic::Record, action)
                    .with_name(name)
                    .with_version(*version)
                    .with_correlation_id(correlation_id)
                    .with_write_ack(true)
                    .with_json(data);
                message.path = path.clone();
                message
            }
            Request::RecordNotify { names } => Message::new(Topic::Record, RecordAction::Notify)
                .with_names(names.iter().cloned())
                .with_correlation_id(correlation_id),
            Request::PresenceQuery { names: None } => {
                Message::new(Topic::Presence, PresenceAction::QueryAll)
            }
            Request::PresenceQuery { names: Some(names) } => {
                Message::new(Topic::Presence, PresenceAction::Query)
                    .with_names(names.iter().cloned())
                    .with_correlation_id(correlation_id)
            }
        }
    }

    /// Event emits get no reply from the handler: they succeed unless denied at once.
    pub fn answered_at_once(&self) -> bool {
        matches!(self, Request::EventEmit { .. })
    }

    /// The result for `reply`, or `None` when the reply is not the final one (acks, RPC
    /// ACCEPT, …).
    pub fn result(&self, reply: &Message) -> Option<Value> {
        let data = || reply.parse_data().ok().flatten().unwrap_or(Value::Null);
        if reply.action >= 100 || reply.is_error {
            return Some(error_result(reply));
        }
        match (self, reply.action_as::<RecordAction>(), reply.topic) {
            (Request::RpcMake { .. }, _, Topic::Rpc) => match reply.action_as() {
                Some(RpcAction::Response) => Some(json!({"success": true, "data": data()})),
                Some(RpcAction::RequestError) => {
                    Some(json!({"success": false, "errorTopic": "rpc", "error": data()}))
                }
                _ => None,
            },
            (Request::RecordRead { .. }, Some(RecordAction::ReadResponse), _) => {
                Some(json!({"success": true, "version": reply.version, "data": data()}))
            }
            (Request::RecordHead { .. }, Some(RecordAction::HeadResponse), _) => {
                Some(json!({"success": true, "version": reply.version}))
            }
            (Request::RecordDelete { .. }, Some(RecordAction::DeleteSuccess), _)
            | (Request::RecordWrite { .. }, Some(RecordAction::WriteAcknowledgement), _) => {
                Some(json!({"success": true}))
            }
            (Request::RecordNotify { .. }, Some(RecordAction::Notify), _) if reply.is_ack => {
                Some(json!({"success": true}))
            }
            (Request::PresenceQuery { .. }, _, Topic::Presence) => match reply.action_as() {
                Some(PresenceAction::QueryAllResponse) => {
                    Some(json!({"success": true, "users": reply.names}))
                }
                Some(PresenceAction::QueryResponse) => {
                    Some(json!({"success": true, "users": data()}))
                }
                _ => None,
            },
            _ => None,
        }
    }
}

fn with_data(message: Message, data: &Option<Value>) -> Message {
    match data {
        Some(data) => message.with_json(data),
        None => message,
    }
}

/// The lower-case topic name used in `errorTopic`.
fn topic_name(topic: Topic) -> &'static str {
    match topic {
        Topic::Event => "event",
        Topic::Record => "record",
        Topic::Rpc => "rpc",
        Topic::Presence => "presence",
        Topic::Connection => "connection",
        Topic::Auth => "auth",
        _ => "parser",
    }
}

/// The upper-case action name of a message's own topic (the reference looks names up in the
/// RPC table whatever the topic, printing `undefined`; server.md §5.4 quirk).
fn action_name(topic: Topic, action: i32) -> String {
    let name = match topic {
        Topic::Event => EventAction::try_from(action).map(|a| format!("{a:?}")).ok(),
        Topic::Record => RecordAction::try_from(action)
            .map(|a| format!("{a:?}"))
            .ok(),
        Topic::Rpc => RpcAction::try_from(action).map(|a| format!("{a:?}")).ok(),
        Topic::Presence => PresenceAction::try_from(action)
            .map(|a| format!("{a:?}"))
            .ok(),
        _ => None,
    };
    name.map(|camel| screaming_snake(&camel))
        .unwrap_or_else(|| action.to_string())
}

fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn is_denial(reply: &Message) -> bool {
    crate::server::denial_actions(reply.topic).is_some_and(|(_, denied)| denied == reply.action)
}

/// The failure result for an error reply (server.md §5.4 table).
fn error_result(reply: &Message) -> Value {
    let topic = topic_name(reply.topic);
    let name = reply.name.clone().unwrap_or_default();
    let mut result = Map::new();
    result.insert("success".into(), false.into());
    result.insert("errorTopic".into(), topic.into());
    result.insert("errorEvent".into(), reply.action.into());
    let error = if is_denial(reply) {
        let original = reply.original_action.unwrap_or_default();
        result.insert("action".into(), original.into());
        format!(
            "Message denied. Action \"{}\" is not permitted.",
            action_name(reply.topic, original)
        )
    } else {
        match (reply.topic, reply.action) {
            (Topic::Rpc, a) if a == RpcAction::NoRpcProvider as i32 => {
                format!("No provider was available to handle the RPC \"{name}\".")
            }
            (Topic::Rpc, a) if a == RpcAction::ResponseTimeout as i32 => {
                "The RPC response timeout was exceeded by the provider.".into()
            }
            (Topic::Record, a) if a == RecordAction::RecordNotFound as i32 => {
                format!("Record read failed. Record \"{name}\" could not be found.")
            }
            (Topic::Record, a)
                if a == RecordAction::VersionExists as i32
                    || a == RecordAction::InvalidVersion as i32 =>
            {
                let version = reply.version.unwrap_or(-1);
                result.insert("currentVersion".into(), version.into());
                result.insert(
                    "currentData".into(),
                    reply.parse_data().ok().flatten().unwrap_or(Value::Null),
                );
                if reply.action == RecordAction::VersionExists as i32 {
                    format!("Record update failed. Version {version} exists for record \"{name}\".")
                } else {
                    format!(
                        "Record update failed. Version {version} is not valid for record \"{name}\"."
                    )
                }
            }
            (topic, action) => {
                tracing::warn!(
                    event = "UNHANDLED_REQUEST_ERROR",
                    "Unhandled request error occurred: {topic:?} {action} {name}"
                );
                result.insert("errorParams".into(), name.clone().into());
                format!("An error occurred: {}.", action_name(topic, action))
            }
        }
    };
    result.insert("error".into(), error.into());
    Value::Object(result)
}

/// The result of an element the timeout cut off.
pub fn timeout_result() -> Value {
    json!({
        "success": false,
        "error": "Request exceeded timeout before a response was received.",
        "errorTopic": "connection",
        "errorEvent": "HTTP_REQUEST_TIMEOUT",
    })
}

/// The denial result of an event emit (its own wording, server.md §5.4).
pub fn event_denied() -> Value {
    json!({
        "success": false,
        "error": "Message denied. Action 'emit' is not permitted.",
        "errorEvent": "MESSAGE_DENIED",
        "errorAction": "emit",
        "errorTopic": "event",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses() {
        let cases = [
            json!({"topic": "event", "action": "emit", "eventName": "e", "data": 1}),
            json!({"topic": "rpc", "action": "make", "rpcName": "add", "data": {"a": 1}}),
            json!({"topic": "record", "action": "read", "recordName": "r"}),
            json!({"topic": "record", "action": "head", "recordName": "r"}),
            json!({"topic": "record", "action": "delete", "recordName": "r"}),
            json!({"topic": "record", "action": "write", "recordName": "r", "data": {"a": 1}, "version": 3}),
            json!({"topic": "record", "action": "write", "recordName": "r", "path": "a.b", "data": 5}),
            json!({"topic": "record", "action": "notify", "recordNames": ["a", "b"]}),
            json!({"topic": "list", "action": "read", "listName": "l"}),
            json!({"topic": "list", "action": "write", "listName": "l", "data": ["x"]}),
            json!({"topic": "presence", "action": "query"}),
            json!({"topic": "presence", "action": "query", "names": ["u"]}),
        ];
        for case in cases {
            assert!(parse(&case).is_ok(), "{case}");
        }
    }

    #[test]
    fn version_zero_means_no_version_check() {
        let request = parse(&json!({"topic": "record", "action": "write", "recordName": "r", "data": {}, "version": 0})).unwrap();
        assert!(matches!(request, Request::RecordWrite { version: -1, .. }));
    }

    /// The reference reports `eventName` missing for an rpc request (server.md §5.5 quirk).
    #[test]
    fn missing_property_is_reported_against_the_form_of_the_topic_quirk() {
        assert_eq!(
            parse(&json!({"topic": "rpc", "action": "make"})).unwrap_err(),
            "property 'rpcName' is required for topic 'rpc'"
        );
    }

    #[test]
    fn invalid_elements_say_why() {
        let cases = [
            (json!("x"), "the request must be an object"),
            (
                json!({"topic": "event", "action": "emit", "eventName": ""}),
                "property 'eventName' must NOT have fewer than 1 characters",
            ),
            (
                json!({"topic": "event", "action": "emit", "eventName": 3}),
                "property 'eventName' must be string",
            ),
            (
                json!({"topic": "event", "action": "emit", "eventName": "e", "x": 1}),
                "property 'x' is not allowed for topic 'event'",
            ),
            (
                json!({"topic": "record", "action": "write", "recordName": "r", "data": 5}),
                "property 'data' must be object or array",
            ),
            (
                json!({"topic": "list", "action": "write", "listName": "l", "data": [1]}),
                "property 'data' must be an array of strings",
            ),
            (
                json!({"topic": "record", "action": "write", "recordName": "r", "data": {}, "version": -2}),
                "property 'version' must be an integer >= -1",
            ),
            (
                json!({"topic": "nope", "action": "emit"}),
                "unknown action 'emit' for topic 'nope'",
            ),
        ];
        for (case, reason) in cases {
            assert_eq!(parse(&case).unwrap_err(), reason, "{case}");
        }
    }

    /// The reference prints `An error occurred: undefined.` for non-RPC topics (§5.4 quirk).
    #[test]
    fn generic_errors_name_the_action_of_their_own_topic_quirk() {
        let reply =
            Message::new(Topic::Record, RecordAction::MessagePermissionError).with_name("r");
        assert_eq!(
            error_result(&reply)["error"],
            "An error occurred: MESSAGE_PERMISSION_ERROR."
        );
    }

    #[test]
    fn denials_name_the_original_action() {
        let reply = Message::new(Topic::Record, RecordAction::MessageDenied)
            .with_name("r")
            .with_original_action(RecordAction::Read)
            .with_error();
        let result = error_result(&reply);
        assert_eq!(
            result["error"],
            "Message denied. Action \"READ\" is not permitted."
        );
        assert_eq!(result["action"], 3);
        assert_eq!(result["errorEvent"], 115);
    }
}
