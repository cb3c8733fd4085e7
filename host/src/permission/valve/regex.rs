//! JavaScript regular expressions on top of the `regex` crate.
//!
//! JS syntax is translated to the `regex` crate's syntax: `\d`, `\w`, `\b`
//! are ASCII as in JavaScript, `\uXXXX`, `\u{…}`, `\xHH`, `\cX`, `\0` and
//! `[^]` are rewritten, the flags `i m s` become inline flags and `g`/`y`
//! are handled by the caller. Constructs the `regex` crate cannot run
//! (back-references, look-around) are rejected when the rule is compiled,
//! with a `SyntaxError: Invalid regular expression: …` message.

use std::fmt::Write as _;

use regex::{Regex, RegexBuilder};

/// A compiled JavaScript regular expression.
#[derive(Debug)]
pub(crate) struct JsRegex {
    pub(crate) source: Box<str>,
    pub(crate) flags: Box<str>,
    pub(crate) global: bool,
    pub(crate) sticky: bool,
    pub(crate) re: Regex,
}

/// Keeps a single pathological rule from using unbounded memory.
const SIZE_LIMIT: usize = 1 << 20;

impl JsRegex {
    /// Compiles `/source/flags`. The error is the full message
    /// (`SyntaxError: Invalid regular expression…`).
    pub(crate) fn new(source: &str, flags: &str) -> Result<JsRegex, String> {
        let mut global = false;
        let mut sticky = false;
        let mut icase = false;
        let mut multi = false;
        let mut dotall = false;
        let mut seen = String::new();
        for c in flags.chars() {
            if seen.contains(c) {
                return Err(invalid_flags(source, flags));
            }
            seen.push(c);
            match c {
                'g' => global = true,
                'y' => sticky = true,
                'i' => icase = true,
                'm' => multi = true,
                's' => dotall = true,
                'u' | 'd' | 'v' => {}
                _ => return Err(invalid_flags(source, flags)),
            }
        }
        let translated = translate(source).map_err(|e| invalid(source, flags, &e))?;
        let re = RegexBuilder::new(&translated)
            .case_insensitive(icase)
            .multi_line(multi)
            .dot_matches_new_line(dotall)
            .size_limit(SIZE_LIMIT)
            .build()
            .map_err(|e| invalid(source, flags, &short_error(&e)))?;
        Ok(JsRegex {
            source: source.into(),
            flags: flags.into(),
            global,
            sticky,
            re,
        })
    }

    /// `String(regex)`: `/source/flags`.
    pub(crate) fn display(&self) -> String {
        format!("/{}/{}", self.source, self.flags)
    }

    pub(crate) fn has_flag(&self, f: char) -> bool {
        self.flags.contains(f)
    }
}

fn invalid_flags(source: &str, flags: &str) -> String {
    format!("SyntaxError: Invalid regular expression flags: /{source}/{flags}")
}

fn invalid(source: &str, flags: &str, why: &str) -> String {
    format!("SyntaxError: Invalid regular expression: /{source}/{flags}: {why}")
}

fn short_error(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: ").map(str::to_owned))
        .unwrap_or_else(|| text.lines().last().unwrap_or("").trim().to_owned())
}

/// Characters that must stay escaped in the `regex` crate's syntax.
fn is_rust_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
    )
}

fn push_literal(out: &mut String, c: char) {
    if is_rust_meta(c) {
        out.push('\\');
        out.push(c);
    } else if c.is_whitespace() || c.is_control() {
        let _ = write!(out, "\\x{{{:X}}}", c as u32);
    } else {
        out.push(c);
    }
}

fn hex_value(s: &[char]) -> Option<u32> {
    let text: String = s.iter().collect();
    u32::from_str_radix(&text, 16).ok()
}

/// Translates a JavaScript pattern to the `regex` crate's syntax.
pub(crate) fn translate(src: &str) -> Result<String, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&e) = chars.get(i + 1) else {
                    return Err("\\ at end of pattern".to_owned());
                };
                i += 2;
                match e {
                    'd' => out.push_str(if in_class { "[:digit:]" } else { "[[:digit:]]" }),
                    'D' => out.push_str(if in_class {
                        "[:^digit:]"
                    } else {
                        "[[:^digit:]]"
                    }),
                    'w' => out.push_str(if in_class { "[:word:]" } else { "[[:word:]]" }),
                    'W' => out.push_str(if in_class { "[:^word:]" } else { "[[:^word:]]" }),
                    's' | 'S' | 'n' | 'r' | 't' | 'f' | 'v' => {
                        out.push('\\');
                        out.push(e);
                    }
                    'b' if in_class => out.push_str("\\x08"),
                    'b' => out.push_str("(?-u:\\b)"),
                    'B' => out.push_str("(?-u:\\B)"),
                    '0' if !chars.get(i).is_some_and(char::is_ascii_digit) => {
                        out.push_str("\\x00");
                    }
                    '1'..='9' => return Err("back-references are not supported".to_owned()),
                    'k' if chars.get(i) == Some(&'<') => {
                        return Err("back-references are not supported".to_owned());
                    }
                    'x' => {
                        let h = chars.get(i..i + 2).and_then(hex_value);
                        match h {
                            Some(v) => {
                                let _ = write!(out, "\\x{{{v:X}}}");
                                i += 2;
                            }
                            None => out.push('x'),
                        }
                    }
                    'u' => {
                        if chars.get(i) == Some(&'{') {
                            let end = chars[i..]
                                .iter()
                                .position(|c| *c == '}')
                                .ok_or("Invalid Unicode escape")?;
                            let v = hex_value(&chars[i + 1..i + end])
                                .filter(|v| char::from_u32(*v).is_some())
                                .ok_or("Invalid Unicode escape")?;
                            let _ = write!(out, "\\x{{{v:X}}}");
                            i += end + 1;
                        } else if let Some(v) = chars.get(i..i + 4).and_then(hex_value) {
                            i += 4;
                            // A surrogate pair written as two escapes.
                            let v = if (0xD800..0xDC00).contains(&v)
                                && chars.get(i) == Some(&'\\')
                                && chars.get(i + 1) == Some(&'u')
                            {
                                match chars.get(i + 2..i + 6).and_then(hex_value) {
                                    Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                                        i += 6;
                                        0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)
                                    }
                                    _ => v,
                                }
                            } else {
                                v
                            };
                            if char::from_u32(v).is_none() {
                                return Err("lone surrogates are not supported".to_owned());
                            }
                            let _ = write!(out, "\\x{{{v:X}}}");
                        } else {
                            out.push('u');
                        }
                    }
                    'c' => match chars.get(i) {
                        Some(l) if l.is_ascii_alphabetic() => {
                            let _ = write!(out, "\\x{{{:X}}}", (*l as u32) % 32);
                            i += 1;
                        }
                        _ => out.push_str("\\\\c"),
                    },
                    'p' | 'P' if chars.get(i) == Some(&'{') => {
                        out.push('\\');
                        out.push(e);
                    }
                    other => push_literal(&mut out, other),
                }
            }
            '[' if !in_class => {
                if chars.get(i + 1) == Some(&'^') && chars.get(i + 2) == Some(&']') {
                    out.push_str("[\\s\\S]");
                    i += 3;
                    continue;
                }
                if chars.get(i + 1) == Some(&']') {
                    // `[]` never matches.
                    out.push_str("[^\\s\\S]");
                    i += 2;
                    continue;
                }
                in_class = true;
                out.push('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                // A leading `]` would be literal in the regex crate; in JS it closes.
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
                i += 1;
            }
            '[' | '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
                i += 1;
            }
            '-' if in_class => {
                // `--` is set difference in the regex crate.
                if out.ends_with('-') && !out.ends_with("\\-") {
                    out.push_str("\\-");
                } else {
                    out.push('-');
                }
                i += 1;
            }
            '(' if !in_class && chars.get(i + 1) == Some(&'?') => {
                let next: String = chars[i + 2..].iter().take(2).collect();
                if next.starts_with('=') || next.starts_with('!') || next == "<=" || next == "<!" {
                    return Err("look-around assertions are not supported".to_owned());
                }
                out.push('(');
                i += 1;
            }
            '#' | ' ' if !in_class => {
                push_literal(&mut out, c);
                i += 1;
            }
            _ => {
                if in_class && c != '^' {
                    if is_rust_meta(c) && c != '-' {
                        out.push('\\');
                        out.push(c);
                    } else {
                        out.push(c);
                    }
                } else {
                    out.push(c);
                }
                i += 1;
            }
        }
    }
    if in_class {
        return Err("Unterminated character class".to_owned());
    }
    Ok(out)
}
