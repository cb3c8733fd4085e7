//! Paths into record data (protocol.md §5.12): `a.b[0].c`.
//!
//! Tokenising and setting follow the JS client's `json-path` exactly, because every client
//! applies a broadcast PATCH with its own copy of that code: the server must end up with the
//! same data or the next full read would disagree with what subscribers hold. Where the client
//! does something no JSON document can represent, the path is refused instead (see
//! [`PathError`]), and the writer gets INVALID_MESSAGE_DATA.

use serde_json::{Map, Value};

/// Segments the reference server (10.0.5+) refuses, as they reach JS prototypes.
const FORBIDDEN: [&str; 3] = ["__proto__", "constructor", "prototype"];

/// How far past an array's end a path may index. The client fills the gap with `null`s; an
/// unbounded index would let one message allocate arbitrary memory.
pub const MAX_INDEX_GAP: usize = 1024;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// `name` or the part before a `[`: an object key.
    Key(String),
    /// `[n]`: an array index (or the key `"n"` when the container is an object).
    Index(usize),
}

/// A parsed, valid path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// The steps from the record's root; never empty.
    tokens: Vec<Token>,
}

/// Why a path cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Only dots and spaces: the client would write a key named "undefined" (§5.12).
    #[error("the path addresses nothing")]
    Empty,
    #[error("the path segment {0:?} is not allowed")]
    Forbidden(String),
    /// Not a decimal index (the client would turn it into the key "NaN").
    #[error("{0:?} is not an array index")]
    BadIndex(String),
    #[error("index {0} is too far past the end of the array")]
    IndexTooFar(usize),
    /// A named key on an array: JS keeps it as a property that JSON drops.
    #[error("key {0:?} cannot be set on an array")]
    KeyOnArray(String),
    /// The record's data is neither an object nor an array.
    #[error("the record data is not an object or an array")]
    NotAContainer,
}

impl Path {
    /// Splits on `.`, trims each part, skips empty parts, and splits `[`/`]` off as indices;
    /// the text before the first bracket is always a key, even when empty (`[0]` → `""`, `0`).
    pub fn parse(text: &str) -> Result<Path, PathError> {
        let mut tokens = Vec::new();
        for part in text
            .split('.')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            let mut pieces = part.split(['[', ']']);
            let key = pieces.next().unwrap_or_default();
            if FORBIDDEN.contains(&key) {
                return Err(PathError::Forbidden(key.to_owned()));
            }
            tokens.push(Token::Key(key.to_owned()));
            for piece in pieces.filter(|piece| !piece.is_empty()) {
                let index = piece.trim();
                if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(PathError::BadIndex(piece.to_owned()));
                }
                let index = index
                    .parse()
                    .map_err(|_| PathError::IndexTooFar(usize::MAX))?;
                tokens.push(Token::Index(index));
            }
        }
        if tokens.is_empty() {
            return Err(PathError::Empty);
        }
        Ok(Path { tokens })
    }

    /// Sets the value at the path, or erases it when `value` is `None`, the way the client's
    /// `setValue` does: existing objects and arrays are entered; anything else on the way
    /// (missing, `null`, a scalar) is replaced by a new container — an array of `null`s up to
    /// the next index if the next step is an index, else an object. That happens on erase too.
    /// Erasing an array element leaves `null` (JS `delete` makes a hole).
    ///
    /// On error `root` may already hold new empty containers: callers discard it.
    pub fn apply(&self, root: &mut Value, value: Option<Value>) -> Result<(), PathError> {
        if !(root.is_object() || root.is_array()) {
            return Err(PathError::NotAContainer);
        }
        let (last, steps) = self.tokens.split_last().expect("a parsed path has a token");
        let mut node = root;
        for (at, token) in steps.iter().enumerate() {
            let child = slot(node, token)?;
            if !(child.is_object() || child.is_array()) {
                *child = match &self.tokens[at + 1] {
                    Token::Index(length) => {
                        Value::Array(vec![Value::Null; within_gap(0, *length)?])
                    }
                    Token::Key(_) => Value::Object(Map::new()),
                };
            }
            node = child;
        }
        match value {
            Some(value) => *slot(node, last)? = value,
            None => erase(node, last)?,
        }
        Ok(())
    }
}

/// The child `token` names in the container `node`, created as `null` when missing (arrays are
/// padded with `null`s up to it).
fn slot<'a>(node: &'a mut Value, token: &Token) -> Result<&'a mut Value, PathError> {
    match node {
        Value::Object(map) => Ok(map.entry(object_key(token)).or_insert(Value::Null)),
        Value::Array(items) => {
            let index = array_index(token)?;
            if index >= items.len() {
                items.resize(within_gap(items.len(), index)? + 1, Value::Null);
            }
            Ok(&mut items[index])
        }
        _ => Err(PathError::NotAContainer),
    }
}

/// JS `delete node[token]`.
fn erase(node: &mut Value, token: &Token) -> Result<(), PathError> {
    match node {
        Value::Object(map) => {
            // Shift, not swap: the other keys keep their order, as in JS.
            map.shift_remove(&object_key(token));
        }
        Value::Array(items) => {
            if let Some(item) = items.get_mut(array_index(token)?) {
                *item = Value::Null;
            }
        }
        _ => return Err(PathError::NotAContainer),
    }
    Ok(())
}

/// An index used on an object is the key of its decimal form, as in JS.
fn object_key(token: &Token) -> String {
    match token {
        Token::Key(key) => key.clone(),
        Token::Index(index) => index.to_string(),
    }
}

/// A key used on an array is an index only in its canonical decimal form (`"2"`, not `"02"`).
fn array_index(token: &Token) -> Result<usize, PathError> {
    match token {
        Token::Index(index) => Ok(*index),
        Token::Key(key) => key
            .parse::<usize>()
            .ok()
            .filter(|index| index.to_string() == *key)
            .ok_or_else(|| PathError::KeyOnArray(key.clone())),
    }
}

/// `index` if it is at most [`MAX_INDEX_GAP`] past `length`.
fn within_gap(length: usize, index: usize) -> Result<usize, PathError> {
    if index > length.saturating_add(MAX_INDEX_GAP) {
        return Err(PathError::IndexTooFar(index));
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn set(mut data: Value, path: &str, value: Value) -> Value {
        Path::parse(path)
            .unwrap()
            .apply(&mut data, Some(value))
            .unwrap();
        data
    }

    fn erased(mut data: Value, path: &str) -> Value {
        Path::parse(path).unwrap().apply(&mut data, None).unwrap();
        data
    }

    #[test]
    fn tokenises_like_the_client() {
        let key = |k: &str| Token::Key(k.into());
        let tokens = |text| Path::parse(text).unwrap().tokens;
        assert_eq!(
            tokens("a.b[0].c"),
            [key("a"), key("b"), Token::Index(0), key("c")]
        );
        assert_eq!(
            tokens("x[1][2]"),
            [key("x"), Token::Index(1), Token::Index(2)]
        );
        assert_eq!(tokens(" a . .b "), [key("a"), key("b")]);
        assert_eq!(tokens("[0]"), [key(""), Token::Index(0)]);
        assert_eq!(tokens("a[ 3 ]"), [key("a"), Token::Index(3)]);
        assert_eq!(tokens("a[01]"), [key("a"), Token::Index(1)]);
    }

    #[test]
    fn refuses_paths_the_client_cannot_round_trip() {
        assert_eq!(Path::parse(""), Err(PathError::Empty));
        assert_eq!(Path::parse(" . . "), Err(PathError::Empty));
        assert_eq!(
            Path::parse("a.__proto__.b"),
            Err(PathError::Forbidden("__proto__".into()))
        );
        assert_eq!(
            Path::parse("constructor"),
            Err(PathError::Forbidden("constructor".into()))
        );
        assert_eq!(
            Path::parse("a.prototype[0]"),
            Err(PathError::Forbidden("prototype".into()))
        );
        assert_eq!(Path::parse("a[x]"), Err(PathError::BadIndex("x".into())));
        assert_eq!(Path::parse("a[-1]"), Err(PathError::BadIndex("-1".into())));
        assert!(matches!(
            Path::parse("a[99999999999999999999999]"),
            Err(PathError::IndexTooFar(_))
        ));
    }

    #[test]
    fn sets_existing_and_new_values() {
        assert_eq!(set(json!({"a": 1}), "a", json!(2)), json!({"a": 2}));
        assert_eq!(
            set(json!({"a": 1}), "b", json!("x")),
            json!({"a": 1, "b": "x"})
        );
        assert_eq!(
            set(json!({"b": {"c": [1, 2]}}), "b.c[1]", json!(5)),
            json!({"b": {"c": [1, 5]}})
        );
        assert_eq!(
            set(json!({}), "a.b.c", json!(true)),
            json!({"a": {"b": {"c": true}}})
        );
        assert_eq!(
            set(json!({"a": 1}), "a", json!({"deep": [null]})),
            json!({"a": {"deep": [null]}})
        );
    }

    #[test]
    fn new_arrays_are_padded_with_nulls() {
        assert_eq!(
            set(json!({}), "list[2]", json!("c")),
            json!({"list": [null, null, "c"]})
        );
        assert_eq!(
            set(json!({"list": ["a"]}), "list[3]", json!("d")),
            json!({"list": ["a", null, null, "d"]})
        );
        assert_eq!(
            set(json!({}), "m[1].k", json!(1)),
            json!({"m": [null, {"k": 1}]})
        );
    }

    #[test]
    fn scalars_and_nulls_on_the_way_are_replaced_like_the_client_does() {
        assert_eq!(
            set(json!({"a": 5}), "a.b", json!(1)),
            json!({"a": {"b": 1}})
        );
        assert_eq!(set(json!({"a": null}), "a[0]", json!(1)), json!({"a": [1]}));
        assert_eq!(
            set(json!({"a": "text"}), "a.b[1]", json!(1)),
            json!({"a": {"b": [null, 1]}})
        );
    }

    #[test]
    fn indices_on_objects_are_keys_and_canonical_keys_on_arrays_are_indices() {
        assert_eq!(
            set(json!({"o": {}}), "o[3]", json!(1)),
            json!({"o": {"3": 1}})
        );
        assert_eq!(
            set(json!({"l": [0, 0]}), "l.1", json!(9)),
            json!({"l": [0, 9]})
        );
        let mut list = json!({"l": []});
        assert_eq!(
            Path::parse("l.x").unwrap().apply(&mut list, Some(json!(1))),
            Err(PathError::KeyOnArray("x".into()))
        );
        assert_eq!(
            Path::parse("l.01")
                .unwrap()
                .apply(&mut list, Some(json!(1))),
            Err(PathError::KeyOnArray("01".into()))
        );
    }

    #[test]
    fn lists_are_arrays_at_the_root() {
        assert_eq!(set(json!(["a", "b"]), "1", json!("B")), json!(["a", "B"]));
        assert_eq!(erased(json!(["a", "b"]), "0"), json!([null, "b"]));
    }

    #[test]
    fn erase_removes_keys_in_place_and_keeps_order() {
        let data = json!({"a": 1, "b": 2, "c": 3});
        assert_eq!(erased(data, "b").to_string(), r#"{"a":1,"c":3}"#);
        assert_eq!(
            erased(json!({"a": {"b": 1, "c": 2}}), "a.b"),
            json!({"a": {"c": 2}})
        );
        assert_eq!(erased(json!({"a": 1}), "missing"), json!({"a": 1}));
        assert_eq!(erased(json!({"l": [1, 2]}), "l[5]"), json!({"l": [1, 2]}));
    }

    #[test]
    fn erase_creates_missing_containers_like_the_client_does() {
        assert_eq!(erased(json!({}), "a.b.c"), json!({"a": {"b": {}}}));
    }

    #[test]
    fn indices_far_past_the_end_are_refused() {
        let mut data = json!({"l": [1]});
        let far = 1 + MAX_INDEX_GAP + 1;
        let path = Path::parse(&format!("l[{far}]")).unwrap();
        assert_eq!(
            path.apply(&mut data, Some(json!(0))),
            Err(PathError::IndexTooFar(far))
        );
        let fresh = Path::parse(&format!("n[{}].x", MAX_INDEX_GAP + 1)).unwrap();
        assert!(fresh.apply(&mut json!({}), Some(json!(0))).is_err());
        let edge = Path::parse(&format!("l[{}]", 1 + MAX_INDEX_GAP)).unwrap();
        assert!(edge.apply(&mut data, Some(json!(0))).is_ok());
    }

    #[test]
    fn scalar_roots_are_refused() {
        let path = Path::parse("a").unwrap();
        assert_eq!(
            path.apply(&mut json!(5), Some(json!(1))),
            Err(PathError::NotAContainer)
        );
    }
}
