//! Valve, deepstream's permission language (server spec §3), implemented
//! natively: a tokenizer and Pratt parser for the JavaScript expression
//! subset rules are written in, compiled once into an AST, and an evaluator
//! with JavaScript semantics.
//!
//! The engine is pure and synchronous. It never loads anything: when a rule
//! needs record data it has not been given (`oldData`, the current value a
//! PATCH applies to, or a cross-reference `_('name')`), a pass answers
//! [`Decision::NeedRecords`]; the caller loads those records and runs the
//! next pass with them supplied through [`RecordLookup`]:
//!
//! ```ignore
//! let mut check = valve.start(&request);
//! let mut loaded: HashMap<String, Option<serde_json::Value>> = HashMap::new();
//! let decision = loop {
//!     match check.pass(&loaded) {
//!         Decision::NeedRecords(names) => {
//!             for name in names {
//!                 loaded.insert(name.clone(), load_record(&name).await?); // None = does not exist
//!             }
//!         }
//!         done => break done,
//!     }
//! };
//! ```
//!
//! Decisions taken where the spec leaves room (see also the module docs of
//! `path`, `cache` and `regex`):
//! * The rule result is coerced to boolean: truthy allows, falsy denies
//!   (spec §2.4.2 quirk; recommended behaviour).
//! * The textual checks of validation rules 2–4 (`new`, user functions,
//!   call sites) run on tokens, so `'new'` or `'function'` inside a string
//!   literal, a property named `new`, or `typeof (x)` are accepted.
//! * Identifiers that are not rule variables (`user`, `data`, `oldData`,
//!   `now`, `action`, `name`, `_`, the pattern's `$vars`, `undefined`,
//!   `NaN`, `Infinity`) are rejected when the document is compiled
//!   (`ReferenceError: x is not defined`) instead of failing every time the
//!   rule runs; so are constructs outside the expression subset (object
//!   literals, assignment, `delete`, spread, tagged templates).
//! * Path patterns escape regex metacharacters (only `*` and `$var` are
//!   special).
//! * `maxRuleIterations`: a pass that still needs records when it is the
//!   last allowed pass answers `Exceeded max iteration count` at once instead
//!   of having the caller load records for a pass that will be refused.

mod cache;
mod document;
mod eval;
mod json_path;
mod lexer;
mod parser;
mod path;
mod regex;
mod value;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;

use serde::Deserialize as _;
use serde_json::Value as Json;

use self::cache::SelectionCache;
use self::document::{Body, Candidate, Compiled, Node};
use self::eval::{Scope, Thrown};
use self::path::Captures;
use self::value::Value;

/// The user id of anonymous users of open authentication; `user.isAuthenticated`
/// is `user.id !== "open"`.
pub const OPEN_USER_ID: &str = "open";

/// The user id when the authentication result had none.
pub const MISSING_USER_ID: &str = "OPEN";

/// The name matched for messages without one (presence QUERY_ALL /
/// SUBSCRIBE_ALL), as in the reference.
pub const NO_NAME: &str = "undefined";

/// The error when a rule needs more passes than `maxRuleIterations`.
pub const EXCEEDED_ITERATIONS: &str = "Exceeded max iteration count";

/// A section of the permissions document (a message topic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleTopic {
    Record,
    Event,
    Rpc,
    Presence,
}

impl RuleTopic {
    pub const ALL: [RuleTopic; 4] = [
        RuleTopic::Record,
        RuleTopic::Event,
        RuleTopic::Rpc,
        RuleTopic::Presence,
    ];

    /// The section name (`record`, `event`, `rpc`, `presence`).
    pub fn as_str(self) -> &'static str {
        match self {
            RuleTopic::Record => "record",
            RuleTopic::Event => "event",
            RuleTopic::Rpc => "rpc",
            RuleTopic::Presence => "presence",
        }
    }

    pub fn parse(s: &str) -> Option<RuleTopic> {
        RuleTopic::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// From the protocol's numeric `TOPIC` (EVENT 4, RECORD 5, RPC 6, PRESENCE 7).
    pub fn from_topic_code(code: u32) -> Option<RuleTopic> {
        Some(match code {
            4 => RuleTopic::Event,
            5 => RuleTopic::Record,
            6 => RuleTopic::Rpc,
            7 => RuleTopic::Presence,
            _ => return None,
        })
    }

    /// The rule types allowed in this section.
    pub fn rule_types(self) -> &'static [RuleType] {
        match self {
            RuleTopic::Record => &[
                RuleType::Read,
                RuleType::Create,
                RuleType::Write,
                RuleType::Delete,
                RuleType::Listen,
                RuleType::Notify,
            ],
            RuleTopic::Event => &[RuleType::Publish, RuleType::Subscribe, RuleType::Listen],
            RuleTopic::Rpc => &[RuleType::Provide, RuleType::Request],
            RuleTopic::Presence => &[RuleType::Allow],
        }
    }
}

/// A rule type (spec §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleType {
    Read,
    Create,
    Write,
    Delete,
    Listen,
    Notify,
    Publish,
    Subscribe,
    Provide,
    Request,
    Allow,
}

impl RuleType {
    pub const ALL: [RuleType; 11] = [
        RuleType::Read,
        RuleType::Create,
        RuleType::Write,
        RuleType::Delete,
        RuleType::Listen,
        RuleType::Notify,
        RuleType::Publish,
        RuleType::Subscribe,
        RuleType::Provide,
        RuleType::Request,
        RuleType::Allow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleType::Read => "read",
            RuleType::Create => "create",
            RuleType::Write => "write",
            RuleType::Delete => "delete",
            RuleType::Listen => "listen",
            RuleType::Notify => "notify",
            RuleType::Publish => "publish",
            RuleType::Subscribe => "subscribe",
            RuleType::Provide => "provide",
            RuleType::Request => "request",
            RuleType::Allow => "allow",
        }
    }

    pub fn parse(s: &str) -> Option<RuleType> {
        RuleType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether rules of this type in `topic` may use `data` (spec §3.2 table).
    pub fn supports_data(self, topic: RuleTopic) -> bool {
        matches!(
            (topic, self),
            (RuleTopic::Record, RuleType::Write)
                | (RuleTopic::Event, RuleType::Publish | RuleType::Subscribe)
                | (RuleTopic::Rpc, RuleType::Request)
        )
    }

    /// Whether rules of this type in `topic` may use `oldData`.
    pub fn supports_old_data(self, topic: RuleTopic) -> bool {
        topic == RuleTopic::Record
            && matches!(self, RuleType::Read | RuleType::Write | RuleType::Delete)
    }
}

/// Which rule governs a message (protocol §3.2), from the numeric topic and
/// action; `None` = the message is not permission-checked (always allowed).
/// Compound record actions (SUBSCRIBECREATEANDREAD, CREATEANDUPDATE,
/// CREATEANDPATCH) are `None` here: the record handler checks their steps
/// as CREATE / READ / UPDATE / PATCH.
pub fn rule_for_action(topic: u32, action: u32) -> Option<(RuleTopic, RuleType)> {
    let t = RuleTopic::from_topic_code(topic)?;
    let r = match (t, action) {
        // RECORD: SUBSCRIBE 25, SUBSCRIBEANDHEAD 21, SUBSCRIBEANDREAD 22, READ 3, HEAD 5
        (RuleTopic::Record, 25 | 21 | 22 | 3 | 5) => RuleType::Read,
        (RuleTopic::Record, 27) => RuleType::Listen,
        (RuleTopic::Record, 15) => RuleType::Create,
        // UPDATE 18, PATCH 19, PATCH_MULTI 35
        (RuleTopic::Record, 18 | 19 | 35) => RuleType::Write,
        (RuleTopic::Record, 2) => RuleType::Notify,
        // DELETE 9, ERASE 20
        (RuleTopic::Record, 9 | 20) => RuleType::Delete,
        (RuleTopic::Event, 3) => RuleType::Subscribe,
        (RuleTopic::Event, 2) => RuleType::Publish,
        (RuleTopic::Event, 5) => RuleType::Listen,
        (RuleTopic::Rpc, 8) => RuleType::Provide,
        (RuleTopic::Rpc, 2) => RuleType::Request,
        // SUBSCRIBE 10, SUBSCRIBE_ALL 12, QUERY 4, QUERY_ALL 2
        (RuleTopic::Presence, 10 | 12 | 4 | 2) => RuleType::Allow,
        _ => return None,
    };
    Some((t, r))
}

/// Number of (section, rule type) combinations.
pub(crate) const SLOT_COUNT: usize = 12;

/// Index of a valid (section, rule type) combination.
pub(crate) fn slot(topic: RuleTopic, rule: RuleType) -> Option<usize> {
    let base = match topic {
        RuleTopic::Record => 0,
        RuleTopic::Event => 6,
        RuleTopic::Rpc => 9,
        RuleTopic::Presence => 11,
    };
    topic
        .rule_types()
        .iter()
        .position(|r| *r == rule)
        .map(|i| base + i)
}

/// Options of the `config` permission plugin (spec §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValveOptions {
    /// `maxRuleIterations` (default 3): maximum evaluation passes of one rule.
    pub max_rule_iterations: u32,
    /// `cacheEvacuationInterval` (default 60000): ms between rule-selection cache purges.
    pub cache_evacuation_interval_ms: u64,
}

impl Default for ValveOptions {
    fn default() -> Self {
        ValveOptions {
            max_rule_iterations: 3,
            cache_evacuation_interval_ms: 60_000,
        }
    }
}

impl ValveOptions {
    /// Reads `maxRuleIterations` and `cacheEvacuationInterval` from the
    /// plugin's `options` object (other keys are ignored; absent ones keep
    /// their defaults).
    pub fn from_config(options: &Json) -> Result<ValveOptions, ValveError> {
        let mut out = ValveOptions::default();
        let number = |key: &str| -> Result<Option<f64>, ValveError> {
            match options.get(key) {
                None | Some(Json::Null) => Ok(None),
                Some(Json::Number(n)) => Ok(n.as_f64()),
                Some(_) => Err(ValveError::single(format!("{key} must be a number"))),
            }
        };
        if let Some(n) = number("maxRuleIterations")? {
            if n < 1.0 {
                return Err(ValveError::single(
                    "Maximum rule iteration has to be at least one".to_owned(),
                ));
            }
            out.max_rule_iterations = n.min(f64::from(u32::MAX)) as u32;
        }
        if let Some(n) = number("cacheEvacuationInterval")? {
            out.cache_evacuation_interval_ms = n.max(0.0) as u64;
        }
        Ok(out)
    }

    fn validate(&self) -> Result<(), ValveError> {
        if self.max_rule_iterations < 1 {
            return Err(ValveError::single(
                "Maximum rule iteration has to be at least one".to_owned(),
            ));
        }
        Ok(())
    }
}

/// One problem found in a permissions document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Section, path pattern and rule type of a rule-level problem.
    pub section: Option<String>,
    pub path: Option<String>,
    pub rule_type: Option<String>,
    /// The spec's reason string (e.g. `rule can't contain the new keyword`).
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.section, &self.path, &self.rule_type) {
            (Some(s), Some(p), Some(t)) => write!(f, "{s}.'{p}'.{t}: {}", self.reason),
            (Some(s), Some(p), None) => write!(f, "{s}.'{p}': {}", self.reason),
            _ => f.write_str(&self.reason),
        }
    }
}

/// An invalid permissions document (or options). Lists every problem, in
/// the reference's check order; `reason()` is the first one's spec string,
/// i.e. what the reference reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValveError {
    problems: Vec<Problem>,
}

impl ValveError {
    fn single(reason: String) -> ValveError {
        ValveError {
            problems: vec![Problem {
                section: None,
                path: None,
                rule_type: None,
                reason,
            }],
        }
    }

    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// The first problem's reason, without location (the reference's message).
    pub fn reason(&self) -> &str {
        self.problems.first().map_or("", |p| &p.reason)
    }
}

/// All problems, located (`record.'chat/$id'.write: <reason>`), joined by `; `.
impl fmt::Display for ValveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValveError {}

/// The message payload a rule sees as `data`.
#[derive(Debug, Clone, Copy, Default)]
pub enum Payload<'a> {
    /// No payload: `data` is `null`.
    #[default]
    None,
    /// The parsed payload (event data, RPC request data, RECORD UPDATE's new value).
    Value(&'a Json),
    /// RECORD PATCH: `data` is the current record value with `value` set at
    /// `path` (`value: None` deletes; ERASE). Needs the current record.
    Patch {
        path: Option<&'a str>,
        value: Option<&'a Json>,
    },
    /// RECORD PATCH_MULTI: `data` is the current value with every
    /// `{path, data}` operation of this array applied in order.
    MultiPatch(&'a Json),
    /// The payload could not be parsed (the parser's error text); a rule
    /// that uses `data` then fails with `error when converting message data <e>`.
    Invalid(&'a str),
}

/// One permission request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub topic: RuleTopic,
    pub rule: RuleType,
    /// The name matched against the path patterns (`message.name`, or each
    /// name of a bulk message; [`NO_NAME`] when there is none).
    pub name: &'a str,
    /// Numeric action of the message (the rule variable `action`).
    pub action: u32,
    /// The connection's user id; `None` = the authentication result had no
    /// id (`user.id` is then `"OPEN"`). Anonymous open-auth users are `"open"`.
    pub user_id: Option<&'a str>,
    /// The connection's `serverData` (`user.data`; `null` when `None`).
    pub user_data: Option<&'a Json>,
    /// What `data` is computed from.
    pub data: Payload<'a>,
    /// Current time in ms since the epoch (`now`; also drives cache purges).
    pub now_ms: u64,
}

impl<'a> Request<'a> {
    /// A request by a user without id or data, no payload, action 0, `now` =
    /// the system clock.
    pub fn new(topic: RuleTopic, rule: RuleType, name: &'a str) -> Request<'a> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Request {
            topic,
            rule,
            name,
            action: 0,
            user_id: None,
            user_data: None,
            data: Payload::None,
            now_ms,
        }
    }

    /// The request for a message with numeric `topic` and `action` (protocol
    /// codes), or `None` if such messages are not permission-checked. Sets
    /// `action`; for messages without a name pass [`NO_NAME`].
    pub fn for_message(topic: u32, action: u32, name: &'a str) -> Option<Request<'a>> {
        let (t, r) = rule_for_action(topic, action)?;
        Some(Request::new(t, r, name).with_action(action))
    }

    pub fn with_user(mut self, id: &'a str, data: Option<&'a Json>) -> Self {
        self.user_id = Some(id);
        self.user_data = data;
        self
    }

    pub fn with_data(mut self, data: &'a Json) -> Self {
        self.data = Payload::Value(data);
        self
    }

    pub fn with_payload(mut self, data: Payload<'a>) -> Self {
        self.data = data;
        self
    }

    pub fn with_action(mut self, action: u32) -> Self {
        self.action = action;
        self
    }

    pub fn with_now(mut self, now_ms: u64) -> Self {
        self.now_ms = now_ms;
        self
    }
}

/// The outcome of an evaluation pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Denied: no rule matches, or the rule's result is falsy.
    Deny,
    /// The rule threw or its data could not be computed (reply
    /// MESSAGE_PERMISSION_ERROR). The text is the error, e.g.
    /// `TypeError: Cannot read properties of null (reading 'owner')`;
    /// [`Evaluation::log_message`] builds the reference's WARN text.
    Error(String),
    /// Load these records (current values, `None` if missing) and run
    /// another pass with them supplied.
    NeedRecords(Vec<String>),
}

/// Records supplied to an evaluation.
pub trait RecordLookup {
    /// `None`: not loaded (yet); `Some(None)`: loaded, the record does not
    /// exist; `Some(Some(v))`: the record's data.
    fn get(&self, name: &str) -> Option<Option<&Json>>;
}

/// No records supplied.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRecords;

impl RecordLookup for NoRecords {
    fn get(&self, _name: &str) -> Option<Option<&Json>> {
        None
    }
}

impl<S: BuildHasher> RecordLookup for HashMap<String, Option<Json>, S> {
    fn get(&self, name: &str) -> Option<Option<&Json>> {
        HashMap::get(self, name).map(Option::as_ref)
    }
}

impl RecordLookup for BTreeMap<String, Option<Json>> {
    fn get(&self, name: &str) -> Option<Option<&Json>> {
        BTreeMap::get(self, name).map(Option::as_ref)
    }
}

impl<T: RecordLookup + ?Sized> RecordLookup for &T {
    fn get(&self, name: &str) -> Option<Option<&Json>> {
        (**self).get(name)
    }
}

/// What the selected rule references, so the caller can load or parse it
/// before the first pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Needs {
    /// A rule was selected (otherwise the request is denied outright).
    pub rule_selected: bool,
    /// The rule uses `data`: the payload must be parsed and supplied.
    pub data: bool,
    /// The current value of the record `name` is needed (`oldData`, or
    /// `data` of a PATCH / PATCH_MULTI).
    pub current_record: bool,
    /// The rule contains `_()` cross-references.
    pub cross_references: bool,
}

/// A compiled permissions document. `Send + Sync`; share it behind an `Arc`.
#[derive(Debug)]
pub struct Valve {
    compiled: Compiled,
    options: ValveOptions,
    cache: SelectionCache,
}

impl Valve {
    /// Compiles a document with default options.
    pub fn compile(doc: &Json) -> Result<Valve, ValveError> {
        Valve::compile_with(doc, ValveOptions::default())
    }

    /// Compiles a document. Map order is serde_json's iteration order (sorted
    /// keys unless its `preserve_order` feature is on); it only matters for
    /// equally long patterns that both match, where the later one wins. Use
    /// [`Valve::from_yaml_str`] or [`Valve::compile_yaml`] to keep document order.
    pub fn compile_with(doc: &Json, options: ValveOptions) -> Result<Valve, ValveError> {
        let node = Node::deserialize(doc).map_err(|e| ValveError::single(e.to_string()))?;
        Valve::build(&node, options)
    }

    /// Parses and compiles a YAML (or JSON) document, keeping document order.
    pub fn from_yaml_str(text: &str) -> Result<Valve, ValveError> {
        Valve::from_yaml_str_with(text, ValveOptions::default())
    }

    pub fn from_yaml_str_with(text: &str, options: ValveOptions) -> Result<Valve, ValveError> {
        let node: Node = serde_yaml::from_str(text)
            .map_err(|e| ValveError::single(format!("invalid permissions file: {e}")))?;
        Valve::build(&node, options)
    }

    /// Compiles an already parsed YAML document, keeping document order.
    pub fn compile_yaml(
        doc: &serde_yaml::Value,
        options: ValveOptions,
    ) -> Result<Valve, ValveError> {
        let node = Node::deserialize(doc.clone()).map_err(|e| ValveError::single(e.to_string()))?;
        Valve::build(&node, options)
    }

    fn build(node: &Node, options: ValveOptions) -> Result<Valve, ValveError> {
        options.validate()?;
        let compiled = document::compile(node).map_err(|problems| ValveError { problems })?;
        Ok(Valve {
            compiled,
            cache: SelectionCache::new(SLOT_COUNT, options.cache_evacuation_interval_ms),
            options,
        })
    }

    /// The default document (conf/permissions.yml): every section has only
    /// `"*"`, with every rule type of the section `true`.
    pub fn default_document() -> Json {
        let mut doc = serde_json::Map::new();
        for topic in RuleTopic::ALL {
            let rules: serde_json::Map<String, Json> = topic
                .rule_types()
                .iter()
                .map(|r| (r.as_str().to_owned(), Json::Bool(true)))
                .collect();
            let mut section = serde_json::Map::new();
            section.insert("*".to_owned(), Json::Object(rules));
            doc.insert(topic.as_str().to_owned(), Json::Object(section));
        }
        Json::Object(doc)
    }

    pub fn options(&self) -> &ValveOptions {
        &self.options
    }

    /// Starts the rule application for one request: selects the rule and
    /// binds the path variables once; then run [`Evaluation::pass`] until it
    /// answers something other than `NeedRecords`.
    pub fn start<'v, 'r>(&'v self, req: &Request<'r>) -> Evaluation<'v, 'r> {
        let selected = self.select(req);
        Evaluation {
            valve: self,
            req: *req,
            selected,
            passes: 0,
        }
    }

    /// One evaluation pass (a fresh [`Evaluation`]). Handy when everything
    /// the rule needs is supplied up front; a caller that loads records
    /// between passes should keep one `Evaluation` so `maxRuleIterations`
    /// is enforced.
    pub fn check(&self, req: &Request<'_>, records: &dyn RecordLookup) -> Decision {
        self.start(req).pass(records)
    }

    /// What the rule selected for `req` references.
    pub fn needs(&self, req: &Request<'_>) -> Needs {
        self.start(req).needs()
    }

    /// Source of the rule selected for `req` (`None` = no rule matches).
    pub fn selected_rule(&self, req: &Request<'_>) -> Option<&str> {
        self.select(req)
            .map(|(c, _)| &*self.compiled.rules[c.rule as usize].source)
    }

    fn select<'r>(&self, req: &Request<'r>) -> Option<(&Candidate, Captures<'r>)> {
        let slot = slot(req.topic, req.rule)?;
        let list = &self.compiled.candidates[slot];
        let name = req.name;
        let try_candidate = |i: usize| {
            let c = &list[i];
            let mut caps = Captures::new(c.pattern.vars.len());
            c.pattern.matches(name, &mut caps).then_some((c, caps))
        };
        if list.len() <= cache::MIN_CANDIDATES {
            return (0..list.len()).find_map(try_candidate);
        }
        if let Some(hit) = self.cache.get(slot, name, req.now_ms) {
            return hit.and_then(|i| try_candidate(i as usize));
        }
        let found = (0..list.len()).find_map(|i| try_candidate(i).map(|r| (i, r)));
        self.cache
            .insert(slot, name, found.as_ref().map(|(i, _)| *i as u32));
        found.map(|(_, r)| r)
    }

    #[cfg(test)]
    pub(crate) fn cache_len(&self) -> usize {
        self.cache.len()
    }

    #[cfg(test)]
    pub(crate) fn candidate_paths(&self, topic: RuleTopic, rule: RuleType) -> Vec<&str> {
        slot(topic, rule).map_or_else(Vec::new, |s| {
            self.compiled.candidates[s]
                .iter()
                .map(|c| &*c.path)
                .collect()
        })
    }
}

/// One rule application (spec §3.6): the selected rule with its bound path
/// variables, and the number of passes run so far.
#[derive(Debug)]
pub struct Evaluation<'v, 'r> {
    valve: &'v Valve,
    req: Request<'r>,
    selected: Option<(&'v Candidate, Captures<'r>)>,
    passes: u32,
}

impl<'v, 'r> Evaluation<'v, 'r> {
    /// What the selected rule references.
    pub fn needs(&self) -> Needs {
        let Some((c, _)) = &self.selected else {
            return Needs::default();
        };
        match &self.valve.compiled.rules[c.rule as usize].body {
            Body::Const(_) => Needs {
                rule_selected: true,
                ..Needs::default()
            },
            Body::Expr(p) => Needs {
                rule_selected: true,
                data: p.uses_data,
                current_record: p.uses_old_data
                    || (p.uses_data
                        && matches!(
                            self.req.data,
                            Payload::Patch { .. } | Payload::MultiPatch(_)
                        )),
                cross_references: p.uses_cross_references,
            },
        }
    }

    /// The selected rule's source text (`None` = no rule matches).
    pub fn rule_source(&self) -> Option<&'v str> {
        let valve = self.valve;
        self.selected
            .as_ref()
            .map(|(c, _)| &*valve.compiled.rules[c.rule as usize].source)
    }

    /// The path pattern whose rule was selected (`None` = no rule matches).
    pub fn matched_path(&self) -> Option<&'v str> {
        self.selected.as_ref().map(|(c, _)| &*c.path)
    }

    /// Passes run so far.
    pub fn passes(&self) -> u32 {
        self.passes
    }

    /// The reference's WARN text for a [`Decision::Error`]:
    /// `error when executing <rule source>\nfor <name>: <error>`.
    pub fn log_message(&self, error: &str) -> String {
        format!(
            "error when executing {}\nfor {}: {error}",
            self.rule_source().unwrap_or(""),
            self.req.name
        )
    }

    /// Runs one evaluation pass with the records supplied so far.
    pub fn pass(&mut self, records: &dyn RecordLookup) -> Decision {
        self.passes += 1;
        let max = self.valve.options.max_rule_iterations;
        if self.passes > max {
            return Decision::Error(EXCEEDED_ITERATIONS.to_owned());
        }
        let Some((candidate, caps)) = &self.selected else {
            return Decision::Deny;
        };
        let parsed = match &self.valve.compiled.rules[candidate.rule as usize].body {
            Body::Const(b) => return if *b { Decision::Allow } else { Decision::Deny },
            Body::Expr(p) => p,
        };
        let req = &self.req;
        let name = req.name;
        let mut needs = Vec::new();

        let is_patch = matches!(req.data, Payload::Patch { .. } | Payload::MultiPatch(_));
        let current = if parsed.uses_old_data || (parsed.uses_data && is_patch) {
            let c = records.get(name);
            if c.is_none() {
                needs.push(name.to_owned());
            }
            c
        } else {
            Some(None)
        };

        // `data` derived from the current record value (PATCH / PATCH_MULTI).
        let mut patched: Option<Json> = None;
        if parsed.uses_data {
            match req.data {
                Payload::Invalid(e) => {
                    return Decision::Error(format!("error when converting message data {e}"));
                }
                Payload::Patch { path: None, .. } => {
                    return Decision::Error(format!("Missing path for record patch {name}"));
                }
                Payload::Patch { .. } | Payload::MultiPatch(_) => match current {
                    None => {} // loading; this pass's result is discarded
                    Some(None) => {
                        return Decision::Error(format!(
                            "Tried to apply patch to non-existant record {name}"
                        ));
                    }
                    Some(Some(base)) => {
                        let mut copy = base.clone();
                        let applied = match req.data {
                            Payload::Patch {
                                path: Some(path),
                                value,
                            } => json_path::set_path(&mut copy, path, value),
                            Payload::MultiPatch(ops) => {
                                match json_path::apply_multi(&mut copy, ops) {
                                    Some(r) => r,
                                    None => {
                                        return Decision::Error(format!(
                                            "Invalid MultiPatch Data {name}"
                                        ));
                                    }
                                }
                            }
                            _ => Ok(()),
                        };
                        if let Err(e) = applied {
                            return Decision::Error(format!(
                                "error when converting message data {e}"
                            ));
                        }
                        patched = Some(copy);
                    }
                },
                Payload::None | Payload::Value(_) => {}
            }
        }
        let data = if !parsed.uses_data {
            Value::Null
        } else if let Some(p) = &patched {
            Value::from_json(p)
        } else if let Payload::Value(v) = req.data {
            Value::from_json(v)
        } else {
            Value::Null
        };
        let old_data = match current {
            Some(Some(v)) if parsed.uses_old_data => Value::from_json(v),
            _ => Value::Null,
        };

        let mut scope = Scope {
            user_id: req.user_id.unwrap_or(MISSING_USER_ID),
            user_data: req.user_data,
            data,
            old_data,
            now: req.now_ms as f64,
            action: f64::from(req.action),
            name,
            vars: caps.as_slice(),
            records,
            needs,
        };
        let result = eval::eval(&parsed.expr, &mut scope);
        let needs = scope.needs;
        if !needs.is_empty() {
            // The result of a pass with pending loads is discarded.
            if self.passes >= max {
                return Decision::Error(EXCEEDED_ITERATIONS.to_owned());
            }
            return Decision::NeedRecords(needs);
        }
        match result {
            Ok(v) => {
                if v.truthy() {
                    Decision::Allow
                } else {
                    Decision::Deny
                }
            }
            Err(Thrown::Error(e)) => Decision::Error(e),
            Err(Thrown::Short) => Decision::Deny,
        }
    }
}
