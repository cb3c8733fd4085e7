//! Runtime values of the rule language and the JavaScript conversions and
//! operators they need (ECMAScript "abstract operations", restricted to the
//! value kinds a rule can produce).
//!
//! Values borrow from the request, the supplied records and the compiled rule
//! wherever possible, so evaluating e.g. `user.id === $userId` never allocates.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::rc::Rc;

use serde_json::Value as Json;

use super::regex::JsRegex;

/// A JavaScript value as seen by a rule.
#[derive(Debug, Clone)]
pub(crate) enum Value<'a> {
    Undefined,
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    /// A JSON array or object (never a JSON scalar: those are converted to the
    /// primitive variants by [`Value::from_json`]). Identity = the reference.
    Json(&'a Json),
    /// An array created by the rule (array literal, `match()` result).
    Array(Rc<Vec<Value<'a>>>),
    /// A regular expression literal of the rule.
    Regex(&'a JsRegex),
    /// The `user` object (`id`, `isAuthenticated`, `data`).
    User,
}

impl<'a> Value<'a> {
    pub(crate) fn from_json(v: &'a Json) -> Value<'a> {
        match v {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Num(n.as_f64().unwrap_or(f64::NAN)),
            Json::String(s) => Value::Str(Cow::Borrowed(s.as_str())),
            Json::Array(_) | Json::Object(_) => Value::Json(v),
        }
    }

    pub(crate) fn str(s: &'a str) -> Value<'a> {
        Value::Str(Cow::Borrowed(s))
    }

    pub(crate) fn is_nullish(&self) -> bool {
        matches!(self, Value::Undefined | Value::Null)
    }

    /// ToBoolean.
    pub(crate) fn truthy(&self) -> bool {
        match self {
            Value::Undefined | Value::Null => false,
            Value::Bool(b) => *b,
            Value::Num(n) => !(n.is_nan() || *n == 0.0),
            Value::Str(s) => !s.is_empty(),
            Value::Json(_) | Value::Array(_) | Value::Regex(_) | Value::User => true,
        }
    }

    /// The `typeof` operator.
    pub(crate) fn type_of(&self) -> &'static str {
        match self {
            Value::Undefined => "undefined",
            Value::Null => "object",
            Value::Bool(_) => "boolean",
            Value::Num(_) => "number",
            Value::Str(_) => "string",
            Value::Json(_) | Value::Array(_) | Value::Regex(_) | Value::User => "object",
        }
    }

    /// ToPrimitive (both hints behave the same for the objects a rule can
    /// see: arrays join, everything else has a fixed string form).
    pub(crate) fn into_primitive(self) -> Value<'a> {
        match self {
            Value::Json(Json::Array(items)) => Value::Str(Cow::Owned(join_json(items))),
            Value::Json(_) | Value::User => Value::str("[object Object]"),
            Value::Array(items) => Value::Str(Cow::Owned(join_values(&items))),
            Value::Regex(re) => Value::Str(Cow::Owned(re.display())),
            other => other,
        }
    }

    /// ToNumber.
    pub(crate) fn to_number(&self) -> f64 {
        match self {
            Value::Undefined => f64::NAN,
            Value::Null => 0.0,
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Num(n) => *n,
            Value::Str(s) => string_to_number(s),
            obj => obj.clone().into_primitive().to_number(),
        }
    }

    /// ToString.
    pub(crate) fn into_js_string(self) -> Cow<'a, str> {
        match self {
            Value::Undefined => Cow::Borrowed("undefined"),
            Value::Null => Cow::Borrowed("null"),
            Value::Bool(true) => Cow::Borrowed("true"),
            Value::Bool(false) => Cow::Borrowed("false"),
            Value::Num(n) => Cow::Owned(number_to_string(n)),
            Value::Str(s) => s,
            obj => obj.into_primitive().into_js_string(),
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Value::Undefined => Kind::Undefined,
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Bool,
            Value::Num(_) => Kind::Num,
            Value::Str(_) => Kind::Str,
            _ => Kind::Object,
        }
    }
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Undefined,
    Null,
    Bool,
    Num,
    Str,
    Object,
}

fn join_json(items: &[Json]) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let v = Value::from_json(item);
        if !v.is_nullish() {
            out.push_str(&v.into_js_string());
        }
    }
    out
}

fn join_values(items: &[Value<'_>]) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if !item.is_nullish() {
            out.push_str(&item.clone().into_js_string());
        }
    }
    out
}

/// IsStrictlyEqual (`===`).
pub(crate) fn strict_eq(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Undefined, Value::Undefined) | (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Num(x), Value::Num(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Json(x), Value::Json(y)) => std::ptr::eq(*x, *y),
        (Value::Array(x), Value::Array(y)) => Rc::ptr_eq(x, y),
        (Value::User, Value::User) => true,
        // Every evaluation of a regex literal creates a new object in JS.
        _ => false,
    }
}

/// SameValueZero (used by `Array.prototype.includes`).
pub(crate) fn same_value_zero(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) if x.is_nan() && y.is_nan() => true,
        _ => strict_eq(a, b),
    }
}

/// IsLooselyEqual (`==`).
pub(crate) fn loose_eq(a: &Value<'_>, b: &Value<'_>) -> bool {
    let (ka, kb) = (a.kind(), b.kind());
    if ka == kb {
        return strict_eq(a, b);
    }
    match (ka, kb) {
        (Kind::Undefined | Kind::Null, Kind::Undefined | Kind::Null) => true,
        (Kind::Num, Kind::Str) | (Kind::Str, Kind::Num) => a.to_number() == b.to_number(),
        (Kind::Bool, _) => loose_eq(&Value::Num(a.to_number()), b),
        (_, Kind::Bool) => loose_eq(a, &Value::Num(b.to_number())),
        (Kind::Num | Kind::Str, Kind::Object) => loose_eq(a, &b.clone().into_primitive()),
        (Kind::Object, Kind::Num | Kind::Str) => loose_eq(&a.clone().into_primitive(), b),
        _ => false,
    }
}

/// The binary `+` operator.
pub(crate) fn add<'a>(a: Value<'a>, b: Value<'a>) -> Value<'a> {
    let (a, b) = (a.into_primitive(), b.into_primitive());
    if matches!(a, Value::Str(_)) || matches!(b, Value::Str(_)) {
        let (x, y) = (a.into_js_string(), b.into_js_string());
        if y.is_empty() {
            return Value::Str(x);
        }
        if x.is_empty() {
            return Value::Str(y);
        }
        let mut s = String::with_capacity(x.len() + y.len());
        s.push_str(&x);
        s.push_str(&y);
        Value::Str(Cow::Owned(s))
    } else {
        Value::Num(a.to_number() + b.to_number())
    }
}

/// Relational comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rel {
    Lt,
    Le,
    Gt,
    Ge,
}

/// IsLessThan and friends: strings compare by UTF-16 code units, everything
/// else numerically; any NaN makes the comparison `false`.
pub(crate) fn compare(op: Rel, a: Value<'_>, b: Value<'_>) -> bool {
    let (a, b) = (a.into_primitive(), b.into_primitive());
    let ord = match (&a, &b) {
        (Value::Str(x), Value::Str(y)) => Some(cmp_utf16(x, y)),
        _ => a.to_number().partial_cmp(&b.to_number()),
    };
    match ord {
        None => false,
        Some(o) => match op {
            Rel::Lt => o == Ordering::Less,
            Rel::Le => o != Ordering::Greater,
            Rel::Gt => o == Ordering::Greater,
            Rel::Ge => o != Ordering::Less,
        },
    }
}

fn cmp_utf16(x: &str, y: &str) -> Ordering {
    if x.is_ascii() && y.is_ascii() {
        x.cmp(y)
    } else {
        x.encode_utf16().cmp(y.encode_utf16())
    }
}

/// ToInt32.
pub(crate) fn to_int32(n: f64) -> i32 {
    to_uint32(n) as i32
}

/// ToUint32.
pub(crate) fn to_uint32(n: f64) -> u32 {
    if !n.is_finite() {
        return 0;
    }
    let t = n.trunc();
    let m = t.rem_euclid(4_294_967_296.0);
    m as u32
}

/// The `**` operator (Rust's `powf` differs for NaN exponents and ±1 bases).
pub(crate) fn pow(base: f64, exp: f64) -> f64 {
    if exp.is_nan() || (base.abs() == 1.0 && exp.is_infinite()) {
        f64::NAN
    } else {
        base.powf(exp)
    }
}

/// JavaScript whitespace and line terminators (what `trim()` and ToNumber strip).
pub(crate) fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{9}' | '\u{a}' | '\u{b}' | '\u{c}' | '\u{d}' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// StringToNumber.
pub(crate) fn string_to_number(s: &str) -> f64 {
    let t = s.trim_matches(is_js_whitespace);
    if t.is_empty() {
        return 0.0;
    }
    let radix = match t.get(..2) {
        Some("0x" | "0X") => 16,
        Some("0o" | "0O") => 8,
        Some("0b" | "0B") => 2,
        _ => 0,
    };
    if radix != 0 {
        let digits = &t[2..];
        if digits.is_empty() {
            return f64::NAN;
        }
        let mut acc = 0.0f64;
        for c in digits.chars() {
            match c.to_digit(radix) {
                Some(d) => acc = acc * f64::from(radix) + f64::from(d),
                None => return f64::NAN,
            }
        }
        return acc;
    }
    let (sign, body) = match t.as_bytes()[0] {
        b'+' => (1.0, &t[1..]),
        b'-' => (-1.0, &t[1..]),
        _ => (1.0, t),
    };
    if body == "Infinity" {
        return sign * f64::INFINITY;
    }
    if !is_decimal_literal(body) {
        return f64::NAN;
    }
    body.parse::<f64>().map_or(f64::NAN, |v| sign * v)
}

/// `digits [. digits?] | . digits`, then an optional exponent.
fn is_decimal_literal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut mantissa_digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        mantissa_digits += i - frac_start;
    }
    if mantissa_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

/// Number::toString(10): shortest round-trip digits, laid out as JavaScript
/// does (plain notation for 1e-7 < |x| < 1e21, exponent notation otherwise).
pub(crate) fn number_to_string(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_owned();
    }
    if x == 0.0 {
        return "0".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if x.fract() == 0.0 && x.abs() < 1e21 {
        return format!("{}", x as i128);
    }
    let mut out = String::new();
    if x < 0.0 {
        out.push('-');
    }
    // Rust's `{:e}` yields the shortest round-trip digits: "d.ddde±n".
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i64;
    let n = exp.parse::<i64>().unwrap_or(0) + 1;
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        let e = n - 1;
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if e >= 0 { '+' } else { '-' });
        out.push_str(&e.abs().to_string());
    }
    out
}

/// If `s` is a canonical array index ("0", "17", not "01" or "1.0"), its value.
pub(crate) fn array_index(s: &str) -> Option<usize> {
    if s.is_empty() || s.len() > 10 || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>()
        .ok()
        .filter(|i| *i != u32::MAX)
        .map(|i| i as usize)
}

/// If the number is a valid array index, its value.
pub(crate) fn number_index(n: f64) -> Option<usize> {
    if n >= 0.0 && n.fract() == 0.0 && n < 4_294_967_295.0 {
        Some(n as usize)
    } else {
        None
    }
}

// ---- UTF-16 helpers (JavaScript string indices are UTF-16 code units) ----

pub(crate) fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.encode_utf16().count()
    }
}

/// Byte offset of UTF-16 index `idx` (clamped to the string; an index in the
/// middle of a surrogate pair rounds down to the start of the character).
pub(crate) fn utf16_to_byte(s: &str, idx: usize) -> usize {
    if s.is_ascii() {
        return idx.min(s.len());
    }
    let mut units = 0;
    for (b, c) in s.char_indices() {
        let next = units + c.len_utf16();
        if next > idx {
            return b;
        }
        units = next;
    }
    s.len()
}

pub(crate) fn byte_to_utf16(s: &str, byte: usize) -> usize {
    utf16_len(&s[..byte])
}

/// The one-code-unit string at UTF-16 index `idx` (`s[idx]`).
pub(crate) fn utf16_unit_at(s: &str, idx: usize) -> Option<String> {
    if s.is_ascii() {
        return s.get(idx..idx + 1).map(str::to_owned);
    }
    let unit = s.encode_utf16().nth(idx)?;
    Some(
        char::decode_utf16([unit])
            .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
    )
}

/// ToIntegerOrInfinity clamped to `0..=len` (string method positions).
pub(crate) fn clamp_position(v: &Value<'_>, len: usize, default: usize) -> usize {
    if matches!(v, Value::Undefined) {
        return default;
    }
    let n = v.to_number();
    if n.is_nan() || n <= 0.0 {
        0
    } else if n >= len as f64 {
        len
    } else {
        n.trunc() as usize
    }
}
