//! Applying record patches to a copy of the current value, to compute the
//! `data` a `write` rule sees for PATCH / PATCH_MULTI (spec §3.6, path syntax
//! protocol §5.12).

use serde_json::{Map, Value as Json};

use super::value::{array_index, number_index, number_to_string, string_to_number};

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Key(String),
    /// A bracketed index: `Number(text)`, so non-numbers are NaN.
    Index(f64),
}

const FORBIDDEN: &[&str] = &["__proto__", "constructor", "prototype"];

/// Largest gap a patch may open in an array: the record handler's limit, so
/// that a permission check never builds more than the write itself could.
const MAX_ARRAY_GAP: usize = crate::record::json_path::MAX_INDEX_GAP;

fn tokenize(path: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    for part in path.split('.') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let mut pieces = part.split(['[', ']']);
        if let Some(first) = pieces.next()
            && !first.is_empty()
        {
            tokens.push(Token::Key(first.to_owned()));
        }
        for piece in pieces.filter(|p| !p.is_empty()) {
            tokens.push(Token::Index(string_to_number(piece)));
        }
    }
    if tokens
        .iter()
        .any(|t| matches!(t, Token::Key(k) if FORBIDDEN.contains(&k.as_str())))
    {
        return Err(format!("invalid path {path}"));
    }
    Ok(tokens)
}

/// Sets (or with `None` deletes) the value at `path` inside `root`.
///
/// An existing `null` on the way is replaced by a new container (what the
/// client does; the reference server would fail there). A path of `""`
/// replaces the whole value; a path of only dots/spaces addresses the key
/// `"undefined"`, as in the reference.
pub(crate) fn set_path(root: &mut Json, path: &str, value: Option<&Json>) -> Result<(), String> {
    if path.is_empty() {
        *root = value.cloned().unwrap_or(Json::Null);
        return Ok(());
    }
    let mut tokens = tokenize(path)?;
    if tokens.is_empty() {
        tokens.push(Token::Key("undefined".to_owned()));
    }
    let (last, walk) = tokens
        .split_last()
        .unwrap_or((&Token::Index(f64::NAN), &[]));
    let mut node = root;
    for (i, tok) in walk.iter().enumerate() {
        let next_is_index = matches!(tokens[i + 1], Token::Index(_));
        let Some(child) = child_mut(node, tok)? else {
            // A non-index key on an array: JSON cannot hold it; nothing changes.
            return Ok(());
        };
        if !(child.is_object() || child.is_array()) {
            *child = if next_is_index {
                Json::Array(Vec::new())
            } else {
                Json::Object(Map::new())
            };
        }
        node = child;
    }
    match value {
        Some(v) => {
            if let Some(slot) = child_mut(node, last)? {
                *slot = v.clone();
            }
        }
        None => match node {
            Json::Object(map) => {
                map.remove(&key_string(last));
            }
            Json::Array(items) => {
                // `delete arr[i]` leaves a hole, which serialises as null.
                if let Some(i) = array_slot(last)
                    && let Some(slot) = items.get_mut(i)
                {
                    *slot = Json::Null;
                }
            }
            _ => {}
        },
    }
    Ok(())
}

fn key_string(t: &Token) -> String {
    match t {
        Token::Key(k) => k.clone(),
        Token::Index(n) => number_to_string(*n),
    }
}

fn array_slot(t: &Token) -> Option<usize> {
    match t {
        Token::Key(k) => array_index(k),
        Token::Index(n) => number_index(*n),
    }
}

/// The slot for `tok` in `node` (created as `null` when missing). A
/// primitive `node` is turned into an object first.
fn child_mut<'j>(node: &'j mut Json, tok: &Token) -> Result<Option<&'j mut Json>, String> {
    if !(node.is_object() || node.is_array()) {
        *node = Json::Object(Map::new());
    }
    match node {
        Json::Array(items) => {
            let Some(i) = array_slot(tok) else {
                return Ok(None);
            };
            if i >= items.len() {
                if i - items.len() > MAX_ARRAY_GAP {
                    return Err(format!("array index {i} is out of range"));
                }
                items.resize(i + 1, Json::Null);
            }
            Ok(items.get_mut(i))
        }
        Json::Object(map) => Ok(Some(map.entry(key_string(tok)).or_insert(Json::Null))),
        _ => Ok(None),
    }
}

/// Applies the operations of a PATCH_MULTI payload (`[{path, data?}, …]`)
/// in order. `None` if the payload is malformed.
pub(crate) fn apply_multi(root: &mut Json, ops: &Json) -> Option<Result<(), String>> {
    let ops = ops.as_array()?;
    for op in ops {
        let obj = op.as_object()?;
        let path = obj.get("path")?.as_str()?;
        if let Err(e) = set_path(root, path, obj.get("data")) {
            return Some(Err(e));
        }
    }
    Some(Ok(()))
}
