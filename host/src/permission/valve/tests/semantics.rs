//! JavaScript semantics of the evaluator.

use super::js;

#[track_caller]
fn check(cases: &[(&str, &str)]) {
    for (src, want) in cases {
        assert_eq!(js(src), *want, "rule: {src}");
    }
}

#[test]
fn loose_equality() {
    check(&[
        ("'1' == 1", "true"),
        ("1 == '1.0'", "true"),
        ("null == undefined", "true"),
        ("undefined == null", "true"),
        ("null == 0", "false"),
        ("undefined == 0", "false"),
        ("null == false", "false"),
        ("0 == ''", "true"),
        ("'' == 0", "true"),
        ("'0' == false", "true"),
        ("'' == false", "true"),
        ("'a' == 'a'", "true"),
        ("true == 1", "true"),
        ("true == '1'", "true"),
        ("2 == true", "false"),
        ("NaN == NaN", "false"),
        ("NaN != NaN", "true"),
        ("[] == ''", "true"),
        ("[] == 0", "true"),
        ("[1] == 1", "true"),
        ("[1,2] == '1,2'", "true"),
        ("data.arr == '1,2,3'", "true"),
        ("data.obj == '[object Object]'", "true"),
        ("data == data", "true"),
        ("[] == []", "false"),
        ("' \\t\\n 12 ' == 12", "true"),
        ("'0x10' == 16", "true"),
        ("'1e3' == 1000", "true"),
        ("'Infinity' == Infinity", "true"),
        ("'inf' == Infinity", "false"),
    ]);
}

#[test]
fn strict_equality() {
    check(&[
        ("'1' === 1", "false"),
        ("1 === 1.0", "true"),
        ("null === undefined", "false"),
        ("null !== undefined", "true"),
        ("NaN === NaN", "false"),
        ("0 === -0", "true"),
        ("data === data", "true"),
        ("data.arr === data.arr", "true"),
        ("data.obj.k === null", "true"),
        ("data.nothing === undefined", "true"),
        ("[] === []", "false"),
        ("user === user", "true"),
        ("/a/ === /a/", "false"),
        ("user.id === 'alice'", "true"),
        ("user.id !== 'bob'", "true"),
    ]);
}

#[test]
fn plus_operator() {
    check(&[
        ("'a' + 1", "'a1'"),
        ("1 + 'a'", "'1a'"),
        ("1 + 2", "3"),
        ("'1' + 2", "'12'"),
        ("1 + 2 + '3'", "'33'"),
        ("'1' + 2 + 3", "'123'"),
        ("[] + ''", "''"),
        ("[] + []", "''"),
        ("[1, 2] + ''", "'1,2'"),
        ("[null, undefined, 3] + ''", "',,3'"),
        ("data.obj + ''", "'[object Object]'"),
        ("data.arr + 1", "'1,2,31'"),
        ("true + 1", "2"),
        ("null + 1", "1"),
        ("undefined + 1", "NaN"),
        ("'x' + null", "'xnull'"),
        ("'x' + undefined", "'xundefined'"),
        ("'n=' + 0.1", "'n=0.1'"),
        ("'' + 1e21", "'1e+21'"),
        ("'' + 1e-7", "'1e-7'"),
        ("'' + 123456789012", "'123456789012'"),
        ("'' + 0.000001", "'0.000001'"),
        ("'' + -1.5", "'-1.5'"),
        ("'' + (0.1 + 0.2)", "'0.30000000000000004'"),
        ("'' + 2**53", "'9007199254740992'"),
        ("'' + -0", "'0'"),
        ("'' + 1.5e300", "'1.5e+300'"),
        ("'' + /a+/gi", "'/a+/gi'"),
        ("'id:' + $id", "'id:42'"),
    ]);
}

#[test]
fn arithmetic() {
    check(&[
        ("7 - '2'", "5"),
        ("'6' * '7'", "42"),
        ("1 / 0", "Infinity"),
        ("-1 / 0", "-Infinity"),
        ("0 / 0", "NaN"),
        ("7 % 3", "1"),
        ("-7 % 3", "-1"),
        ("5.5 % 2", "1.5"),
        ("2 ** 10", "1024"),
        ("2 ** 3 ** 2", "512"),
        ("(-2) ** 2", "4"),
        ("1 ** NaN", "NaN"),
        ("'abc' - 1", "NaN"),
        ("-'3'", "-3"),
        ("+'3'", "3"),
        ("+''", "0"),
        ("+[]", "0"),
        ("+[5]", "5"),
        ("+data.obj", "NaN"),
        ("+true", "1"),
        ("+null", "0"),
        ("+undefined", "NaN"),
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("10 - 2 - 3", "5"),
        ("5 | 2", "7"),
        ("5 & 4", "4"),
        ("5 ^ 1", "4"),
        ("~5", "-6"),
        ("1 << 31", "-2147483648"),
        ("-16 >> 2", "-4"),
        ("-1 >>> 28", "15"),
        ("0x1F + 0o7 + 0b11", "41"),
        ("1_000 + .5", "1000.5"),
        ("now", "1000"),
        ("action", "18"),
    ]);
}

#[test]
fn comparisons() {
    check(&[
        ("'10' < '9'", "true"),
        ("'10' < 9", "false"),
        ("10 > '9'", "true"),
        ("'a' < 'b'", "true"),
        ("'B' < 'a'", "true"),
        ("'abc' <= 'abc'", "true"),
        ("1 < NaN", "false"),
        ("NaN <= NaN", "false"),
        ("NaN >= 1", "false"),
        ("'x' < 1", "false"),
        ("'x' >= 1", "false"),
        ("null >= 0", "true"),
        ("null > 0", "false"),
        ("undefined >= 0", "false"),
        ("[2] > 1", "true"),
        ("data.n >= 5", "true"),
        ("data.n > 5", "false"),
        ("now > 999", "true"),
        ("'\u{FF5E}' > '\u{1F600}'", "true"),
    ]);
}

#[test]
fn logical_operators_return_operands() {
    check(&[
        ("'a' && 'b'", "'b'"),
        ("'' && 'b'", "''"),
        ("0 || 'x'", "'x'"),
        ("'y' || 'x'", "'y'"),
        ("null || undefined", "undefined"),
        ("undefined && 1", "undefined"),
        ("NaN || 0", "0"),
        ("data.n && data.s", "'abc'"),
        ("data.missing || 'default'", "'default'"),
        ("null ?? 'd'", "'d'"),
        ("0 ?? 'd'", "0"),
        ("!''", "true"),
        ("!'0'", "false"),
        ("![]", "false"),
        ("!data.obj", "false"),
        ("!!NaN", "false"),
        ("!0", "true"),
        ("!oldData.value || data.n > oldData.value", "true"),
        // Short-circuit: the right side is not evaluated.
        ("false && null.x", "false"),
        ("true || null.x", "true"),
        ("true ? 1 : null.x", "1"),
        ("data.n > 3 ? 'big' : 'small'", "'big'"),
        ("1, 2, 3", "3"),
    ]);
}

#[test]
fn typeof_of_each_kind() {
    check(&[
        ("typeof undefined", "'undefined'"),
        ("typeof data.missing", "'undefined'"),
        ("typeof null", "'object'"),
        ("typeof true", "'boolean'"),
        ("typeof 1", "'number'"),
        ("typeof NaN", "'number'"),
        ("typeof 'a'", "'string'"),
        ("typeof `a`", "'string'"),
        ("typeof data", "'object'"),
        ("typeof data.arr", "'object'"),
        ("typeof [1]", "'object'"),
        ("typeof /x/", "'object'"),
        ("typeof user", "'object'"),
        ("typeof user.data", "'object'"),
        ("typeof user.id", "'string'"),
        ("typeof user.isAuthenticated", "'boolean'"),
        ("typeof now", "'number'"),
        ("typeof $id", "'string'"),
        ("typeof(data.s) === 'string'", "true"),
        ("typeof typeof 1", "'string'"),
        ("void 0", "undefined"),
    ]);
}

#[test]
fn member_and_index_access() {
    check(&[
        ("data.n", "5"),
        ("data['n']", "5"),
        ("data[\"s\"]", "'abc'"),
        ("data.arr[1]", "2"),
        ("data.arr['1']", "2"),
        ("data.arr[5]", "undefined"),
        ("data.arr[-1]", "undefined"),
        ("data.arr[1.5]", "undefined"),
        ("data.arr.length", "3"),
        ("data.s.length", "3"),
        ("data.s[0]", "'a'"),
        ("data.s[3]", "undefined"),
        ("'h\u{e9}llo'.length", "5"),
        ("'\u{1F600}'.length", "2"),
        ("data.n.length", "undefined"),
        ("data.obj.k", "null"),
        ("data.obj.missing", "undefined"),
        ("data.missing", "undefined"),
        ("data['a' + 'rr'][0]", "1"),
        ("data.arr[data.arr.length - 1]", "3"),
        ("[1, , 3][1]", "undefined"),
        ("[1, 2, 3,].length", "3"),
        ("user.id", "'alice'"),
        ("user.isAuthenticated", "true"),
        ("user.data.role", "'admin'"),
        ("user.nothing", "undefined"),
        ("/ab/g.source", "'ab'"),
        ("/ab/g.global", "true"),
        ("true.x", "undefined"),
        ("name", "'item/42'"),
        ("$id", "'42'"),
        ("data?.obj?.k", "null"),
        ("data.missing?.x", "undefined"),
        ("data.missing?.x.y.z", "undefined"),
        ("data.missing?.[0]", "undefined"),
        ("data.obj.k?.startsWith('a')", "undefined"),
        ("data.n.trim?.()", "undefined"),
        ("'n' in data", "true"),
        ("'zz' in data", "false"),
        ("0 in data.arr", "true"),
        ("3 in data.arr", "false"),
        ("'length' in data.arr", "true"),
        ("'id' in user", "true"),
    ]);
}

#[test]
fn member_access_on_null_or_undefined_throws() {
    check(&[
        (
            "data.obj.k.x",
            "throws TypeError: Cannot read properties of null (reading 'x')",
        ),
        (
            "data.missing.x",
            "throws TypeError: Cannot read properties of undefined (reading 'x')",
        ),
        (
            "data.missing[0]",
            "throws TypeError: Cannot read properties of undefined (reading '0')",
        ),
        (
            "data.missing.startsWith('a')",
            "throws TypeError: Cannot read properties of undefined (reading 'startsWith')",
        ),
        (
            "(data.missing?.a).b",
            "throws TypeError: Cannot read properties of undefined (reading 'b')",
        ),
        (
            "'a' in 'abc'",
            "throws TypeError: Cannot use 'in' operator to search for 'a' in abc",
        ),
        (
            "data.n.startsWith('5')",
            "throws TypeError: data.n.startsWith is not a function",
        ),
        (
            "data.obj.trim()",
            "throws TypeError: data.obj.trim is not a function",
        ),
        (
            "data.arr.match(/1/)",
            "throws TypeError: data.arr.match is not a function",
        ),
    ]);
}

#[test]
fn string_methods() {
    check(&[
        ("data.s.startsWith('ab')", "true"),
        ("data.s.startsWith('b')", "false"),
        ("data.s.startsWith('b', 1)", "true"),
        ("data.s.endsWith('bc')", "true"),
        ("data.s.endsWith('b', 2)", "true"),
        ("data.s.includes('b')", "true"),
        ("data.s.includes('a', 1)", "false"),
        ("data.s.indexOf('c')", "2"),
        ("data.s.indexOf('z')", "-1"),
        ("data.s.indexOf('')", "0"),
        ("'\u{1F600}x'.indexOf('x')", "2"),
        ("'abcabc'.indexOf('b', 2)", "4"),
        ("'AbC'.toUpperCase()", "'ABC'"),
        ("'AbC'.toLowerCase()", "'abc'"),
        ("'stra\u{df}e'.toUpperCase()", "'STRASSE'"),
        ("'  pad\\t\\n'.trim()", "'pad'"),
        ("'\u{a0}x\u{feff}'.trim()", "'x'"),
        ("'a1b2'.match(/\\d/g)", "['1','2']"),
        ("'a1b2'.match(/(\\w)(\\d)/)", "['a1','a','1']"),
        ("'abc'.match(/x/)", "null"),
        ("'abc'.match(/(x)?c/)", "['c',undefined]"),
        ("'abc'.match('b.')", "['bc']"),
        ("'ABC'.match(/b/i)[0]", "'B'"),
        ("'x@example.com'.match(/@example\\.com$/) !== null", "true"),
        ("'a\\nb'.match(/^b/m)[0]", "'b'"),
        ("'ab'.match(/b/y)", "null"),
        ("'éa'.match(/\\w/)[0]", "'a'"),
        ("'a b'.match(/\\bb/)[0]", "'b'"),
        ("'a-b'.match(/[a\\-]+/)[0]", "'a-'"),
        ("'x'.match(/[^]/)[0]", "'x'"),
        ("'\\u0041'.match(/\\u0041/)[0]", "'A'"),
        ("'abc'.match(data.s)[0]", "'abc'"),
        ("data.arr.includes(2)", "true"),
        ("data.arr.includes('2')", "false"),
        ("data.arr.indexOf(3)", "2"),
        ("data.arr.indexOf(9)", "-1"),
        ("[NaN].includes(NaN)", "true"),
        ("[NaN].indexOf(NaN)", "-1"),
        (
            "['a', 'b'].includes(user.data.role) || ['admin'].includes(user.data.role)",
            "true",
        ),
        ("data['s']['startsWith']('a')", "true"),
        ("$id.toLowerCase() === '42'", "true"),
        (
            "'abc'.includes(/a/)",
            "throws TypeError: First argument to String.prototype.includes must not be a regular expression",
        ),
        ("'a'.startsWith()", "false"),
        ("'undefined'.startsWith()", "true"),
    ]);
}

#[test]
fn templates() {
    check(&[
        ("`plain`", "'plain'"),
        ("`user/${user.id}`", "'user/alice'"),
        ("`${data.n + 1}-${data.arr}`", "'6-1,2,3'"),
        ("`a${`b${1}`}c`", "'ab1c'"),
        (
            "`${ {} }`",
            "compile: SyntaxError: object literals are not supported",
        ),
    ]);
}

#[test]
fn cross_reference_values() {
    check(&[
        ("_('a').n", "1"),
        ("_('a') === _('a')", "true"),
        ("_(_('a').ref).ok", "true"),
        ("_('missing')", "null"),
        ("_('missing') === null", "true"),
        ("_(undefined)", "undefined"),
        ("_('user/' + data.nothing)", "undefined"),
        ("_('not-loaded')", "undefined"),
        ("_(1)", "throws crossreference got unsupported type number"),
        (
            "_(null)",
            "throws crossreference got unsupported type object",
        ),
        (
            "_(true)",
            "throws crossreference got unsupported type boolean",
        ),
        (
            "_(data)",
            "throws crossreference got unsupported type object",
        ),
        (
            "_('missing').isInStock === true",
            "throws TypeError: Cannot read properties of null (reading 'isInStock')",
        ),
    ]);
}

#[test]
fn number_literals_and_conversions() {
    check(&[
        ("5.", "5"),
        ("3.e2", "300"),
        (".5e1", "5"),
        ("017", "15"),
        ("019", "19"),
        ("0.1 * 3", "0.30000000000000004"),
        ("1e21", "1e+21"),
        ("123e-20", "1.23e-18"),
        ("'' + 100 / 3", "'33.333333333333336'"),
        ("'' + 2 ** -1074", "'5e-324'"),
        ("'' + 1.7976931348623157e308", "'1.7976931348623157e+308'"),
        ("+'  -1.5e3  '", "-1500"),
        ("+'1_000'", "NaN"),
        ("+'0b101'", "5"),
        ("+'-0x10'", "NaN"),
        ("+'.'", "NaN"),
        ("+'5.'", "5"),
        ("+'e5'", "NaN"),
    ]);
}

#[test]
fn regex_translation_details() {
    check(&[
        ("'a/b'.match(/[/]/)[0]", "'/'"),
        ("'a/b'.match(/a\\/b/)[0]", "'a/b'"),
        ("'a.b'.match(/a\\.b/) !== null", "true"),
        ("'axb'.match(/a\\.b/)", "null"),
        ("'[x]'.match(/[[\\]]/g)", "['[',']']"),
        ("'a&b~c'.match(/[&~]/g)", "['&','~']"),
        ("'A1_'.match(/\\w+/)[0]", "'A1_'"),
        ("'x y'.match(/\\s/) !== null", "true"),
        ("'tab\\there'.match(/\\t/) !== null", "true"),
        ("'\\u00e9'.match(/\\u{e9}/u) !== null", "true"),
        ("'\\u00e9'.match(/\\xe9/) !== null", "true"),
        ("'AB'.match(/(?<first>A)/)[1]", "'A'"),
        ("'aaa'.match(/a{2}/)[0]", "'aa'"),
        ("'a\\nb'.match(/a.b/)", "null"),
        ("'a\\nb'.match(/a.b/s) !== null", "true"),
        ("'ab12'.match(/\\D+/)[0]", "'ab'"),
        ("'ab12'.match(/[\\d]+/)[0]", "'12'"),
        ("'x'.match(/[]/)", "null"),
        ("'\\u0001'.match(/\\cA/) !== null", "true"),
    ]);
}
