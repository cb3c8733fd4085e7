//! Tokenizer and parser.

use super::js;
use crate::permission::valve::lexer::{Tok, tokenize};

fn toks(src: &str) -> Vec<Tok> {
    let (t, err) = tokenize(src);
    assert_eq!(err, None, "{src}");
    t.into_iter().map(|t| t.tok).collect()
}

#[test]
fn tokenizes_literals_and_punctuators() {
    assert_eq!(
        toks("a.b===1.5e2&&'x\\'y'||\"z\""),
        vec![
            Tok::Ident("a".into()),
            Tok::Punct("."),
            Tok::Ident("b".into()),
            Tok::Punct("==="),
            Tok::Num(150.0),
            Tok::Punct("&&"),
            Tok::Str("x'y".into()),
            Tok::Punct("||"),
            Tok::Str("z".into()),
            Tok::Eof,
        ]
    );
    assert_eq!(
        toks("$a_1 _ typeof x?.y ?.5"),
        vec![
            Tok::Ident("$a_1".into()),
            Tok::Ident("_".into()),
            Tok::Keyword("typeof"),
            Tok::Ident("x".into()),
            Tok::Punct("?."),
            Tok::Ident("y".into()),
            Tok::Punct("?"),
            Tok::Num(0.5),
            Tok::Eof,
        ]
    );
}

#[test]
fn slash_is_regex_or_division_by_context() {
    assert_eq!(
        toks("a / b / c"),
        vec![
            Tok::Ident("a".into()),
            Tok::Punct("/"),
            Tok::Ident("b".into()),
            Tok::Punct("/"),
            Tok::Ident("c".into()),
            Tok::Eof
        ]
    );
    assert_eq!(
        toks("x.match(/a[/]b\\//gi)"),
        vec![
            Tok::Ident("x".into()),
            Tok::Punct("."),
            Tok::Ident("match".into()),
            Tok::Punct("("),
            Tok::Regex("a[/]b\\/".into(), "gi".into()),
            Tok::Punct(")"),
            Tok::Eof
        ]
    );
    assert_eq!(
        toks("(1) / 2"),
        vec![
            Tok::Punct("("),
            Tok::Num(1.0),
            Tok::Punct(")"),
            Tok::Punct("/"),
            Tok::Num(2.0),
            Tok::Eof
        ]
    );
    // A keyword used as a property name ends an operand.
    assert_eq!(toks("a.in / 2").get(3), Some(&Tok::Punct("/")));
    assert_eq!(
        toks("typeof /x/").get(1),
        Some(&Tok::Regex("x".into(), "".into()))
    );
}

#[test]
fn comments_and_whitespace_are_skipped() {
    assert_eq!(js("1 /* one */ + // rest\n 2"), "3");
    assert_eq!(js("\t1\u{a0}+\u{feff}2\n"), "3");
}

#[test]
fn string_escapes() {
    assert_eq!(js("'\\x41\\u0042\\u{43}\\t'"), "'ABC\t'");
    assert_eq!(js("'\\uD83D\\uDE00' === '\u{1F600}'"), "true");
    assert_eq!(js("'a\\\nb'"), "'ab'");
    assert_eq!(js("'\\q'"), "'q'");
}

#[test]
fn precedence_and_associativity() {
    assert_eq!(js("1 + 2 * 3 - 4 / 2"), "5");
    assert_eq!(js("1 < 2 === true"), "true");
    assert_eq!(js("1 || 0 && 0"), "1");
    assert_eq!(js("!1 === false"), "true");
    assert_eq!(js("-2 * -3"), "6");
    assert_eq!(js("- -1"), "1");
    assert_eq!(js("true ? false ? 1 : 2 : 3"), "2");
    assert_eq!(js("typeof 1 + 1"), "'number1'");
    assert_eq!(js("'b' in data || 'n' in data"), "true");
    assert_eq!(js("1 + 2 === 3 && 'x' !== 'y'"), "true");
    assert_eq!(js("5 > 3 > 1"), "false");
    assert_eq!(js("user.id === $id || user.data.role === 'admin'"), "true");
}

#[test]
fn trailing_semicolons_are_accepted() {
    assert_eq!(js("true;"), "true");
    assert_eq!(js("1 + 1;;"), "2");
}

#[test]
fn syntax_errors_have_v8_style_messages() {
    let cases = [
        ("user.id ===", "SyntaxError: Unexpected end of input"),
        ("user.id user", "SyntaxError: Unexpected identifier"),
        ("1 2", "SyntaxError: Unexpected number"),
        ("a.id 'x'", "SyntaxError: Unexpected string"),
        ("(1", "SyntaxError: Unexpected end of input"),
        ("1)", "SyntaxError: Unexpected token ')'"),
        ("* 2", "SyntaxError: Unexpected token '*'"),
        ("if", "SyntaxError: Unexpected token 'if'"),
        ("'abc", "SyntaxError: Invalid or unexpected token"),
        ("1a", "SyntaxError: Invalid or unexpected token"),
        ("`abc", "SyntaxError: Unterminated template literal"),
        (
            "x.match(/abc)",
            "SyntaxError: Invalid regular expression: missing /",
        ),
        (
            "'a'.match(/(a/)",
            "SyntaxError: Invalid regular expression: /(a/: unclosed group",
        ),
        (
            "'a'.match(/a/z)",
            "SyntaxError: Invalid regular expression flags: /a/z",
        ),
        (
            "'a'.match(/a/gg)",
            "SyntaxError: Invalid regular expression flags: /a/gg",
        ),
        (
            "data.s.startsWith('a'",
            "SyntaxError: missing ) after argument list",
        ),
        (
            "-1 ** 2",
            "SyntaxError: Unary operator used immediately before exponentiation expression. Parenthesis must be used to disambiguate operator precedence",
        ),
        ("#", "SyntaxError: Unexpected token '#'"),
        ("1n", "SyntaxError: BigInt literals are not supported"),
    ];
    for (src, want) in cases {
        assert_eq!(js(src), format!("compile: {want}"), "rule: {src}");
    }
}

#[test]
fn constructs_outside_the_subset_are_rejected() {
    let cases = [
        (
            "user.id = 'x'",
            "SyntaxError: assignment ('=') is not supported; use === to compare",
        ),
        (
            "data.n += 1",
            "SyntaxError: assignment ('+=') is not supported; use === to compare",
        ),
        ("({a: 1})", "SyntaxError: object literals are not supported"),
        ("delete data.n", "SyntaxError: delete is not supported"),
        (
            "++data.n",
            "SyntaxError: increment/decrement is not supported",
        ),
        (
            "data instanceof user",
            "SyntaxError: instanceof is not supported",
        ),
        (
            "[...data.arr]",
            "SyntaxError: spread elements are not supported",
        ),
        ("_`x`", "SyntaxError: tagged templates are not supported"),
        ("_", "SyntaxError: _ can only be called, as _(recordName)"),
        (
            "typeof _",
            "SyntaxError: _ can only be called, as _(recordName)",
        ),
        ("_.x", "SyntaxError: _ can only be called, as _(recordName)"),
        ("Math.PI > 3", "ReferenceError: Math is not defined"),
        ("$other === '1'", "ReferenceError: $other is not defined"),
        ("this.x", "SyntaxError: Unexpected token 'this'"),
        (
            "'a'.match(/(?=a)/)",
            "SyntaxError: Invalid regular expression: /(?=a)/: look-around assertions are not supported",
        ),
        (
            "'a'.match(/(a)\\1/)",
            "SyntaxError: Invalid regular expression: /(a)\\1/: back-references are not supported",
        ),
        (
            "'a'.match('(')",
            "SyntaxError: Invalid regular expression: /(/: unclosed group",
        ),
    ];
    for (src, want) in cases {
        assert_eq!(js(src), format!("compile: {want}"), "rule: {src}");
    }
}

#[test]
fn keywords_as_property_names() {
    assert_eq!(js("data.new"), "undefined");
    assert_eq!(js("data.function"), "undefined");
    assert_eq!(js("data.typeof"), "undefined");
    assert_eq!(js("data.in"), "undefined");
}

#[test]
fn nesting_depth_is_bounded() {
    let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    assert_eq!(js(&deep), "compile: SyntaxError: rule nests too deeply");
    let nots = format!("{}true", "!".repeat(5000));
    assert_eq!(js(&nots), "compile: SyntaxError: rule nests too deeply");
    let templates = format!("{}1{}", "`${".repeat(100), "}`".repeat(100));
    assert_eq!(
        js(&templates),
        "compile: SyntaxError: rule nests too deeply"
    );
    let ok = format!("{}1{}", "(".repeat(100), ")".repeat(100));
    assert_eq!(js(&ok), "1");
    assert_eq!(js(&format!("{}true", "!".repeat(100))), "true");
}

#[test]
fn long_operator_and_member_chains_are_bounded() {
    let sum = vec!["1"; 5000].join(" + ");
    assert_eq!(js(&sum), "compile: SyntaxError: rule nests too deeply");
    let members = format!("data{}", ".x".repeat(5000));
    assert_eq!(js(&members), "compile: SyntaxError: rule nests too deeply");
    let ok = vec!["1"; 50].join(" + ");
    assert_eq!(js(&ok), "50");
    assert_eq!(js(&format!("data.obj{}", "?.k".repeat(50))), "undefined");
}
