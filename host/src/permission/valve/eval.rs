//! Evaluation of a compiled rule expression with JavaScript semantics.

use std::borrow::Cow;
use std::rc::Rc;

use serde_json::Value as Json;

use super::RecordLookup;
use super::parser::{BinOp, Call, Expr, Method, UnOp, Var};
use super::regex::JsRegex;
use super::value::{
    self, Rel, Value, array_index, byte_to_utf16, clamp_position, number_index, utf16_len,
    utf16_to_byte, utf16_unit_at,
};

/// Why evaluation stopped early.
#[derive(Debug)]
pub(crate) enum Thrown {
    /// The rule threw (the JS error text, e.g. `TypeError: …`).
    Error(String),
    /// An optional chain hit `null`/`undefined` (caught by `Expr::Chain`).
    Short,
}

type R<'a> = Result<Value<'a>, Thrown>;

/// Everything a rule can see during one evaluation pass.
pub(crate) struct Scope<'a> {
    pub(crate) user_id: &'a str,
    pub(crate) user_data: Option<&'a Json>,
    pub(crate) data: Value<'a>,
    pub(crate) old_data: Value<'a>,
    pub(crate) now: f64,
    pub(crate) action: f64,
    pub(crate) name: &'a str,
    pub(crate) vars: &'a [&'a str],
    pub(crate) records: &'a dyn RecordLookup,
    /// Records referenced with `_()` that are not loaded yet.
    pub(crate) needs: Vec<String>,
}

fn type_error(msg: String) -> Thrown {
    Thrown::Error(format!("TypeError: {msg}"))
}

fn nullish_read<'a>(obj: &Value<'_>, key: &str) -> R<'a> {
    let what = if matches!(obj, Value::Null) {
        "null"
    } else {
        "undefined"
    };
    Err(type_error(format!(
        "Cannot read properties of {what} (reading '{key}')"
    )))
}

pub(crate) fn eval<'a>(e: &'a Expr, s: &mut Scope<'a>) -> R<'a> {
    match e {
        Expr::Undefined | Expr::Underscore => Ok(Value::Undefined),
        Expr::Null => Ok(Value::Null),
        Expr::Bool(b) => Ok(Value::Bool(*b)),
        Expr::Num(n) => Ok(Value::Num(*n)),
        Expr::Str(st) => Ok(Value::str(st)),
        Expr::Regex(re) => Ok(Value::Regex(re)),
        Expr::Array(items) => array_literal(items, s),
        Expr::Template(parts, exprs) => template(parts, exprs, s),
        Expr::Var(v) => Ok(match v {
            Var::User => Value::User,
            Var::UserId => Value::str(s.user_id),
            Var::UserIsAuthenticated => Value::Bool(s.user_id != super::OPEN_USER_ID),
            Var::UserData => s.user_data.map_or(Value::Null, Value::from_json),
            Var::Data => s.data.clone(),
            Var::OldData => s.old_data.clone(),
            Var::Now => Value::Num(s.now),
            Var::Action => Value::Num(s.action),
            Var::Name => Value::str(s.name),
            Var::Path(i) => Value::str(s.vars.get(usize::from(*i)).copied().unwrap_or("")),
        }),
        Expr::Member(obj, prop, optional) => {
            let o = eval(obj, s)?;
            if *optional && o.is_nullish() {
                return Err(Thrown::Short);
            }
            get_property(o, prop, s)
        }
        Expr::Index(obj, key, optional) => index(obj, key, *optional, s),
        Expr::Chain(inner) => match eval(inner, s) {
            Err(Thrown::Short) => Ok(Value::Undefined),
            other => other,
        },
        Expr::Call(call) => call_method(call, s),
        Expr::CrossRef(arg, extra) => cross_reference(arg, extra, s),
        Expr::Unary(op, operand) => {
            let v = eval(operand, s)?;
            Ok(match op {
                UnOp::Not => Value::Bool(!v.truthy()),
                UnOp::Neg => Value::Num(-v.to_number()),
                UnOp::Plus => Value::Num(v.to_number()),
                UnOp::BitNot => Value::Num(f64::from(!value::to_int32(v.to_number()))),
                UnOp::TypeOf => Value::str(v.type_of()),
                UnOp::Void => Value::Undefined,
            })
        }
        Expr::Binary(op, l, r) => {
            let a = eval(l, s)?;
            let b = eval(r, s)?;
            binary(*op, a, b)
        }
        Expr::And(l, r) => {
            let a = eval(l, s)?;
            if a.truthy() { eval(r, s) } else { Ok(a) }
        }
        Expr::Or(l, r) => {
            let a = eval(l, s)?;
            if a.truthy() { Ok(a) } else { eval(r, s) }
        }
        Expr::Nullish(l, r) => {
            let a = eval(l, s)?;
            if a.is_nullish() { eval(r, s) } else { Ok(a) }
        }
        Expr::Cond(c, t, f) => {
            if eval(c, s)?.truthy() {
                eval(t, s)
            } else {
                eval(f, s)
            }
        }
        Expr::Seq(items) => sequence(items, s),
    }
}

#[inline(never)]
fn array_literal<'a>(items: &'a [Expr], s: &mut Scope<'a>) -> R<'a> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(eval(item, s)?);
    }
    Ok(Value::Array(Rc::new(out)))
}

#[inline(never)]
fn template<'a>(parts: &'a [Box<str>], exprs: &'a [Expr], s: &mut Scope<'a>) -> R<'a> {
    let mut out = String::from(&*parts[0]);
    for (expr, part) in exprs.iter().zip(&parts[1..]) {
        out.push_str(&eval(expr, s)?.into_js_string());
        out.push_str(part);
    }
    Ok(Value::Str(Cow::Owned(out)))
}

#[inline(never)]
fn sequence<'a>(items: &'a [Expr], s: &mut Scope<'a>) -> R<'a> {
    let mut last = Value::Undefined;
    for item in items {
        last = eval(item, s)?;
    }
    Ok(last)
}

#[inline(never)]
fn index<'a>(obj: &'a Expr, key: &'a Expr, optional: bool, s: &mut Scope<'a>) -> R<'a> {
    let o = eval(obj, s)?;
    if optional && o.is_nullish() {
        return Err(Thrown::Short);
    }
    let k = eval(key, s)?;
    get_index(o, k, s)
}

#[inline(never)]
fn binary<'a>(op: BinOp, a: Value<'a>, b: Value<'a>) -> R<'a> {
    let num = |f: fn(f64, f64) -> f64, a: Value<'a>, b: Value<'a>| {
        Value::Num(f(a.to_number(), b.to_number()))
    };
    let int = |f: fn(i32, u32) -> f64, a: Value<'a>, b: Value<'a>| {
        Value::Num(f(
            value::to_int32(a.to_number()),
            value::to_uint32(b.to_number()),
        ))
    };
    Ok(match op {
        BinOp::Add => value::add(a, b),
        BinOp::Sub => num(|x, y| x - y, a, b),
        BinOp::Mul => num(|x, y| x * y, a, b),
        BinOp::Div => num(|x, y| x / y, a, b),
        BinOp::Rem => num(|x, y| x % y, a, b),
        BinOp::Pow => num(value::pow, a, b),
        BinOp::StrictEq => Value::Bool(value::strict_eq(&a, &b)),
        BinOp::StrictNe => Value::Bool(!value::strict_eq(&a, &b)),
        BinOp::Eq => Value::Bool(value::loose_eq(&a, &b)),
        BinOp::Ne => Value::Bool(!value::loose_eq(&a, &b)),
        BinOp::Lt => Value::Bool(value::compare(Rel::Lt, a, b)),
        BinOp::Le => Value::Bool(value::compare(Rel::Le, a, b)),
        BinOp::Gt => Value::Bool(value::compare(Rel::Gt, a, b)),
        BinOp::Ge => Value::Bool(value::compare(Rel::Ge, a, b)),
        BinOp::BitAnd => int(|x, y| f64::from(x & y as i32), a, b),
        BinOp::BitOr => int(|x, y| f64::from(x | y as i32), a, b),
        BinOp::BitXor => int(|x, y| f64::from(x ^ y as i32), a, b),
        BinOp::Shl => int(|x, y| f64::from(x.wrapping_shl(y & 31)), a, b),
        BinOp::Shr => int(|x, y| f64::from(x.wrapping_shr(y & 31)), a, b),
        BinOp::UShr => int(|x, y| f64::from((x as u32).wrapping_shr(y & 31)), a, b),
        BinOp::In => return has_property(a, b),
    })
}

/// `key in obj`.
fn has_property<'a>(key: Value<'a>, obj: Value<'a>) -> R<'a> {
    let found = match &obj {
        Value::Json(Json::Object(map)) => map.contains_key(&*key.into_js_string()),
        Value::Json(Json::Array(items)) => array_has(items.len(), key),
        Value::Array(items) => array_has(items.len(), key),
        Value::User => matches!(&*key.into_js_string(), "id" | "isAuthenticated" | "data"),
        Value::Regex(_) => key.into_js_string() == "lastIndex",
        _ => {
            let k = key.into_js_string();
            let o = obj.into_js_string();
            return Err(type_error(format!(
                "Cannot use 'in' operator to search for '{k}' in {o}"
            )));
        }
    };
    Ok(Value::Bool(found))
}

fn array_has(len: usize, key: Value<'_>) -> bool {
    let idx = match key {
        Value::Num(n) => number_index(n),
        other => {
            let k = other.into_js_string();
            if k == "length" {
                return true;
            }
            array_index(&k)
        }
    };
    idx.is_some_and(|i| i < len)
}

fn get_property<'a>(obj: Value<'a>, key: &str, s: &Scope<'a>) -> R<'a> {
    Ok(match obj {
        Value::Undefined | Value::Null => return nullish_read(&obj, key),
        Value::Json(Json::Object(map)) => map.get(key).map_or(Value::Undefined, Value::from_json),
        Value::Json(Json::Array(items)) => {
            if key == "length" {
                Value::Num(items.len() as f64)
            } else {
                array_index(key)
                    .and_then(|i| items.get(i))
                    .map_or(Value::Undefined, Value::from_json)
            }
        }
        Value::Array(items) => {
            if key == "length" {
                Value::Num(items.len() as f64)
            } else {
                array_index(key)
                    .and_then(|i| items.get(i).cloned())
                    .unwrap_or(Value::Undefined)
            }
        }
        Value::Str(st) => {
            if key == "length" {
                Value::Num(utf16_len(&st) as f64)
            } else {
                array_index(key)
                    .and_then(|i| utf16_unit_at(&st, i))
                    .map_or(Value::Undefined, |c| Value::Str(Cow::Owned(c)))
            }
        }
        Value::User => match key {
            "id" => Value::str(s.user_id),
            "isAuthenticated" => Value::Bool(s.user_id != super::OPEN_USER_ID),
            "data" => s.user_data.map_or(Value::Null, Value::from_json),
            _ => Value::Undefined,
        },
        Value::Regex(re) => regex_property(re, key),
        Value::Json(_) | Value::Bool(_) | Value::Num(_) => Value::Undefined,
    })
}

fn regex_property<'a>(re: &'a JsRegex, key: &str) -> Value<'a> {
    match key {
        "source" => Value::str(&re.source),
        "flags" => Value::str(&re.flags),
        "global" => Value::Bool(re.global),
        "sticky" => Value::Bool(re.sticky),
        "ignoreCase" => Value::Bool(re.has_flag('i')),
        "multiline" => Value::Bool(re.has_flag('m')),
        "dotAll" => Value::Bool(re.has_flag('s')),
        "unicode" => Value::Bool(re.has_flag('u')),
        "hasIndices" => Value::Bool(re.has_flag('d')),
        "lastIndex" => Value::Num(0.0),
        _ => Value::Undefined,
    }
}

fn get_index<'a>(obj: Value<'a>, key: Value<'a>, s: &Scope<'a>) -> R<'a> {
    // Fast path: numeric index into an array or string.
    if let Value::Num(n) = key
        && let Some(i) = number_index(n)
    {
        match &obj {
            Value::Json(Json::Array(items)) => {
                return Ok(items.get(i).map_or(Value::Undefined, Value::from_json));
            }
            Value::Array(items) => return Ok(items.get(i).cloned().unwrap_or(Value::Undefined)),
            Value::Str(st) => {
                return Ok(
                    utf16_unit_at(st, i).map_or(Value::Undefined, |c| Value::Str(Cow::Owned(c)))
                );
            }
            _ => {}
        }
    }
    let k = key.into_js_string();
    get_property(obj, &k, s)
}

#[inline(never)]
fn cross_reference<'a>(arg: &'a Expr, extra: &'a [Expr], s: &mut Scope<'a>) -> R<'a> {
    let arg = eval(arg, s)?;
    for e in extra {
        eval(e, s)?;
    }
    match arg {
        Value::Undefined => Ok(Value::Undefined),
        Value::Str(name) => {
            // Guards against `_('user/' + data.missing)`.
            if name.contains("undefined") {
                return Ok(Value::Undefined);
            }
            match s.records.get(&name) {
                Some(Some(v)) => Ok(Value::from_json(v)),
                Some(None) => Ok(Value::Null),
                None => {
                    if !s.needs.iter().any(|n| *n == *name) {
                        s.needs.push(name.into_owned());
                    }
                    Ok(Value::Undefined)
                }
            }
        }
        other => Err(Thrown::Error(format!(
            "crossreference got unsupported type {}",
            other.type_of()
        ))),
    }
}

#[inline(never)]
fn call_method<'a>(c: &'a Call, s: &mut Scope<'a>) -> R<'a> {
    let obj = eval(&c.obj, s)?;
    if obj.is_nullish() {
        if c.optional_obj {
            return Err(Thrown::Short);
        }
        return nullish_read(&obj, c.method.name());
    }
    let is_array = matches!(obj, Value::Json(Json::Array(_)) | Value::Array(_));
    let callable = matches!(obj, Value::Str(_))
        || (is_array && matches!(c.method, Method::Includes | Method::IndexOf));
    if !callable && c.optional_call {
        return Err(Thrown::Short);
    }
    let mut args: [Value<'a>; 2] = [Value::Undefined, Value::Undefined];
    for (i, a) in c.args.iter().enumerate() {
        let v = eval(a, s)?;
        if i < 2 {
            args[i] = v;
        }
    }
    if !callable {
        return Err(type_error(format!("{} is not a function", c.callee)));
    }
    let [a0, a1] = args;
    match obj {
        Value::Str(st) => string_method(c, st, a0, a1),
        Value::Json(Json::Array(items)) => Ok(array_search(
            c.method,
            items.iter().map(Value::from_json),
            items.len(),
            &a0,
            &a1,
        )),
        Value::Array(items) => Ok(array_search(
            c.method,
            items.iter().cloned(),
            items.len(),
            &a0,
            &a1,
        )),
        _ => Err(type_error(format!("{} is not a function", c.callee))),
    }
}

fn array_search<'a>(
    method: Method,
    items: impl Iterator<Item = Value<'a>>,
    len: usize,
    needle: &Value<'a>,
    from: &Value<'a>,
) -> Value<'a> {
    let start = if matches!(from, Value::Undefined) {
        0
    } else {
        let n = from.to_number();
        let n = if n.is_nan() { 0.0 } else { n.trunc() };
        if n < 0.0 {
            (len as f64 + n).max(0.0) as usize
        } else {
            n.min(len as f64) as usize
        }
    };
    let mut items = items.enumerate().skip(start);
    if method == Method::Includes {
        Value::Bool(items.any(|(_, v)| value::same_value_zero(&v, needle)))
    } else {
        Value::Num(
            items
                .find(|(_, v)| value::strict_eq(v, needle))
                .map_or(-1.0, |(i, _)| i as f64),
        )
    }
}

fn string_method<'a>(c: &'a Call, st: Cow<'a, str>, a0: Value<'a>, a1: Value<'a>) -> R<'a> {
    let searching = matches!(
        c.method,
        Method::StartsWith | Method::EndsWith | Method::Includes
    );
    if searching && matches!(a0, Value::Regex(_)) {
        return Err(type_error(format!(
            "First argument to String.prototype.{} must not be a regular expression",
            c.method.name()
        )));
    }
    let len = || utf16_len(&st);
    Ok(match c.method {
        Method::StartsWith => {
            let needle = a0.into_js_string();
            let from = utf16_to_byte(&st, clamp_position(&a1, len(), 0));
            Value::Bool(st[from..].starts_with(&*needle))
        }
        Method::EndsWith => {
            let needle = a0.into_js_string();
            let l = len();
            let end = utf16_to_byte(&st, clamp_position(&a1, l, l));
            Value::Bool(st[..end].ends_with(&*needle))
        }
        Method::Includes => {
            let needle = a0.into_js_string();
            let from = utf16_to_byte(&st, clamp_position(&a1, len(), 0));
            Value::Bool(st[from..].contains(&*needle))
        }
        Method::IndexOf => {
            let needle = a0.into_js_string();
            let from = utf16_to_byte(&st, clamp_position(&a1, len(), 0));
            Value::Num(
                st[from..]
                    .find(&*needle)
                    .map_or(-1.0, |b| byte_to_utf16(&st, from + b) as f64),
            )
        }
        Method::Match => return string_match(c, &st, a0),
        Method::ToUpperCase => {
            if st.chars().any(char::is_lowercase) || !st.is_ascii() {
                Value::Str(Cow::Owned(st.to_uppercase()))
            } else {
                Value::Str(st)
            }
        }
        Method::ToLowerCase => {
            if st.chars().any(char::is_uppercase) || !st.is_ascii() {
                Value::Str(Cow::Owned(st.to_lowercase()))
            } else {
                Value::Str(st)
            }
        }
        Method::Trim => Value::Str(match st {
            Cow::Borrowed(b) => Cow::Borrowed(b.trim_matches(value::is_js_whitespace)),
            Cow::Owned(o) => Cow::Owned(o.trim_matches(value::is_js_whitespace).to_owned()),
        }),
    })
}

/// `String.prototype.match`.
fn string_match<'a>(c: &'a Call, hay: &str, arg: Value<'a>) -> R<'a> {
    let dynamic;
    let re: &JsRegex = match (&c.regex_arg, &arg) {
        (Some(re), _) => re,
        (None, Value::Regex(re)) => re,
        (None, other) => {
            let pattern = if matches!(other, Value::Undefined) {
                Cow::Borrowed("(?:)")
            } else {
                other.clone().into_js_string()
            };
            dynamic = JsRegex::new(&pattern, "").map_err(Thrown::Error)?;
            &dynamic
        }
    };
    let owned = |m: Option<regex::Match<'_>>| {
        m.map_or(Value::Undefined, |m| {
            Value::Str(Cow::Owned(m.as_str().to_owned()))
        })
    };
    if re.global {
        let mut out = Vec::new();
        let mut expected_start = 0;
        for m in re.re.find_iter(hay) {
            if re.sticky && m.start() != expected_start {
                break;
            }
            expected_start = m.end();
            out.push(owned(Some(m)));
        }
        if out.is_empty() {
            return Ok(Value::Null);
        }
        return Ok(Value::Array(Rc::new(out)));
    }
    let caps = if re.sticky {
        re.re
            .captures(hay)
            .filter(|c| c.get(0).is_some_and(|m| m.start() == 0))
    } else {
        re.re.captures(hay)
    };
    Ok(match caps {
        None => Value::Null,
        Some(caps) => Value::Array(Rc::new(caps.iter().map(owned).collect())),
    })
}
