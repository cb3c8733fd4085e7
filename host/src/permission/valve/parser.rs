//! Rule validation (spec §3.4 rules 2–6) and the Pratt parser that turns a
//! rule into a compact AST, resolved against the rule's scope once.

use super::lexer::{Tok, Token, tokenize};
use super::regex::JsRegex;

/// Functions a rule may call (spec §3.4 rule 4).
pub(crate) const ALLOWED_FUNCTIONS: &[&str] = &[
    "_",
    "startsWith",
    "endsWith",
    "includes",
    "indexOf",
    "match",
    "toUpperCase",
    "toLowerCase",
    "trim",
];

/// A rule variable (a parameter of the reference's rule function).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Var {
    User,
    /// `user.id`, `user.isAuthenticated`, `user.data` (resolved at compile time).
    UserId,
    UserIsAuthenticated,
    UserData,
    Data,
    OldData,
    Now,
    Action,
    Name,
    /// A path capture, by capture-group index.
    Path(u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnOp {
    Not,
    Neg,
    Plus,
    BitNot,
    TypeOf,
    Void,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Pow,
    Eq,
    Ne,
    StrictEq,
    StrictNe,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    Shr,
    UShr,
}

/// The string/array methods a rule may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    StartsWith,
    EndsWith,
    Includes,
    IndexOf,
    Match,
    ToUpperCase,
    ToLowerCase,
    Trim,
}

impl Method {
    fn from_name(name: &str) -> Option<Method> {
        Some(match name {
            "startsWith" => Method::StartsWith,
            "endsWith" => Method::EndsWith,
            "includes" => Method::Includes,
            "indexOf" => Method::IndexOf,
            "match" => Method::Match,
            "toUpperCase" => Method::ToUpperCase,
            "toLowerCase" => Method::ToLowerCase,
            "trim" => Method::Trim,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Method::StartsWith => "startsWith",
            Method::EndsWith => "endsWith",
            Method::Includes => "includes",
            Method::IndexOf => "indexOf",
            Method::Match => "match",
            Method::ToUpperCase => "toUpperCase",
            Method::ToLowerCase => "toLowerCase",
            Method::Trim => "trim",
        }
    }
}

/// A method call `obj.method(args)`.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) obj: Expr,
    pub(crate) method: Method,
    pub(crate) args: Box<[Expr]>,
    /// `obj?.method(…)`
    pub(crate) optional_obj: bool,
    /// `obj.method?.(…)`
    pub(crate) optional_call: bool,
    /// Source text of the callee, for "… is not a function".
    pub(crate) callee: Box<str>,
    /// `match('literal')`: the argument compiled once.
    pub(crate) regex_arg: Option<Box<JsRegex>>,
}

/// Expression AST.
#[derive(Debug)]
pub(crate) enum Expr {
    Undefined,
    Null,
    Bool(bool),
    Num(f64),
    Str(Box<str>),
    Regex(Box<JsRegex>),
    Array(Box<[Expr]>),
    Template(Box<[Box<str>]>, Box<[Expr]>),
    Var(Var),
    Member(Box<Expr>, Box<str>, bool),
    Index(Box<Expr>, Box<Expr>, bool),
    Call(Box<Call>),
    /// `_(name, …ignored)`
    CrossRef(Box<Expr>, Box<[Expr]>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Nullish(Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    Seq(Box<[Expr]>),
    /// An optional chain: a `?.` inside short-circuits the whole chain to `undefined`.
    Chain(Box<Expr>),
    /// Parser-internal: the bare identifier `_` before it is called.
    Underscore,
}

/// A successfully parsed rule and what it references.
#[derive(Debug)]
pub(crate) struct ParsedRule {
    pub(crate) expr: Expr,
    pub(crate) uses_data: bool,
    pub(crate) uses_old_data: bool,
    pub(crate) uses_cross_references: bool,
}

/// Whether the rule's section/type provides `data` / `oldData`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Availability {
    pub(crate) data: bool,
    pub(crate) old_data: bool,
    pub(crate) rule_type: &'static str,
    pub(crate) section: &'static str,
}

/// Validates and compiles one rule string (spec §3.4 validation rules 1–6,
/// in that order). `vars` are the path variables of the pattern (`$name`,
/// in capture-group order). The error is the spec's reason string.
pub(crate) fn compile_rule(
    src: &str,
    vars: &[String],
    avail: Availability,
) -> Result<ParsedRule, String> {
    if src.is_empty() {
        return Err("rule can't be empty".to_owned());
    }
    let (tokens, lex_error) = tokenize(src);
    if any_token(&tokens, &|toks, i| {
        matches!(toks[i].tok, Tok::Keyword("new")) && !after_dot(toks, i)
    }) {
        return Err("rule can't contain the new keyword".to_owned());
    }
    if any_token(&tokens, &|toks, i| {
        (matches!(toks[i].tok, Tok::Keyword("function")) && !after_dot(toks, i))
            || toks[i].is_punct("=>")
    }) {
        return Err("rule can't contain user functions".to_owned());
    }
    check_call_sites(&tokens)?;
    if let Some(e) = lex_error {
        return Err(e);
    }
    let mut p = Parser {
        src,
        toks: &tokens,
        pos: 0,
        vars,
        semantic: Vec::new(),
        uses_data: false,
        uses_old_data: false,
        uses_cross_references: false,
        depth: 0,
    };
    let expr = p.program()?;
    if p.uses_old_data && !avail.old_data {
        return Err(format!(
            "rule {} for {} does not support oldData",
            avail.rule_type, avail.section
        ));
    }
    if p.uses_data && !avail.data {
        return Err(format!(
            "rule {} for {} does not support data",
            avail.rule_type, avail.section
        ));
    }
    if let Some(e) = p.semantic.into_iter().next() {
        return Err(e);
    }
    Ok(ParsedRule {
        expr,
        uses_data: p.uses_data,
        uses_old_data: p.uses_old_data,
        uses_cross_references: p.uses_cross_references,
    })
}

fn after_dot(toks: &[Token], i: usize) -> bool {
    i > 0 && (toks[i - 1].is_punct(".") || toks[i - 1].is_punct("?."))
}

/// Whether `pred` holds for any token, including tokens inside template
/// substitutions.
fn any_token(toks: &[Token], pred: &dyn Fn(&[Token], usize) -> bool) -> bool {
    (0..toks.len()).any(|i| {
        pred(toks, i)
            || matches!(&toks[i].tok, Tok::Template(_, exprs)
                if exprs.iter().any(|inner| any_token(inner, pred)))
    })
}

/// Spec §3.4 rule 4: every call site must name an allowed function. A call
/// site is an identifier (or a property name, or a quoted name in brackets)
/// followed by `(`; keywords such as `typeof (x)` are operators, not calls.
fn check_call_sites(toks: &[Token]) -> Result<(), String> {
    for i in 0..toks.len() {
        if let Tok::Template(_, exprs) = &toks[i].tok {
            for inner in exprs {
                check_call_sites(inner)?;
            }
        }
        if !toks[i].is_punct("(") || i == 0 {
            continue;
        }
        let mut j = i - 1;
        if toks[j].is_punct("?.") {
            if j == 0 {
                continue;
            }
            j -= 1;
        }
        let name: Option<&str> = match &toks[j].tok {
            Tok::Ident(n) => Some(n),
            Tok::Keyword(k) if after_dot(toks, j) => Some(k),
            Tok::Punct("]") if j >= 2 && toks[j - 2].is_punct("[") => match &toks[j - 1].tok {
                Tok::Str(s) => Some(s),
                Tok::Template(parts, exprs) if exprs.is_empty() => Some(&parts[0]),
                _ => None,
            },
            _ => None,
        };
        if let Some(n) = name
            && !ALLOWED_FUNCTIONS.contains(&n)
        {
            return Err(format!("function {n} is not supported"));
        }
    }
    Ok(())
}

fn unexpected(t: &Token) -> String {
    match &t.tok {
        Tok::Eof => "SyntaxError: Unexpected end of input".to_owned(),
        Tok::Ident(_) => "SyntaxError: Unexpected identifier".to_owned(),
        Tok::Num(_) => "SyntaxError: Unexpected number".to_owned(),
        Tok::Str(_) => "SyntaxError: Unexpected string".to_owned(),
        Tok::Template(..) => "SyntaxError: Unexpected template string".to_owned(),
        Tok::Regex(..) => "SyntaxError: Unexpected regular expression".to_owned(),
        Tok::Keyword(k) => format!("SyntaxError: Unexpected token '{k}'"),
        Tok::Punct(p) => format!("SyntaxError: Unexpected token '{p}'"),
    }
}

const ASSIGNMENT_OPS: &[&str] = &[
    "=", "+=", "-=", "*=", "/=", "%=", "**=", "<<=", ">>=", ">>>=", "&=", "|=", "^=", "&&=", "||=",
    "??=",
];

enum Op {
    Bin(BinOp),
    And,
    Or,
    Nullish,
}

fn binary_op(t: &Tok) -> Option<(u8, Op)> {
    Some(match t {
        Tok::Punct("??") => (1, Op::Nullish),
        Tok::Punct("||") => (1, Op::Or),
        Tok::Punct("&&") => (2, Op::And),
        Tok::Punct("|") => (3, Op::Bin(BinOp::BitOr)),
        Tok::Punct("^") => (4, Op::Bin(BinOp::BitXor)),
        Tok::Punct("&") => (5, Op::Bin(BinOp::BitAnd)),
        Tok::Punct("==") => (6, Op::Bin(BinOp::Eq)),
        Tok::Punct("!=") => (6, Op::Bin(BinOp::Ne)),
        Tok::Punct("===") => (6, Op::Bin(BinOp::StrictEq)),
        Tok::Punct("!==") => (6, Op::Bin(BinOp::StrictNe)),
        Tok::Punct("<") => (7, Op::Bin(BinOp::Lt)),
        Tok::Punct("<=") => (7, Op::Bin(BinOp::Le)),
        Tok::Punct(">") => (7, Op::Bin(BinOp::Gt)),
        Tok::Punct(">=") => (7, Op::Bin(BinOp::Ge)),
        Tok::Keyword("in") => (7, Op::Bin(BinOp::In)),
        Tok::Punct("<<") => (8, Op::Bin(BinOp::Shl)),
        Tok::Punct(">>") => (8, Op::Bin(BinOp::Shr)),
        Tok::Punct(">>>") => (8, Op::Bin(BinOp::UShr)),
        Tok::Punct("+") => (9, Op::Bin(BinOp::Add)),
        Tok::Punct("-") => (9, Op::Bin(BinOp::Sub)),
        Tok::Punct("*") => (10, Op::Bin(BinOp::Mul)),
        Tok::Punct("/") => (10, Op::Bin(BinOp::Div)),
        Tok::Punct("%") => (10, Op::Bin(BinOp::Rem)),
        Tok::Punct("**") => (11, Op::Bin(BinOp::Pow)),
        _ => return None,
    })
}

struct Parser<'s, 't> {
    src: &'s str,
    toks: &'t [Token],
    pos: usize,
    vars: &'t [String],
    /// Problems found while resolving names; reported after the syntax and
    /// data/oldData checks.
    semantic: Vec<String>,
    uses_data: bool,
    uses_old_data: bool,
    uses_cross_references: bool,
    /// Current nesting depth (bounded, so a pathological rule cannot
    /// overflow the stack of the parser or the evaluator).
    depth: usize,
}

/// Maximum expression nesting depth.
pub(crate) const MAX_DEPTH: usize = 200;

type PResult<T> = Result<T, String>;

impl Parser<'_, '_> {
    fn peek(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn advance(&mut self) -> &Token {
        let t = &self.toks[self.pos.min(self.toks.len() - 1)];
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, p: &str) -> bool {
        if self.peek().is_punct(p) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str) -> PResult<()> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(unexpected(self.peek()))
        }
    }

    fn program(&mut self) -> PResult<Expr> {
        let e = self.expression()?;
        while self.eat(";") {}
        if !matches!(self.peek().tok, Tok::Eof) {
            return Err(unexpected(self.peek()));
        }
        Ok(e)
    }

    /// Comma-separated sequence.
    fn expression(&mut self) -> PResult<Expr> {
        let first = self.assignment()?;
        if !self.peek().is_punct(",") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat(",") {
            items.push(self.assignment()?);
        }
        Ok(Expr::Seq(items.into_boxed_slice()))
    }

    /// Conditional expression (assignment is not supported).
    fn assignment(&mut self) -> PResult<Expr> {
        let cond = self.binary(1)?;
        let e = if self.eat("?") {
            let then = self.assignment()?;
            self.expect(":")?;
            let other = self.assignment()?;
            Expr::Cond(Box::new(cond), Box::new(then), Box::new(other))
        } else {
            cond
        };
        if let Tok::Punct(p) = self.peek().tok
            && ASSIGNMENT_OPS.contains(&p)
        {
            return Err(format!(
                "SyntaxError: assignment ('{p}') is not supported; use === to compare"
            ));
        }
        Ok(e)
    }

    fn binary(&mut self, min_prec: u8) -> PResult<Expr> {
        self.chained(|p, extra| p.binary_chain(min_prec, extra))
    }

    fn binary_chain(&mut self, min_prec: u8, extra: &mut usize) -> PResult<Expr> {
        let (mut lhs, mut lhs_unary) = self.unary()?;
        loop {
            if matches!(self.peek().tok, Tok::Keyword("instanceof")) {
                return Err("SyntaxError: instanceof is not supported".to_owned());
            }
            let Some((prec, op)) = binary_op(&self.peek().tok) else {
                break;
            };
            if prec < min_prec {
                break;
            }
            let right_assoc = matches!(op, Op::Bin(BinOp::Pow));
            if right_assoc && lhs_unary {
                return Err("SyntaxError: Unary operator used immediately before exponentiation expression. Parenthesis must be used to disambiguate operator precedence".to_owned());
            }
            self.advance();
            self.deeper()?;
            *extra += 1;
            let rhs = self.binary(if right_assoc { prec } else { prec + 1 })?;
            let (l, r) = (Box::new(lhs), Box::new(rhs));
            lhs = match op {
                Op::Bin(b) => Expr::Binary(b, l, r),
                Op::And => Expr::And(l, r),
                Op::Or => Expr::Or(l, r),
                Op::Nullish => Expr::Nullish(l, r),
            };
            lhs_unary = false;
        }
        Ok(lhs)
    }

    /// Returns the expression and whether it is an unparenthesised unary
    /// expression (which may not be the base of `**`).
    fn unary(&mut self) -> PResult<(Expr, bool)> {
        self.deeper()?;
        let result = self.unary_inner();
        self.depth -= 1;
        result
    }

    /// Enters one more nesting level (undone by the caller).
    fn deeper(&mut self) -> PResult<()> {
        if self.depth >= MAX_DEPTH {
            return Err("SyntaxError: rule nests too deeply".to_owned());
        }
        self.depth += 1;
        Ok(())
    }

    /// Runs `f` with `extra` more nesting levels counted; used by the loops
    /// that build left-deep trees (`a + b + c`, `a.b.c`), which the
    /// evaluator recurses over.
    fn chained<T>(&mut self, f: impl FnOnce(&mut Self, &mut usize) -> PResult<T>) -> PResult<T> {
        let mut extra = 0;
        let result = f(self, &mut extra);
        self.depth -= extra;
        result
    }

    fn unary_inner(&mut self) -> PResult<(Expr, bool)> {
        let op = match &self.peek().tok {
            Tok::Punct("!") => UnOp::Not,
            Tok::Punct("-") => UnOp::Neg,
            Tok::Punct("+") => UnOp::Plus,
            Tok::Punct("~") => UnOp::BitNot,
            Tok::Keyword("typeof") => UnOp::TypeOf,
            Tok::Keyword("void") => UnOp::Void,
            Tok::Keyword("delete") => {
                return Err("SyntaxError: delete is not supported".to_owned());
            }
            Tok::Punct("++" | "--") => {
                return Err("SyntaxError: increment/decrement is not supported".to_owned());
            }
            _ => return Ok((self.postfix()?, false)),
        };
        self.advance();
        let (operand, _) = self.unary()?;
        let e = match (op, operand) {
            (UnOp::Neg, Expr::Num(n)) => Expr::Num(-n),
            (op, operand) => Expr::Unary(op, Box::new(operand)),
        };
        Ok((e, true))
    }

    fn callee_text(&self, start: usize) -> String {
        let end = self.toks[self.pos.saturating_sub(1)].end;
        let begin = self.toks[start].start;
        self.src.get(begin..end).unwrap_or("").to_owned()
    }

    fn property_name(&mut self) -> PResult<Box<str>> {
        let t = self.advance().clone();
        match t.tok {
            Tok::Ident(n) => Ok(n.into()),
            Tok::Keyword(k) => Ok(k.into()),
            _ => Err(unexpected(&t)),
        }
    }

    fn postfix(&mut self) -> PResult<Expr> {
        self.chained(Self::postfix_chain)
    }

    fn postfix_chain(&mut self, extra: &mut usize) -> PResult<Expr> {
        let start = self.pos;
        let mut e = self.primary()?;
        let mut chain = false;
        loop {
            let t = self.peek();
            if t.is_punct(".") || t.is_punct("?.") || t.is_punct("[") || t.is_punct("(") {
                self.deeper()?;
                *extra += 1;
            }
            let t = self.peek();
            if t.is_punct(".") {
                self.advance();
                let name = self.property_name()?;
                e = self.member(e, name, false)?;
            } else if t.is_punct("?.") {
                self.advance();
                chain = true;
                if self.eat("[") {
                    e = self.index(e, true)?;
                } else if self.peek().is_punct("(") {
                    let callee = self.callee_text(start);
                    self.advance();
                    let args = self.arguments()?;
                    e = self.call(e, args, callee, true)?;
                } else {
                    let name = self.property_name()?;
                    e = self.member(e, name, true)?;
                }
            } else if t.is_punct("[") {
                self.advance();
                e = self.index(e, false)?;
            } else if t.is_punct("(") {
                let callee = self.callee_text(start);
                self.advance();
                let args = self.arguments()?;
                e = self.call(e, args, callee, false)?;
            } else if matches!(t.tok, Tok::Template(..)) {
                return Err("SyntaxError: tagged templates are not supported".to_owned());
            } else {
                break;
            }
        }
        if matches!(e, Expr::Underscore) {
            return Err(underscore_error());
        }
        Ok(if chain { Expr::Chain(Box::new(e)) } else { e })
    }

    fn member(&mut self, obj: Expr, name: Box<str>, optional: bool) -> PResult<Expr> {
        if matches!(obj, Expr::Underscore) {
            return Err(underscore_error());
        }
        if let Expr::Var(Var::User) = obj {
            match &*name {
                "id" => return Ok(Expr::Var(Var::UserId)),
                "isAuthenticated" => return Ok(Expr::Var(Var::UserIsAuthenticated)),
                "data" => return Ok(Expr::Var(Var::UserData)),
                _ => {}
            }
        }
        Ok(Expr::Member(Box::new(obj), name, optional))
    }

    fn index(&mut self, obj: Expr, optional: bool) -> PResult<Expr> {
        if matches!(obj, Expr::Underscore) {
            return Err(underscore_error());
        }
        let key = self.expression()?;
        self.expect("]")?;
        Ok(Expr::Index(Box::new(obj), Box::new(key), optional))
    }

    fn arguments(&mut self) -> PResult<Vec<Expr>> {
        let mut args = Vec::new();
        loop {
            if self.eat(")") {
                return Ok(args);
            }
            if self.peek().is_punct("...") {
                return Err("SyntaxError: spread arguments are not supported".to_owned());
            }
            args.push(self.assignment()?);
            if self.eat(")") {
                return Ok(args);
            }
            if !self.eat(",") {
                return Err("SyntaxError: missing ) after argument list".to_owned());
            }
        }
    }

    fn call(
        &mut self,
        callee: Expr,
        args: Vec<Expr>,
        callee_text: String,
        optional_call: bool,
    ) -> PResult<Expr> {
        let (obj, name, optional_obj) = match callee {
            Expr::Underscore => {
                self.uses_cross_references = true;
                let mut args = args.into_iter();
                let first = args.next().unwrap_or(Expr::Undefined);
                return Ok(Expr::CrossRef(Box::new(first), args.collect()));
            }
            Expr::Member(obj, name, opt) => (*obj, name, opt),
            Expr::Index(obj, key, opt) => match *key {
                Expr::Str(s) => (*obj, s, opt),
                _ => return Err(format!("function {callee_text} is not supported")),
            },
            _ => return Err(format!("function {callee_text} is not supported")),
        };
        let Some(method) = Method::from_name(&name) else {
            return Err(format!("function {name} is not supported"));
        };
        let regex_arg = match (method, args.first()) {
            (Method::Match, Some(Expr::Str(s))) => Some(Box::new(JsRegex::new(s, "")?)),
            _ => None,
        };
        Ok(Expr::Call(Box::new(Call {
            obj,
            method,
            args: args.into_boxed_slice(),
            optional_obj,
            optional_call,
            callee: callee_text.into(),
            regex_arg,
        })))
    }

    fn primary(&mut self) -> PResult<Expr> {
        let t = self.advance().clone();
        Ok(match t.tok {
            Tok::Num(n) => Expr::Num(n),
            Tok::Str(s) => Expr::Str(s.into()),
            Tok::Regex(body, flags) => Expr::Regex(Box::new(JsRegex::new(&body, &flags)?)),
            Tok::Template(parts, exprs) => {
                let mut compiled = Vec::with_capacity(exprs.len());
                for inner in &exprs {
                    compiled.push(self.sub_expression(inner)?);
                }
                Expr::Template(
                    parts.into_iter().map(String::into_boxed_str).collect(),
                    compiled.into_boxed_slice(),
                )
            }
            Tok::Keyword("true") => Expr::Bool(true),
            Tok::Keyword("false") => Expr::Bool(false),
            Tok::Keyword("null") => Expr::Null,
            Tok::Ident(name) => self.identifier(&name),
            Tok::Punct("(") => {
                let e = self.expression()?;
                self.expect(")")?;
                e
            }
            Tok::Punct("[") => self.array()?,
            Tok::Punct("{") => {
                return Err("SyntaxError: object literals are not supported".to_owned());
            }
            _ => return Err(unexpected(&t)),
        })
    }

    fn sub_expression(&mut self, toks: &[Token]) -> PResult<Expr> {
        let mut p = Parser {
            src: self.src,
            toks,
            pos: 0,
            vars: self.vars,
            semantic: Vec::new(),
            uses_data: false,
            uses_old_data: false,
            uses_cross_references: false,
            depth: self.depth,
        };
        let e = p.expression()?;
        if !matches!(p.peek().tok, Tok::Eof) {
            return Err(unexpected(p.peek()));
        }
        self.semantic.append(&mut p.semantic);
        self.uses_data |= p.uses_data;
        self.uses_old_data |= p.uses_old_data;
        self.uses_cross_references |= p.uses_cross_references;
        Ok(e)
    }

    fn array(&mut self) -> PResult<Expr> {
        let mut items = Vec::new();
        loop {
            if self.eat("]") {
                break;
            }
            if self.eat(",") {
                items.push(Expr::Undefined); // a hole
                continue;
            }
            if self.peek().is_punct("...") {
                return Err("SyntaxError: spread elements are not supported".to_owned());
            }
            items.push(self.assignment()?);
            if self.eat("]") {
                break;
            }
            self.expect(",")?;
        }
        Ok(Expr::Array(items.into_boxed_slice()))
    }

    fn identifier(&mut self, name: &str) -> Expr {
        match name {
            "user" => Expr::Var(Var::User),
            "data" => {
                self.uses_data = true;
                Expr::Var(Var::Data)
            }
            "oldData" => {
                self.uses_old_data = true;
                Expr::Var(Var::OldData)
            }
            "now" => Expr::Var(Var::Now),
            "action" => Expr::Var(Var::Action),
            "name" => Expr::Var(Var::Name),
            "undefined" => Expr::Undefined,
            "NaN" => Expr::Num(f64::NAN),
            "Infinity" => Expr::Num(f64::INFINITY),
            "_" => Expr::Underscore,
            _ => {
                // Duplicate names: the last capture wins (as duplicate
                // parameters of a sloppy-mode JS function).
                if let Some(i) = self.vars.iter().rposition(|v| v == name) {
                    return Expr::Var(Var::Path(i as u16));
                }
                self.semantic
                    .push(format!("ReferenceError: {name} is not defined"));
                Expr::Undefined
            }
        }
    }
}

fn underscore_error() -> String {
    "SyntaxError: _ can only be called, as _(recordName)".to_owned()
}
