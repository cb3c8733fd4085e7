//! Text pre-processing (server.md §1.2) and YAML/JSON parsing.
//!
//! Differences from the reference, all deliberate:
//! * No comment stripping pass: YAML comments are left to the YAML parser, so a `#` inside a
//!   quoted string survives (reference quirk). Tokens inside YAML comments are **not**
//!   substituted, so a commented-out `fileLoad(missing.pem)` is harmless.
//! * `file(...)` / `fileLoad(...)` take the argument up to the *matching* `)` (not greedily up
//!   to the last `)` on the line), must not be glued to a preceding identifier character
//!   (`profile(x)` is left alone), may quote the argument (`fileLoad("a b.yml")`) and may use
//!   `${VAR}` inside the argument.
//! * `fileLoad` failures (missing/unreadable file, invalid YAML/JSON) are hard errors naming
//!   the config file, line, key and the resolved file, instead of queued FATAL logs.
//! * The inserted `fileLoad` content is not scanned again for `${VAR}` (its own text already
//!   was), so an environment value is never expanded twice.

use std::path::{Path, PathBuf};

use serde_json::{Map, Number, Value};

use super::error::Problem;
use super::paths::{Format, resolve_path};

/// Environment lookup used for `${VAR}` (and the env fallbacks of the loader).
pub(crate) type EnvFn<'a> = &'a dyn Fn(&str) -> Option<String>;

pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

/// Runs `file()`, `fileLoad()` and `${VAR}` substitution over the text of a config file.
/// `source` names the text in error locations (usually the config file name).
pub(crate) fn preprocess(
    text: &str,
    format: Format,
    conf_dir: &Path,
    source: &str,
    env: EnvFn<'_>,
) -> Result<String, Vec<Problem>> {
    let mut ctx = Ctx {
        conf_dir,
        env,
        source,
        problems: Vec::new(),
        files: true,
    };
    let out = process_text(text, format == Format::Yaml, &mut ctx);
    if ctx.problems.is_empty() {
        Ok(out)
    } else {
        Err(ctx.problems)
    }
}

struct Ctx<'a> {
    conf_dir: &'a Path,
    env: EnvFn<'a>,
    source: &'a str,
    problems: Vec<Problem>,
    /// Whether `file()` / `fileLoad()` tokens are expanded (only in the main config text).
    files: bool,
}

fn process_text(text: &str, yaml: bool, ctx: &mut Ctx<'_>) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut scanner = YamlLines::default();
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split('\n').enumerate() {
        if index > 0 {
            out.push('\n');
        }
        let (code, comment) = if yaml {
            scanner.split(line)
        } else {
            (line, "")
        };
        let location = Location {
            line: index + 1,
            key: scanner.key_path(),
        };
        out.push_str(&substitute(code, ctx, &location));
        out.push_str(comment);
    }
    out
}

struct Location {
    line: usize,
    key: String,
}

/// Tracks just enough YAML structure, line by line, to find comments, block scalars and the
/// key a line belongs to (for error messages).
#[derive(Default)]
struct YamlLines {
    /// Indentation of the line that opened a block scalar (`key: |`) we are inside of.
    block_parent: Option<usize>,
    /// (indentation, key) of the enclosing mapping keys.
    keys: Vec<(usize, String)>,
}

impl YamlLines {
    fn split<'l>(&mut self, line: &'l str) -> (&'l str, &'l str) {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if let Some(parent) = self.block_parent {
            if line.trim().is_empty() || indent > parent {
                return (line, "");
            }
            self.block_parent = None;
        }
        let cut = comment_start(line).unwrap_or(line.len());
        let (code, comment) = line.split_at(cut);
        if code.trim().is_empty() {
            return (code, comment);
        }
        let (key_indent, key) = line_key(code);
        while self.keys.last().is_some_and(|(i, _)| *i >= key_indent) {
            self.keys.pop();
        }
        if let Some(key) = key {
            self.keys.push((key_indent, key));
        }
        if opens_block_scalar(code) {
            self.block_parent = Some(indent);
        }
        (code, comment)
    }

    fn key_path(&self) -> String {
        let keys: Vec<&str> = self.keys.iter().map(|(_, k)| k.as_str()).collect();
        keys.join(".")
    }
}

/// Byte offset where a YAML comment starts on this line: a `#` at the start of the line or
/// after whitespace, outside single- and double-quoted scalars.
fn comment_start(line: &str) -> Option<usize> {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let mut quote = Quote::None;
    let mut prev: Option<char> = None;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match quote {
            Quote::Double => match c {
                '\\' => {
                    chars.next();
                }
                '"' => quote = Quote::None,
                _ => {}
            },
            Quote::Single => {
                if c == '\'' {
                    if chars.peek().is_some_and(|(_, n)| *n == '\'') {
                        chars.next();
                    } else {
                        quote = Quote::None;
                    }
                }
            }
            Quote::None => {
                let at_token_start =
                    prev.is_none_or(|p| p.is_whitespace() || matches!(p, '[' | '{' | ',' | ':'));
                match c {
                    '#' if prev.is_none_or(char::is_whitespace) => return Some(i),
                    '"' if at_token_start => quote = Quote::Double,
                    '\'' if at_token_start => quote = Quote::Single,
                    _ => {}
                }
            }
        }
        prev = Some(c);
    }
    None
}

/// The indentation and (if any) the mapping key introduced by a line of YAML code.
fn line_key(code: &str) -> (usize, Option<String>) {
    let mut indent = code.len() - code.trim_start_matches(' ').len();
    let mut rest = &code[indent..];
    while let Some(r) = rest.strip_prefix("- ").or_else(|| rest.strip_prefix("-\t")) {
        let trimmed = r.trim_start_matches([' ', '\t']);
        indent += rest.len() - trimmed.len();
        rest = trimmed;
    }
    let key = if let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
        rest[1..].find(q).and_then(|end| {
            let after = &rest[end + 2..];
            after
                .trim_start()
                .starts_with(':')
                .then(|| rest[1..end + 1].to_owned())
        })
    } else if rest.starts_with(['{', '[', '|', '>', '&', '*', '!']) {
        None
    } else {
        rest.find(": ")
            .or_else(|| rest.trim_end().strip_suffix(':').map(str::len))
            .map(|end| rest[..end].trim().to_owned())
            .filter(|k| !k.is_empty())
    };
    (indent, key)
}

fn opens_block_scalar(code: &str) -> bool {
    let t = code.trim_end();
    let t = t.trim_end_matches(|c: char| c == '-' || c == '+' || c.is_ascii_digit());
    (t.ends_with('|') || t.ends_with('>')) && {
        let before = &t[..t.len() - 1];
        before.is_empty() || before.ends_with(' ') || before.ends_with('\t')
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TokenKind {
    File,
    FileLoad,
}

fn substitute(code: &str, ctx: &mut Ctx<'_>, location: &Location) -> String {
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        if let Some(after) = rest.strip_prefix("${")
            && let Some(end) = after.find('}')
            && end > 0
        {
            out.push_str(&(ctx.env)(&after[..end]).unwrap_or_default());
            i += 2 + end + 1;
            continue;
        }
        if ctx.files
            && starts_token(code, i)
            && let Some((kind, arg, consumed)) = file_token(rest)
        {
            let token = &rest[..consumed];
            out.push_str(&expand_file_token(kind, arg, token, ctx, location));
            i += consumed;
            continue;
        }
        let ch = rest.chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

fn starts_token(code: &str, at: usize) -> bool {
    code[..at]
        .chars()
        .next_back()
        .is_none_or(|p| !(p.is_alphanumeric() || p == '_'))
}

/// Recognises `file(...)` / `fileLoad(...)` at the start of `rest`; returns the kind, the raw
/// argument and the length of the whole token (up to the matching `)`).
fn file_token(rest: &str) -> Option<(TokenKind, &str, usize)> {
    let (kind, open) = if rest.starts_with("fileLoad(") {
        (TokenKind::FileLoad, "fileLoad(".len())
    } else if rest.starts_with("file(") {
        (TokenKind::File, "file(".len())
    } else {
        return None;
    };
    let mut depth = 1usize;
    for (offset, c) in rest[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    let close = open + offset;
                    return Some((kind, &rest[open..close], close + 1));
                }
            }
            _ => {}
        }
    }
    None
}

fn expand_file_token(
    kind: TokenKind,
    raw_arg: &str,
    token: &str,
    ctx: &mut Ctx<'_>,
    location: &Location,
) -> String {
    let arg = substitute_env(raw_arg, ctx.env);
    let arg = unquote(arg.trim());
    let where_ = format!(
        "{}:{}{}",
        ctx.source,
        location.line,
        if location.key.is_empty() {
            String::new()
        } else {
            format!(" ({})", location.key)
        }
    );
    if arg.is_empty() {
        ctx.problems
            .push(Problem::new(where_, format!("{token}: empty file path")));
        return "null".to_owned();
    }
    let path = resolve_path(Path::new(arg), Some(ctx.conf_dir));
    match kind {
        TokenKind::File => path.display().to_string(),
        TokenKind::FileLoad => match load_file_value(&path, ctx.env) {
            Ok(value) => to_inline_json(&value),
            Err(e) => {
                ctx.problems.push(Problem::new(
                    where_,
                    format!("{token}: {}", e.describe(&path)),
                ));
                "null".to_owned()
            }
        },
    }
}

fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return &s[1..s.len() - 1];
        }
    }
    s
}

/// `${VAR}` substitution only (used for `fileLoad`ed files and token arguments).
pub(crate) fn substitute_env(text: &str, env: EnvFn<'_>) -> String {
    let conf_dir = PathBuf::new();
    let mut ctx = Ctx {
        conf_dir: &conf_dir,
        env,
        source: "",
        problems: Vec::new(),
        files: false,
    };
    let location = Location {
        line: 0,
        key: String::new(),
    };
    substitute(text, &mut ctx, &location)
}

fn substitute_env_yaml(text: &str, env: EnvFn<'_>) -> String {
    let conf_dir = PathBuf::new();
    let mut ctx = Ctx {
        conf_dir: &conf_dir,
        env,
        source: "",
        problems: Vec::new(),
        files: false,
    };
    process_text(text, true, &mut ctx)
}

/// Why a referenced file could not be loaded.
#[derive(Debug)]
pub(crate) enum LoadError {
    Missing,
    Unreadable(String),
    InvalidFormat(String),
    JavaScript,
}

impl LoadError {
    pub(crate) fn describe(&self, path: &Path) -> String {
        match self {
            LoadError::Missing => format!("missing file {}", path.display()),
            LoadError::Unreadable(e) => format!("cannot read file {}: {e}", path.display()),
            LoadError::InvalidFormat(e) => {
                format!("invalid format in file {}: {e}", path.display())
            }
            LoadError::JavaScript => format!(
                "{} is a JavaScript file; this server only loads .yml, .yaml, .json or plain text",
                path.display()
            ),
        }
    }
}

/// Loads a `fileLoad()` target: `.yml`/`.yaml`/`.json` are parsed into a value, anything
/// else becomes a JSON string of the file's text. `${VAR}` is substituted in the text first.
pub(crate) fn load_file_value(path: &Path, env: EnvFn<'_>) -> Result<Value, LoadError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.ends_with(".js") {
        return Err(LoadError::JavaScript);
    }
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|_| LoadError::Unreadable("file is not valid UTF-8".to_owned()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LoadError::Missing),
        Err(e) => return Err(LoadError::Unreadable(e.to_string())),
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    if name.ends_with(".yml") || name.ends_with(".yaml") {
        parse_yaml(&substitute_env_yaml(text, env)).map_err(LoadError::InvalidFormat)
    } else if name.ends_with(".json") {
        parse_json(&substitute_env(text, env)).map_err(LoadError::InvalidFormat)
    } else {
        Ok(Value::String(substitute_env(text, env)))
    }
}

/// Parses YAML into JSON values (merge keys `<<` applied; non-string scalar keys stringified).
pub(crate) fn parse_yaml(text: &str) -> Result<Value, String> {
    let mut value: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| one_line(&e.to_string()))?;
    value.apply_merge().map_err(|e| one_line(&e.to_string()))?;
    yaml_to_json(value, "")
}

pub(crate) fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| one_line(&e.to_string()))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn yaml_to_json(value: serde_yaml::Value, pointer: &str) -> Result<Value, String> {
    use serde_yaml::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::Number(u.into())
            } else if let Some(i) = n.as_i64() {
                Value::Number(i.into())
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                Value::Number(Number::from_f64(f).ok_or_else(|| {
                    format!(
                        "{}: {n} cannot be represented in JSON",
                        display_pointer(pointer)
                    )
                })?)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| yaml_to_json(v, &format!("{pointer}/{i}")))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(mapping) => {
            let mut map = Map::with_capacity(mapping.len());
            for (k, v) in mapping {
                let key = yaml_key(k).ok_or_else(|| {
                    format!(
                        "{}: mapping keys must be strings, numbers or booleans",
                        display_pointer(pointer)
                    )
                })?;
                let child = format!("{pointer}/{}", escape_pointer(&key));
                map.insert(key, yaml_to_json(v, &child)?);
            }
            Value::Object(map)
        }
        Y::Tagged(tagged) => yaml_to_json(tagged.value, pointer)?,
    })
}

fn yaml_key(key: serde_yaml::Value) -> Option<String> {
    use serde_yaml::Value as Y;
    match key {
        Y::String(s) => Some(s),
        Y::Number(n) => Some(n.to_string()),
        Y::Bool(b) => Some(b.to_string()),
        Y::Null => Some("null".to_owned()),
        Y::Tagged(t) => yaml_key(t.value),
        Y::Sequence(_) | Y::Mapping(_) => None,
    }
}

fn display_pointer(pointer: &str) -> &str {
    if pointer.is_empty() { "/" } else { pointer }
}

/// RFC 6901 escaping of one reference token.
pub(crate) fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Serialises a value as single-line JSON that is also valid YAML flow syntax for libyaml:
/// `": "` / `", "` separators and only YAML-safe escapes in strings.
pub(crate) fn to_inline_json(value: &Value) -> String {
    let mut out = String::new();
    write_inline(value, &mut out);
    out
}

fn write_inline(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_inline(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(k, out);
                out.push_str(": ");
                write_inline(v, out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control()
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                ) =>
            {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
