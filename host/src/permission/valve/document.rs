//! The permissions document: an order-preserving tree, its validation
//! (spec §3.2 / §3.4, in the reference's order) and compilation (§3.5).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::parser::{Availability, ParsedRule, compile_rule};
use super::path::{PathPattern, parse_path};
use super::value::number_to_string;
use super::{Problem, RuleTopic, RuleType};

/// A document node. Maps keep document order (serde_json's `Map` does not,
/// unless its `preserve_order` feature is on), because on equal pattern
/// length the pattern defined later wins.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys are `None` when they are not scalars (YAML complex keys).
    Map(Vec<(Option<String>, Node)>),
}

impl Node {
    /// JavaScript's `typeof`-style name, for error messages.
    fn type_name(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "boolean",
            Node::Num(_) => "number",
            Node::Str(_) => "string",
            Node::Seq(_) => "array",
            Node::Map(_) => "object",
        }
    }

    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| k.as_deref() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// A scalar's string form as a JavaScript object key.
    fn key_string(&self) -> Option<String> {
        match self {
            Node::Null => Some("null".to_owned()),
            Node::Bool(b) => Some(b.to_string()),
            Node::Num(n) => Some(number_to_string(*n)),
            Node::Str(s) => Some(s.clone()),
            Node::Seq(_) | Node::Map(_) => None,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON/YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Num(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Num(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Num(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<Node>()? {
            out.push(v);
        }
        Ok(Node::Seq(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut out: Vec<(Option<String>, Node)> = Vec::new();
        while let Some((k, v)) = map.next_entry::<Node, Node>()? {
            let key = k.key_string();
            // A repeated key keeps its first position and its last value,
            // like a JavaScript object.
            if let Some(slot) = key
                .as_ref()
                .and_then(|key| out.iter_mut().find(|(k, _)| k.as_ref() == Some(key)))
            {
                slot.1 = v;
            } else {
                out.push((key, v));
            }
        }
        Ok(Node::Map(out))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _data: A) -> Result<Node, A::Error> {
        Err(de::Error::custom("YAML tags are not supported"))
    }
}

/// One compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    /// The rule as written (`true`/`false` for boolean rules).
    pub(crate) source: Box<str>,
    pub(crate) body: Body,
}

#[derive(Debug)]
pub(crate) enum Body {
    Const(bool),
    Expr(ParsedRule),
}

/// A pattern that defines the rule type of a candidate list.
#[derive(Debug)]
pub(crate) struct Candidate {
    pub(crate) path: Box<str>,
    pub(crate) pattern: PathPattern,
    pub(crate) rule: u32,
}

/// The compiled document.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) rules: Vec<Rule>,
    /// Per (section, rule type) slot: the candidate patterns in selection
    /// order (longest pattern first; on equal length the later one first).
    pub(crate) candidates: Vec<Vec<Candidate>>,
}

const SECTIONS: [&str; 4] = ["record", "event", "rpc", "presence"];

fn problem(reason: String) -> Problem {
    Problem {
        section: None,
        path: None,
        rule_type: None,
        reason,
    }
}

fn map_entries(node: &Node) -> &[(Option<String>, Node)] {
    match node {
        Node::Map(entries) => entries,
        _ => &[],
    }
}

/// Validates and compiles the document. Problems are reported in the
/// reference's check order (so the first one is the reference's reason);
/// within a check, every offending place is listed.
pub(crate) fn compile(doc: &Node) -> Result<Compiled, Vec<Problem>> {
    let mut problems = Vec::new();
    let Node::Map(top) = doc else {
        return Err(vec![problem(format!(
            "config should be an object literal, but was of type {}",
            doc.type_name()
        ))]);
    };
    for s in SECTIONS {
        if doc.get(s).is_none() {
            problems.push(problem(format!("missing configuration section \"{s}\"")));
        }
    }
    for (k, _) in top {
        let k = k.as_deref().unwrap_or("[object Object]");
        if !SECTIONS.contains(&k) {
            problems.push(problem(format!("unexpected configuration section \"{k}\"")));
        }
    }
    let mut sections = Vec::new();
    for s in SECTIONS {
        if let Some(node) = doc.get(s) {
            if map_entries(node).is_empty() {
                problems.push(problem(format!("empty section \"{s}\"")));
            } else {
                sections.push((s, node));
            }
        }
    }
    let mut patterns: Vec<Vec<Option<PathPattern>>> = Vec::new();
    for (s, node) in &sections {
        let mut list = Vec::new();
        for (path, _) in map_entries(node) {
            let parsed = match path {
                None => Err("path must be a string".to_owned()),
                Some(p) => parse_path(p),
            };
            match parsed {
                Ok(p) => list.push(Some(p)),
                Err(e) => {
                    let p = path.as_deref().unwrap_or("[object Object]");
                    problems.push(problem(format!("{e} for path {p} in section {s}")));
                    list.push(None);
                }
            }
        }
        patterns.push(list);
    }
    for (s, node) in &sections {
        if node.get("*").is_none() {
            problems.push(problem(format!("missing root entry \"*\" for section {s}")));
        }
    }
    for (s, node) in &sections {
        let topic = RuleTopic::parse(s).unwrap_or(RuleTopic::Record);
        for (path, rules) in map_entries(node) {
            let p = path.as_deref().unwrap_or("[object Object]");
            match rules {
                Node::Map(entries) => {
                    for (t, _) in entries {
                        let t = t.as_deref().unwrap_or("[object Object]");
                        if RuleType::parse(t).is_none_or(|rt| !topic.rule_types().contains(&rt)) {
                            problems.push(problem(format!("unknown rule type {t} in section {s}")));
                        }
                    }
                }
                other => problems.push(Problem {
                    section: Some((*s).to_owned()),
                    path: Some(p.to_owned()),
                    rule_type: None,
                    reason: format!(
                        "the rules of a path must be an object mapping rule types to rules, but was of type {}",
                        other.type_name()
                    ),
                }),
            }
        }
    }
    // Rule-level validation and compilation (of the well-formed parts; any
    // problem above stays first, as the reference reports it first).
    let mut rules = Vec::new();
    let mut candidates: Vec<Vec<(usize, Candidate)>> =
        (0..super::SLOT_COUNT).map(|_| Vec::new()).collect();
    for ((s, node), section_patterns) in sections.iter().zip(patterns) {
        let topic = RuleTopic::parse(s).unwrap_or(RuleTopic::Record);
        for ((path, rule_map), pattern) in map_entries(node).iter().zip(section_patterns) {
            let path = path.as_deref().unwrap_or_default();
            let Some(pattern) = pattern else { continue };
            for (t, rule) in map_entries(rule_map) {
                let Some(rt) = t
                    .as_deref()
                    .and_then(RuleType::parse)
                    .filter(|rt| topic.rule_types().contains(rt))
                else {
                    continue;
                };
                let located = |reason: String| Problem {
                    section: Some((*s).to_owned()),
                    path: Some(path.to_owned()),
                    rule_type: Some(rt.as_str().to_owned()),
                    reason,
                };
                let compiled = match rule {
                    Node::Bool(b) => Ok(Rule {
                        source: b.to_string().into(),
                        body: Body::Const(*b),
                    }),
                    Node::Str(src) => {
                        let avail = Availability {
                            data: rt.supports_data(topic),
                            old_data: rt.supports_old_data(topic),
                            rule_type: rt.as_str(),
                            section: topic.as_str(),
                        };
                        compile_rule(src, &pattern.vars, avail).map(|parsed| Rule {
                            source: src.as_str().into(),
                            body: Body::Expr(parsed),
                        })
                    }
                    _ => Err("rule must be a string".to_owned()),
                };
                match compiled {
                    Ok(rule) => {
                        let Some(slot) = super::slot(topic, rt) else {
                            continue;
                        };
                        candidates[slot].push((
                            path.encode_utf16().count(),
                            Candidate {
                                path: path.into(),
                                pattern: pattern.clone(),
                                rule: rules.len() as u32,
                            },
                        ));
                        rules.push(rule);
                    }
                    Err(reason) => problems.push(located(reason)),
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let candidates = candidates
        .into_iter()
        .map(|list| {
            // Longest pattern first; on equal length the later definition
            // first. (Stable sort on the reversed document order.)
            let mut list: Vec<_> = list.into_iter().rev().collect();
            list.sort_by_key(|c| std::cmp::Reverse(c.0));
            list.into_iter().map(|(_, c)| c).collect()
        })
        .collect();
    Ok(Compiled { rules, candidates })
}
