//! `permission: {type: config}`: Valve rules (server.md §3) as the permission service.
//!
//! The engine in [`valve`] is pure; this service feeds it the message and, when a rule needs
//! them, the current record (`oldData`, patches) and cross-referenced records (`_()`), read
//! the way the record handler reads them (cache, then storage, with their timeouts). Rules that need nothing loaded answer at once. The compiled
//! rules sit behind a lock so a reload swaps them for every connection at once.

pub mod valve;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use parking_lot::RwLock;
use serde_json::Value as Json;

use self::valve::{Decision, Payload, Request, Valve, ValveOptions};
use crate::{
    protocol::{RecordAction, Topic},
    record::Store,
    services::{Answer, Lifecycle, Permission, PermissionRequest},
};

/// The Valve permission service.
pub struct ValvePermission {
    /// The rules in force; replaced whole on reload.
    valve: RwLock<Arc<Valve>>,
    /// Where the records rules refer to are read.
    records: Arc<Store>,
}

/// Compiles `permission.options` (`permissions`, `maxRuleIterations`, `cacheEvacuationInterval`).
pub fn compile(options: &Json) -> Result<Valve, String> {
    let valve_options = ValveOptions::from_config(options).map_err(|e| format!("options: {e}"))?;
    let document = options
        .get("permissions")
        .cloned()
        .unwrap_or_else(Valve::default_document);
    Valve::compile_with(&document, valve_options).map_err(|e| format!("options.permissions: {e}"))
}

impl ValvePermission {
    pub fn new(options: &Json, records: Arc<Store>) -> Result<Self, String> {
        Ok(ValvePermission {
            valve: RwLock::new(Arc::new(compile(options)?)),
            records,
        })
    }
}

impl Lifecycle for ValvePermission {
    fn description(&self) -> String {
        "valve permissions".into()
    }

    /// Puts new rules in force for every connection; on error the old rules stay.
    fn reload(&self, options: &Json) -> Option<Result<(), String>> {
        Some(compile(options).map(|valve| *self.valve.write() = Arc::new(valve)))
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The message payload a rule sees as `data`.
fn payload<'a>(
    request: &PermissionRequest<'a>,
    parsed: &'a Result<Option<Json>, String>,
) -> Payload<'a> {
    let value = match parsed {
        Err(error) => return Payload::Invalid(error),
        Ok(value) => value.as_ref(),
    };
    match (request.topic, RecordAction::try_from(request.action)) {
        (
            Topic::Record,
            Ok(RecordAction::Patch | RecordAction::CreateAndPatch | RecordAction::Erase),
        ) => Payload::Patch {
            path: request.path,
            value,
        },
        (Topic::Record, Ok(RecordAction::PatchMulti)) => {
            Payload::MultiPatch(value.unwrap_or(&Json::Null))
        }
        _ => value.map_or(Payload::None, Payload::Value),
    }
}

/// The engine's request for a message; `None` for actions without a rule type (acks,
/// unsubscribes, provider replies), which are always allowed.
fn rule_request<'a>(request: &PermissionRequest<'a>) -> Option<Request<'a>> {
    Request::for_message(request.topic as u32, request.action as u32, request.name).map(|rule| {
        rule.with_user(request.user_id, request.server_data)
            .with_now(now_ms())
    })
}

impl Permission for ValvePermission {
    fn can_perform_action(&self, request: &PermissionRequest<'_>) -> Answer<bool> {
        let Some(rule) = rule_request(request) else {
            return Answer::Ready(Ok(true));
        };
        let valve = self.valve.read().clone();
        // The payload's kind matters for what is needed (a patch's `data` is the stored
        // record with the patch applied), its value does not.
        let needs = valve.needs(&rule.with_payload(payload(request, &Ok(None))));
        if !needs.current_record && !needs.cross_references {
            let parsed = if needs.data {
                parse(request.data)
            } else {
                Ok(None)
            };
            let decision = valve.check(
                &rule.with_payload(payload(request, &parsed)),
                &valve::NoRecords,
            );
            return Answer::Ready(verdict(decision, request.name));
        }
        // Records must be loaded first: own everything the evaluation borrows.
        let records = self.records.clone();
        let owned = OwnedRequest::of(request);
        Answer::Pending(Box::pin(async move {
            let request = owned.borrowed();
            let parsed = parse(request.data);
            let rule = rule_request(&request)
                .expect("mapped before")
                .with_payload(payload(&request, &parsed));
            let mut evaluation = valve.start(&rule);
            let mut loaded: HashMap<String, Option<Json>> = HashMap::new();
            loop {
                match evaluation.pass(&loaded) {
                    Decision::NeedRecords(names) => {
                        for name in names {
                            let record = load(&records, &name).await?;
                            loaded.insert(name, record);
                        }
                    }
                    decision => return verdict(decision, request.name),
                }
            }
        }))
    }
}

fn parse(data: Option<&str>) -> Result<Option<Json>, String> {
    data.map(serde_json::from_str)
        .transpose()
        .map_err(|e| e.to_string())
}

/// A rule that throws is a permission error (server.md §3.7), answered
/// MESSAGE_PERMISSION_ERROR and logged with the rule.
fn verdict(decision: Decision, name: &str) -> Result<bool, String> {
    match decision {
        Decision::Allow => Ok(true),
        Decision::Deny => Ok(false),
        Decision::Error(error) => Err(format!("permission rule for {name} failed: {error}")),
        Decision::NeedRecords(_) => Err("records were needed but none can be loaded here".into()),
    }
}

/// Reads a record as the record handler does (no copy into the cache: that is the record
/// queue's job); `None` when it does not exist. Stored text that is not JSON is an error.
async fn load(records: &Store, name: &str) -> Result<Option<Json>, String> {
    let Some(stored) = records
        .lookup(name, false)
        .await
        .map_err(|error| format!("reading {name}: {error}"))?
    else {
        return Ok(None);
    };
    serde_json::from_str(&stored.data)
        .map(Some)
        .map_err(|error| format!("stored data of {name} is not JSON: {error}"))
}

/// An owned copy of a permission request, for evaluations that wait on record loads.
struct OwnedRequest {
    /// The connection's user id.
    user_id: String,
    /// The user's server data.
    server_data: Option<Json>,
    /// Protocol topic.
    topic: Topic,
    /// Protocol action.
    action: i32,
    /// The subject.
    name: String,
    /// The message data as text.
    data: Option<String>,
    /// The record path of a patch.
    path: Option<String>,
}

impl OwnedRequest {
    fn of(request: &PermissionRequest<'_>) -> Self {
        OwnedRequest {
            user_id: request.user_id.to_owned(),
            server_data: request.server_data.cloned(),
            topic: request.topic,
            action: request.action,
            name: request.name.to_owned(),
            data: request.data.map(str::to_owned),
            path: request.path.map(str::to_owned),
        }
    }

    fn borrowed(&self) -> PermissionRequest<'_> {
        PermissionRequest {
            user_id: &self.user_id,
            server_data: self.server_data.as_ref(),
            topic: self.topic,
            action: self.action,
            name: &self.name,
            data: self.data.as_deref(),
            path: self.path.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::services::{
        RecordStore,
        builtin::{MemoryCache, NoopStorage},
    };

    fn service(record_rules: Json) -> ValvePermission {
        let cache = Arc::new(MemoryCache::default());
        assert!(matches!(
            cache.set("item/1", 1, Arc::from(r#"{"price":5}"#)),
            Answer::Ready(Ok(()))
        ));
        let document = json!({
            "record": record_rules,
            "event": {"*": {"publish": true, "subscribe": true, "listen": true}},
            "rpc": {"*": {"provide": true, "request": true}},
            "presence": {"*": {"allow": true}},
        });
        let records = Store::new(
            &crate::config::Config::default().record,
            cache,
            Arc::new(NoopStorage),
        );
        ValvePermission::new(&json!({ "permissions": document }), Arc::new(records)).unwrap()
    }

    fn request<'a>(
        action: RecordAction,
        path: Option<&'a str>,
        data: &'a str,
    ) -> PermissionRequest<'a> {
        PermissionRequest {
            user_id: "u",
            server_data: None,
            topic: Topic::Record,
            action: action as i32,
            name: "item/1",
            data: Some(data),
            path,
        }
    }

    /// Regression: the needs of a rule were worked out before the payload was known, so a
    /// `write` rule using `data` on a PATCH never loaded the record and always failed.
    #[tokio::test]
    async fn patch_rules_see_the_stored_record_with_the_patch_applied() {
        let permission = service(json!({"*": {"write": "data.price >= 0 && data.price !== 5"}}));
        let check = |path, data| {
            permission
                .can_perform_action(&request(RecordAction::Patch, path, data))
                .resolve()
        };
        assert_eq!(check(Some("price"), "7").await, Ok(true));
        assert_eq!(check(Some("price"), "-3").await, Ok(false));
        assert_eq!(
            check(Some("other"), "1").await,
            Ok(false),
            "price stays 5 in the patched record"
        );
    }

    /// Regression: a rule that threw was answered MESSAGE_DENIED; it is a permission error.
    #[tokio::test]
    async fn a_rule_that_throws_is_an_error_not_a_denial() {
        let permission = service(json!({"*": {"write": "user.data.role === 'admin'"}}));
        let answer = permission
            .can_perform_action(&request(RecordAction::Update, None, "{}"))
            .resolve()
            .await;
        assert!(
            answer
                .as_ref()
                .is_err_and(|e| e.contains("Cannot read properties of null")),
            "{answer:?}"
        );
    }
}
