//! Path patterns (spec §3.3): `*` matches any characters, `$name` captures
//! one or more characters other than `/`, everything else is literal, and
//! the pattern is anchored at both ends.
//!
//! Decision: the reference builds a JavaScript regex without escaping the
//! other metacharacters (`.`, `+`, `?`, `(`…); following the spec's
//! recommendation they are literal here. The matcher is a small
//! backtracking glob matcher (greedy, leftmost-first, exactly like the
//! reference's `.*` / `([^/]+)` groups) that captures borrowed slices of the
//! name without allocating. Unlike the reference's `.`, `*` also matches line
//! terminators.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(Box<str>),
    Star,
    /// Capture group index.
    Var(u16),
}

#[derive(Debug, Clone)]
pub(crate) struct PathPattern {
    parts: Box<[Part]>,
    /// Variable names (`$name`, with the `$`) in capture-group order.
    pub(crate) vars: Vec<String>,
}

/// Validates and compiles a pattern; the error is the spec's path error.
pub(crate) fn parse_path(path: &str) -> Result<PathPattern, String> {
    if path.is_empty() {
        return Err("path can't be empty".to_owned());
    }
    if path.starts_with('/') {
        return Err("path can't start with /".to_owned());
    }
    let mut parts = Vec::new();
    let mut vars = Vec::new();
    let mut lit = String::new();
    let mut chars = path.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '*' => {
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit).into()));
                }
                if parts.last() != Some(&Part::Star) {
                    parts.push(Part::Star);
                }
            }
            '$' => {
                let rest = &path[i + 1..];
                let len = rest.bytes().take_while(u8::is_ascii_alphanumeric).count();
                if len == 0 {
                    let c = rest.chars().next().map(String::from).unwrap_or_default();
                    return Err(format!("invalid variable name ${c}"));
                }
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit).into()));
                }
                parts.push(Part::Var(vars.len() as u16));
                vars.push(format!("${}", &rest[..len]));
                for _ in 0..len {
                    chars.next();
                }
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        parts.push(Part::Lit(lit.into()));
    }
    Ok(PathPattern {
        parts: parts.into_boxed_slice(),
        vars,
    })
}

const INLINE: usize = 8;

/// Captured `$variable` values: slices of the matched name, stored inline
/// for up to eight variables.
#[derive(Debug, Clone)]
pub(crate) struct Captures<'n> {
    inline: [&'n str; INLINE],
    spill: Vec<&'n str>,
    len: usize,
}

impl<'n> Captures<'n> {
    pub(crate) fn new(len: usize) -> Captures<'n> {
        Captures {
            inline: [""; INLINE],
            spill: if len > INLINE {
                vec![""; len]
            } else {
                Vec::new()
            },
            len,
        }
    }

    fn set(&mut self, i: usize, v: &'n str) {
        if self.len > INLINE {
            self.spill[i] = v;
        } else {
            self.inline[i] = v;
        }
    }

    pub(crate) fn as_slice(&self) -> &[&'n str] {
        if self.len > INLINE {
            &self.spill
        } else {
            &self.inline[..self.len]
        }
    }
}

impl PathPattern {
    /// Matches the whole `name`; on success the captures are filled in.
    pub(crate) fn matches<'n>(&self, name: &'n str, caps: &mut Captures<'n>) -> bool {
        match_parts(&self.parts, name, caps)
    }
}

fn match_parts<'n>(parts: &[Part], s: &'n str, caps: &mut Captures<'n>) -> bool {
    match parts.split_first() {
        None => s.is_empty(),
        Some((Part::Lit(l), rest)) => s
            .strip_prefix(&**l)
            .is_some_and(|r| match_parts(rest, r, caps)),
        Some((Part::Star, rest)) => {
            if rest.is_empty() {
                return true;
            }
            // Greedy: try the longest prefix first, like `.*`.
            (0..=s.len())
                .rev()
                .any(|i| s.is_char_boundary(i) && match_parts(rest, &s[i..], caps))
        }
        Some((Part::Var(k), rest)) => {
            let max = s.find('/').unwrap_or(s.len());
            (1..=max).rev().any(|i| {
                s.is_char_boundary(i) && {
                    caps.set(usize::from(*k), &s[..i]);
                    match_parts(rest, &s[i..], caps)
                }
            })
        }
    }
}
