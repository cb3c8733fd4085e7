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
//!
//! Backtracking is exponential in the worst case (`*a*a*a*a*b` against a
//! long client-chosen name), so the matcher has a step budget; past it the
//! same pattern runs on a `regex::Regex` (linear time, allocates for the
//! captures). Both use leftmost-first priorities, so results are identical.

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
    /// The same pattern as a linear-time regex (fallback).
    regex: regex::Regex,
}

/// Steps the backtracking matcher may take before the regex takes over.
pub(crate) const BACKTRACK_BUDGET: u32 = 4096;

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
    let mut re = String::from(r"\A");
    for p in &parts {
        match p {
            Part::Lit(l) => re.push_str(&regex::escape(l)),
            Part::Star => re.push_str("(?s:.*)"),
            Part::Var(_) => re.push_str("([^/]+)"),
        }
    }
    re.push_str(r"\z");
    let regex = regex::Regex::new(&re).map_err(|e| format!("unsupported path: {e}"))?;
    Ok(PathPattern {
        parts: parts.into_boxed_slice(),
        vars,
        regex,
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
        self.matches_with_budget(name, caps, BACKTRACK_BUDGET)
    }

    pub(crate) fn matches_with_budget<'n>(
        &self,
        name: &'n str,
        caps: &mut Captures<'n>,
        mut budget: u32,
    ) -> bool {
        match match_parts(&self.parts, name, caps, &mut budget) {
            Some(found) => found,
            None => {
                let Some(c) = self.regex.captures(name) else {
                    return false;
                };
                for i in 0..self.vars.len() {
                    caps.set(i, c.get(i + 1).map_or("", |m| m.as_str()));
                }
                true
            }
        }
    }
}

/// `None` when the step budget ran out.
fn match_parts<'n>(
    parts: &[Part],
    s: &'n str,
    caps: &mut Captures<'n>,
    budget: &mut u32,
) -> Option<bool> {
    if *budget == 0 {
        return None;
    }
    *budget -= 1;
    match parts.split_first() {
        None => Some(s.is_empty()),
        Some((Part::Lit(l), rest)) => match s.strip_prefix(&**l) {
            Some(r) => match_parts(rest, r, caps, budget),
            None => Some(false),
        },
        Some((Part::Star, rest)) => {
            if rest.is_empty() {
                return Some(true);
            }
            // Greedy: try the longest prefix first, like `.*`.
            for i in (0..=s.len()).rev() {
                if s.is_char_boundary(i) && match_parts(rest, &s[i..], caps, budget)? {
                    return Some(true);
                }
            }
            Some(false)
        }
        Some((Part::Var(k), rest)) => {
            let max = s.find('/').unwrap_or(s.len());
            for i in (1..=max).rev() {
                if s.is_char_boundary(i) {
                    caps.set(usize::from(*k), &s[..i]);
                    if match_parts(rest, &s[i..], caps, budget)? {
                        return Some(true);
                    }
                }
            }
            Some(false)
        }
    }
}
