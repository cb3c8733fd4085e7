//! Tokenizer for rule expressions (a JavaScript expression subset).

/// JavaScript reserved words (and the literal keywords).
const KEYWORDS: &[&str] = &[
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "import",
    "in",
    "instanceof",
    "let",
    "new",
    "null",
    "return",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
];

/// Punctuators, longest first.
const PUNCTUATORS: &[&str] = &[
    ">>>=", "...", "===", "!==", "**=", "<<=", ">>=", ">>>", "&&=", "||=", "??=", "=>", "==", "!=",
    "<=", ">=", "&&", "||", "??", "?.", "**", "++", "--", "<<", ">>", "+=", "-=", "*=", "/=", "%=",
    "&=", "|=", "^=", "{", "}", "(", ")", "[", "]", ";", ",", "<", ">", "+", "-", "*", "/", "%",
    "&", "|", "^", "!", "~", "?", ":", "=", ".", "@", "#",
];

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Keyword(&'static str),
    Num(f64),
    Str(String),
    /// A template literal: cooked text parts and the token lists of the
    /// `${…}` substitutions (`parts.len() == exprs.len() + 1`).
    Template(Vec<String>, Vec<Vec<Token>>),
    Regex(String, String),
    Punct(&'static str),
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    /// Byte range in the rule source.
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Token {
    pub(crate) fn is_punct(&self, p: &str) -> bool {
        matches!(self.tok, Tok::Punct(q) if q == p)
    }
}

/// Tokenizes `src`. On a lexical error the tokens read so far are returned
/// together with the error message (the validator still scans them for the
/// checks that come before the syntax check).
pub(crate) fn tokenize(src: &str) -> (Vec<Token>, Option<String>) {
    let mut lx = Lexer {
        src,
        pos: 0,
        depth: 0,
    };
    let mut toks = Vec::new();
    let err = lx.run(&mut toks, false).err();
    if err.is_none() {
        toks.push(Token {
            tok: Tok::Eof,
            start: src.len(),
            end: src.len(),
        });
    }
    (toks, err)
}

const UNEXPECTED: &str = "SyntaxError: Invalid or unexpected token";

fn is_id_start(c: char) -> bool {
    c == '$' || c == '_' || c.is_alphabetic()
}

fn is_id_continue(c: char) -> bool {
    c == '$' || c == '_' || c == '\u{200c}' || c == '\u{200d}' || c.is_alphanumeric()
}

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    /// Template-substitution nesting depth.
    depth: usize,
}

/// Maximum nesting of template literals inside `${…}`.
const MAX_TEMPLATE_DEPTH: usize = 32;

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.src[self.pos..].chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Reads tokens into `out`. With `in_template`, stops after the `}` that
    /// closes a `${` substitution (not pushed).
    fn run(&mut self, out: &mut Vec<Token>, in_template: bool) -> Result<(), String> {
        let mut depth = 0usize;
        loop {
            self.skip_trivia()?;
            let start = self.pos;
            let Some(c) = self.peek() else {
                if in_template {
                    return Err("SyntaxError: Unterminated template literal".to_owned());
                }
                return Ok(());
            };
            let tok = if is_id_start(c) || c == '\\' {
                self.ident()?
            } else if c.is_ascii_digit()
                || (c == '.' && self.peek_at(1).is_some_and(|d| d.is_ascii_digit()))
            {
                self.number()?
            } else if c == '"' || c == '\'' {
                self.string(c)?
            } else if c == '`' {
                self.template()?
            } else if c == '/' && regex_allowed(out) {
                self.regex()?
            } else {
                let rest = &self.src[self.pos..];
                let p = PUNCTUATORS
                    .iter()
                    .find(|p| rest.starts_with(**p))
                    .copied()
                    .ok_or_else(|| UNEXPECTED.to_owned())?;
                // `?.5` is `?` followed by `.5`.
                let p = if p == "?." && rest[2..].starts_with(|d: char| d.is_ascii_digit()) {
                    "?"
                } else {
                    p
                };
                if in_template {
                    if p == "{" {
                        depth += 1;
                    } else if p == "}" {
                        if depth == 0 {
                            self.pos += 1;
                            return Ok(());
                        }
                        depth -= 1;
                    }
                }
                self.pos += p.len();
                Tok::Punct(p)
            };
            out.push(Token {
                tok,
                start,
                end: self.pos,
            });
        }
    }

    fn skip_trivia(&mut self) -> Result<(), String> {
        loop {
            let rest = &self.src[self.pos..];
            if let Some(c) = rest.chars().next()
                && (super::value::is_js_whitespace(c) || c == '\u{85}')
            {
                self.pos += c.len_utf8();
            } else if rest.starts_with("//") {
                self.pos += rest
                    .find(['\n', '\r', '\u{2028}', '\u{2029}'])
                    .unwrap_or(rest.len());
            } else if let Some(body) = rest.strip_prefix("/*") {
                let end = body.find("*/").ok_or_else(|| UNEXPECTED.to_owned())?;
                self.pos += end + 4;
            } else {
                return Ok(());
            }
        }
    }

    fn ident(&mut self) -> Result<Tok, String> {
        let mut name = String::new();
        let mut escaped = false;
        while let Some(c) = self.peek() {
            if c == '\\' {
                // `\uXXXX` in identifiers.
                self.bump();
                if self.bump() != Some('u') {
                    return Err(UNEXPECTED.to_owned());
                }
                let ch = self.unicode_escape()?;
                if !(if name.is_empty() {
                    is_id_start(ch)
                } else {
                    is_id_continue(ch)
                }) {
                    return Err(UNEXPECTED.to_owned());
                }
                name.push(ch);
                escaped = true;
            } else if (name.is_empty() && is_id_start(c)) || (!name.is_empty() && is_id_continue(c))
            {
                name.push(c);
                self.bump();
            } else {
                break;
            }
        }
        if let Some(kw) = KEYWORDS.iter().find(|k| **k == name) {
            if escaped {
                return Err("SyntaxError: Keyword must not contain escaped characters".to_owned());
            }
            return Ok(Tok::Keyword(kw));
        }
        Ok(Tok::Ident(name))
    }

    fn number(&mut self) -> Result<Tok, String> {
        let start = self.pos;
        let rest = &self.src[self.pos..];
        let radix = match rest.get(..2) {
            Some("0x" | "0X") => 16,
            Some("0o" | "0O") => 8,
            Some("0b" | "0B") => 2,
            _ => 10,
        };
        let value = if radix != 10 {
            self.pos += 2;
            let mut acc = 0.0f64;
            let mut any = false;
            while let Some(c) = self.peek() {
                if c == '_' {
                    self.bump();
                    continue;
                }
                match c.to_digit(radix) {
                    Some(d) => {
                        acc = acc * f64::from(radix) + f64::from(d);
                        any = true;
                        self.bump();
                    }
                    None => break,
                }
            }
            if !any {
                return Err(UNEXPECTED.to_owned());
            }
            acc
        } else {
            let b = self.src.as_bytes();
            let mut text = String::new();
            let digits = |lx: &mut Self, text: &mut String| {
                while lx.pos < b.len() && (b[lx.pos].is_ascii_digit() || b[lx.pos] == b'_') {
                    if b[lx.pos] != b'_' {
                        text.push(b[lx.pos] as char);
                    }
                    lx.pos += 1;
                }
            };
            digits(self, &mut text);
            // Legacy octal (`017`), as sloppy-mode JavaScript reads it.
            if text.len() > 1 && text.starts_with('0') && text.bytes().all(|d| d < b'8') {
                let v = text.bytes().fold(0.0, |a, d| a * 8.0 + f64::from(d - b'0'));
                return self.after_number(v);
            }
            if self.pos < b.len() && b[self.pos] == b'.' {
                text.push('.');
                self.pos += 1;
                digits(self, &mut text);
            }
            if self.pos < b.len() && (b[self.pos] == b'e' || b[self.pos] == b'E') {
                let save = self.pos;
                let mut exp = String::from("e");
                self.pos += 1;
                if self.pos < b.len() && (b[self.pos] == b'+' || b[self.pos] == b'-') {
                    exp.push(b[self.pos] as char);
                    self.pos += 1;
                }
                let before = exp.len();
                digits(self, &mut exp);
                if exp.len() == before {
                    self.pos = save;
                    return Err(UNEXPECTED.to_owned());
                }
                text.push_str(&exp);
            }
            if text.starts_with('.') {
                text.insert(0, '0');
            }
            text.parse::<f64>().map_err(|_| UNEXPECTED.to_owned())?
        };
        if self.peek() == Some('n') {
            self.pos = start;
            return Err("SyntaxError: BigInt literals are not supported".to_owned());
        }
        self.after_number(value)
    }

    fn after_number(&mut self, v: f64) -> Result<Tok, String> {
        match self.peek() {
            Some(c) if is_id_start(c) || c.is_ascii_digit() => {
                Err("SyntaxError: Invalid or unexpected token".to_owned())
            }
            _ => Ok(Tok::Num(v)),
        }
    }

    fn unicode_escape(&mut self) -> Result<char, String> {
        let hex = |lx: &mut Self, n: usize| -> Result<u32, String> {
            let s = lx.src.get(lx.pos..lx.pos + n).ok_or(UNEXPECTED)?;
            let v = u32::from_str_radix(s, 16).map_err(|_| UNEXPECTED)?;
            lx.pos += n;
            Ok(v)
        };
        let code = if self.peek() == Some('{') {
            self.bump();
            let end = self.src[self.pos..].find('}').ok_or(UNEXPECTED)?;
            let v = u32::from_str_radix(&self.src[self.pos..self.pos + end], 16)
                .map_err(|_| UNEXPECTED)?;
            self.pos += end + 1;
            v
        } else {
            let hi = hex(self, 4)?;
            if (0xD800..0xDC00).contains(&hi) && self.src[self.pos..].starts_with("\\u") {
                let save = self.pos;
                self.pos += 2;
                match hex(self, 4) {
                    Ok(lo) if (0xDC00..0xE000).contains(&lo) => {
                        return Ok(
                            char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                                .unwrap_or(char::REPLACEMENT_CHARACTER),
                        );
                    }
                    _ => self.pos = save,
                }
            }
            hi
        };
        if code > 0x10FFFF {
            return Err("SyntaxError: Undefined Unicode code-point".to_owned());
        }
        Ok(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    /// An escape sequence after `\` in a string or template.
    fn escape(&mut self, out: &mut String) -> Result<(), String> {
        let Some(c) = self.bump() else {
            return Err(UNEXPECTED.to_owned());
        };
        match c {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '0' if !self.peek().is_some_and(|d| d.is_ascii_digit()) => out.push('\0'),
            'x' => {
                let s = self.src.get(self.pos..self.pos + 2).ok_or(UNEXPECTED)?;
                let v = u32::from_str_radix(s, 16).map_err(|_| UNEXPECTED)?;
                self.pos += 2;
                out.push(char::from_u32(v).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            'u' => out.push(self.unicode_escape()?),
            '\r' => {
                if self.peek() == Some('\n') {
                    self.bump();
                }
            }
            '\n' | '\u{2028}' | '\u{2029}' => {}
            other => out.push(other),
        }
        Ok(())
    }

    fn string(&mut self, quote: char) -> Result<Tok, String> {
        self.bump();
        let mut s = String::new();
        loop {
            match self.bump() {
                None | Some('\n' | '\r') => return Err(UNEXPECTED.to_owned()),
                Some('\\') => self.escape(&mut s)?,
                Some(c) if c == quote => return Ok(Tok::Str(s)),
                Some(c) => s.push(c),
            }
        }
    }

    fn template(&mut self) -> Result<Tok, String> {
        self.bump();
        let mut parts = Vec::new();
        let mut exprs = Vec::new();
        let mut cur = String::new();
        loop {
            match self.bump() {
                None => return Err("SyntaxError: Unterminated template literal".to_owned()),
                Some('`') => {
                    parts.push(cur);
                    return Ok(Tok::Template(parts, exprs));
                }
                Some('\\') => self.escape(&mut cur)?,
                Some('$') if self.peek() == Some('{') => {
                    self.bump();
                    parts.push(std::mem::take(&mut cur));
                    if self.depth >= MAX_TEMPLATE_DEPTH {
                        return Err("SyntaxError: rule nests too deeply".to_owned());
                    }
                    let mut inner = Vec::new();
                    self.depth += 1;
                    let r = self.run(&mut inner, true);
                    self.depth -= 1;
                    r?;
                    inner.push(Token {
                        tok: Tok::Eof,
                        start: self.pos - 1,
                        end: self.pos - 1,
                    });
                    exprs.push(inner);
                }
                Some('\r') => {
                    // Template line terminators are normalised to \n.
                    if self.peek() == Some('\n') {
                        self.bump();
                    }
                    cur.push('\n');
                }
                Some(c) => cur.push(c),
            }
        }
    }

    fn regex(&mut self) -> Result<Tok, String> {
        self.bump();
        let mut body = String::new();
        let mut in_class = false;
        loop {
            match self.bump() {
                None | Some('\n' | '\r' | '\u{2028}' | '\u{2029}') => {
                    return Err("SyntaxError: Invalid regular expression: missing /".to_owned());
                }
                Some('\\') => {
                    body.push('\\');
                    match self.bump() {
                        None | Some('\n' | '\r') => {
                            return Err(
                                "SyntaxError: Invalid regular expression: missing /".to_owned()
                            );
                        }
                        Some(c) => body.push(c),
                    }
                }
                Some('[') => {
                    in_class = true;
                    body.push('[');
                }
                Some(']') => {
                    in_class = false;
                    body.push(']');
                }
                Some('/') if !in_class => break,
                Some(c) => body.push(c),
            }
        }
        let mut flags = String::new();
        while let Some(c) = self.peek() {
            if is_id_continue(c) {
                flags.push(c);
                self.bump();
            } else {
                break;
            }
        }
        Ok(Tok::Regex(body, flags))
    }
}

/// Whether a `/` after `prev` starts a regular expression (rather than
/// being the division operator).
fn regex_allowed(before: &[Token]) -> bool {
    let after_dot = before.len() >= 2
        && (before[before.len() - 2].is_punct(".") || before[before.len() - 2].is_punct("?."));
    match before.last().map(|t| &t.tok) {
        None => true,
        Some(Tok::Ident(_) | Tok::Num(_) | Tok::Str(_) | Tok::Template(..) | Tok::Regex(..)) => {
            false
        }
        // A keyword after `.` is a property name.
        Some(Tok::Keyword(k)) => {
            !after_dot && !matches!(*k, "this" | "super" | "null" | "true" | "false")
        }
        Some(Tok::Punct(p)) => !matches!(*p, ")" | "]" | "}"),
        Some(Tok::Eof) => true,
    }
}
