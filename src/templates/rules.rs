//! Key rules: the `pattern`, `choices` and `range` a key's values must
//! pass, each with the message users see when a value breaks it, and how a
//! manifest's `[[keys.rules]]` tables become them.

use std::ops::Range;
use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pattern: Option<Spanned<String>>,
    choices: Option<Vec<String>>,
    range: Option<[i64; 2]>,
    message: String,
}

/// A declarative rule and the message shown when a value breaks it.
#[derive(Debug, Clone)]
pub struct Rule {
    pub check: Check,
    pub message: String,
}

#[derive(Debug, Clone)]
pub enum Check {
    /// The whole value must match.
    Pattern(Pattern),
    Choices(Vec<String>),
    /// A plain decimal integer (no sign but '-', no leading zero), inclusive.
    Range(i64, i64),
}

impl Rule {
    pub fn accepts(&self, value: &str) -> bool {
        match &self.check {
            Check::Pattern(p) => p.is_match(value),
            Check::Choices(choices) => choices.iter().any(|c| c == value),
            Check::Range(lo, hi) => {
                let digits = value.strip_prefix('-').unwrap_or(value);
                let plain = !digits.is_empty()
                    && digits.len() <= 18
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && (digits == "0" || !digits.starts_with('0'))
                    && value != "-0";
                plain && value.parse::<i64>().is_ok_and(|n| (*lo..=*hi).contains(&n))
            }
        }
    }
}

/// A rule's pattern as a full match, `\A(?:PATTERN)\z`: its syntax is
/// checked when the manifest is read, and it is compiled when a value is
/// first checked against it. Compiling costs far more than checking the
/// syntax (1.5 ms for the embedded `(?s).{1,200}`, most of a spawn's own
/// work), and a spawn that sets no key with a pattern needs none of them.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    anchored: String,
    /// The regex, or why it does not compile, which [`Pattern::compile`]
    /// reports for sets read from disk before they are used (the embedded
    /// set's patterns are compiled by its tests).
    compiled: OnceLock<Result<Regex, String>>,
}

impl Pattern {
    /// `pattern` as a full match, or the last line of the reason its
    /// syntax is wrong.
    pub fn parse(pattern: &str) -> Result<Pattern, String> {
        let anchored = format!(r"\A(?:{pattern})\z");
        regex_syntax::Parser::new()
            .parse(&anchored)
            .map_err(|e| last_line(&e.to_string()))?;
        Ok(Pattern {
            source: pattern.to_owned(),
            anchored,
            compiled: OnceLock::new(),
        })
    }

    /// The pattern as the manifest wrote it, without the anchors.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Compile it now, or say why it cannot be (a pattern whose syntax is
    /// right can still be too large).
    pub fn compile(&self) -> Result<(), String> {
        self.regex().map(|_| ()).map_err(str::to_owned)
    }

    /// Whether all of `value` matches; a pattern that cannot be compiled
    /// matches nothing.
    pub fn is_match(&self, value: &str) -> bool {
        self.regex().is_ok_and(|re| re.is_match(value))
    }

    /// Compiled once, on the first call; the same outcome after that.
    fn regex(&self) -> Result<&Regex, &str> {
        self.compiled
            .get_or_init(|| Regex::new(&self.anchored).map_err(|e| last_line(&e.to_string())))
            .as_ref()
            .map_err(String::as_str)
    }
}

fn last_line(detail: &str) -> String {
    let last = detail.lines().last().unwrap_or("").trim();
    last.strip_suffix('.').unwrap_or(last).to_owned()
}

/// The rule a manifest's `[[keys.rules]]` table declares for key `name`, or
/// `None` when it is unusable; every problem found goes to `report`.
pub(super) fn resolve(
    name: &str,
    r: Spanned<RawRule>,
    report: &mut dyn FnMut(Range<usize>, String),
) -> Option<Rule> {
    let span = r.span();
    let r = r.into_inner();
    let given = [r.pattern.is_some(), r.choices.is_some(), r.range.is_some()]
        .iter()
        .filter(|g| **g)
        .count();
    if given != 1 {
        report(
            span,
            format!("key {name}: each rule needs exactly one of pattern, choices or range"),
        );
        return None;
    }
    if r.message.trim().is_empty() || r.message.contains('\n') {
        report(
            span.clone(),
            format!(
                "key {name}: a rule's message must be one non-empty line; it is what users see"
            ),
        );
    }
    let check = if let Some(p) = r.pattern {
        match Pattern::parse(p.get_ref()) {
            Ok(pattern) => Check::Pattern(pattern),
            Err(last) => {
                report(
                    p.span(),
                    format!(
                        "key {name}: pattern {:?} is not a valid regular expression: {last}",
                        p.get_ref()
                    ),
                );
                return None;
            }
        }
    } else if let Some(choices) = r.choices {
        if choices.is_empty() {
            report(span, format!("key {name}: choices is empty"));
            return None;
        }
        Check::Choices(choices)
    } else if let Some([lo, hi]) = r.range {
        if lo > hi {
            report(
                span,
                format!("key {name}: range [{lo}, {hi}] is empty; write [LOW, HIGH]"),
            );
            return None;
        }
        Check::Range(lo, hi)
    } else {
        return None;
    };
    Some(Rule {
        check,
        message: r.message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_take_plain_decimal_integers_only() {
        let rule = Rule {
            check: Check::Range(1024, 65535),
            message: String::new(),
        };
        for good in ["1024", "8080", "65535"] {
            assert!(rule.accepts(good), "{good}");
        }
        for bad in [
            "80", "0", "65536", "08080", "+8000", "http", "", "-1", " 8000",
        ] {
            assert!(!rule.accepts(bad), "{bad}");
        }
    }
}
