//! Template-set versions compared as versions.
//!
//! A set's version is free text (one line of 1-100 characters, see
//! `templates::manifest`), so "1.10.0" must sort after "1.9.0" and
//! "2026.10" after "2026.2", which text order gets wrong.
//!
//! The order: when both versions are semver, the `semver` crate's order
//! (major, minor, patch, pre-release before release, build metadata). Any
//! other version is read as dot-separated components, each a number when
//! it is all ASCII digits and text otherwise, compared component by
//! component (a number before text, numbers by value, text by its bytes,
//! a version before any longer one it begins: 1.2 < 1.2.0). A semver
//! version is placed among those as its major.minor.patch components, then
//! its pre-release and build, so the order stays one total order when the
//! two kinds meet (comparing "semver when both parse, else dotted" pair by
//! pair would not be transitive: 1.0.0-rc.1 < 1.0.0 < 1.0.0.5 < 1.0.0-rc.1).
//! Versions that still tie (01.2 and 1.2) are ordered by their text, so only
//! equal strings compare equal.
//!
//! [`sort_key`] encodes the same order as a string whose byte order is the
//! version order: SQLite compares it with memcmp, so `behind=V` is a range
//! scan of an index.

use std::cmp::Ordering;

/// One component of a version: a number (kept as its digits) or text.
#[derive(Debug, Clone, Copy)]
enum Part<'a> {
    Num(&'a str),
    Text(&'a str),
}

/// A version read as components.
struct Parsed<'a> {
    release: Vec<Part<'a>>,
    /// Semver pre-release identifiers; empty when it has none.
    pre: Vec<Part<'a>>,
    /// Semver build metadata identifiers; empty when it has none.
    build: Vec<Part<'a>>,
}

fn part(s: &str) -> Part<'_> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        Part::Num(s)
    } else {
        Part::Text(s)
    }
}

fn parts(s: &str) -> Vec<Part<'_>> {
    if s.is_empty() {
        return Vec::new();
    }
    s.split('.').map(part).collect()
}

fn parse(v: &str) -> Parsed<'_> {
    // A semver version is exactly major.minor.patch[-pre][+build] with no
    // leading zeros, so its text splits into the same components the
    // `semver` crate compares.
    if semver::Version::parse(v).is_ok() {
        let (main, build) = v.split_once('+').unwrap_or((v, ""));
        let (release, pre) = main.split_once('-').unwrap_or((main, ""));
        return Parsed {
            release: parts(release),
            pre: parts(pre),
            build: parts(build),
        };
    }
    Parsed {
        release: v.split('.').map(part).collect(),
        pre: Vec::new(),
        build: Vec::new(),
    }
}

/// A number's digits without leading zeros ("" for zero).
fn value(digits: &str) -> &str {
    digits.trim_start_matches('0')
}

fn cmp_part(a: Part<'_>, b: Part<'_>) -> Ordering {
    match (a, b) {
        // By value, then the one with fewer leading zeros first (as semver
        // orders build metadata: 1 < 01).
        (Part::Num(x), Part::Num(y)) => {
            let (vx, vy) = (value(x), value(y));
            (vx.len(), vx)
                .cmp(&(vy.len(), vy))
                .then(x.len().cmp(&y.len()))
        }
        (Part::Num(_), Part::Text(_)) => Ordering::Less,
        (Part::Text(_), Part::Num(_)) => Ordering::Greater,
        (Part::Text(x), Part::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
    }
}

fn cmp_parts(a: &[Part<'_>], b: &[Part<'_>]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = cmp_part(*x, *y);
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// The order of the module doc, by components.
fn cmp_parsed(a: &str, b: &str) -> Ordering {
    let (pa, pb) = (parse(a), parse(b));
    cmp_parts(&pa.release, &pb.release)
        // No pre-release sorts after any pre-release.
        .then_with(|| match (pa.pre.is_empty(), pb.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => cmp_parts(&pa.pre, &pb.pre),
        })
        .then_with(|| cmp_parts(&pa.build, &pb.build))
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// Whether `v` can be a `behind=` bound: it starts with a digit, holds no
/// blank or control character, and no part of its release (before any
/// `-` or `+`) is empty. `v1.0`, ` 1.0` or `1..0` would order after every
/// number and so find every repository behind.
pub fn is_comparable(v: &str) -> bool {
    let release = v.split(['-', '+']).next().unwrap_or("");
    v.starts_with(|c: char| c.is_ascii_digit())
        && !v.chars().any(|c| c.is_whitespace() || c.is_control())
        && release.split('.').all(|part| !part.is_empty())
}

/// The key a `behind=` bound is compared with: build metadata (`+...`)
/// carries no precedence, so `1.10.0+build` bounds like `1.10.0` and a
/// repository on 1.10.0 is not behind it.
pub fn bound_key(v: &str) -> String {
    sort_key(v.split_once('+').map_or(v, |(release, _)| release))
}

/// Compare two template-set versions as versions (see the module doc).
pub fn cmp(a: &str, b: &str) -> Ordering {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(x), Ok(y)) => x.cmp(&y).then_with(|| a.as_bytes().cmp(b.as_bytes())),
        _ => cmp_parsed(a, b),
    }
}

/// A string whose byte order is [`cmp`]'s order: `sort_key(a) < sort_key(b)`
/// exactly when `cmp(a, b)` is `Less`.
///
/// Each component is a tag and a self-delimiting body: `1` and a number
/// (its digit count, its digits, its length with leading zeros), `2` and
/// text (its bytes in hex, ended by `.`, which sorts before every hex
/// digit); `!` ends a list, sorting before both tags, so a version sorts
/// before a longer one it begins. The release list comes first, then `P`
/// and the pre-release list or `Z` when there is none (after any
/// pre-release), then the build list, then the version's own text for the
/// last tie.
pub fn sort_key(v: &str) -> String {
    let p = parse(v);
    let mut key = String::with_capacity(4 * v.len() + 16);
    push_parts(&mut key, &p.release);
    if p.pre.is_empty() {
        key.push('Z');
    } else {
        key.push('P');
        push_parts(&mut key, &p.pre);
    }
    push_parts(&mut key, &p.build);
    key.push_str(v);
    key
}

fn push_parts(key: &mut String, parts: &[Part<'_>]) {
    use std::fmt::Write as _;
    for part in parts {
        match part {
            Part::Num(digits) => {
                let v = value(digits);
                key.push('1');
                push_len(key, v.len());
                key.push_str(v);
                push_len(key, digits.len());
            }
            Part::Text(text) => {
                key.push('2');
                for b in text.bytes() {
                    let _ = write!(key, "{b:02x}");
                }
                key.push('.');
            }
        }
    }
    key.push('!');
}

/// A length whose text sorts as its value: its digit count, then its
/// digits (any length below 10^9).
fn push_len(key: &mut String, n: usize) {
    let digits = n.to_string();
    key.push_str(&digits.len().to_string());
    key.push_str(&digits);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers_compare_by_value_not_as_text() {
        let ordered = [
            "0.9",
            "1.2",
            "1.2.0",
            "1.9.0",
            "1.10.0",
            "2026.2",
            "2026.10",
            "2026.10.a",
            "beta",
        ];
        for w in ordered.windows(2) {
            assert_eq!(cmp(w[0], w[1]), Ordering::Less, "{} < {}", w[0], w[1]);
            assert!(sort_key(w[0]) < sort_key(w[1]), "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn semver_pre_releases_come_before_the_release() {
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.0+build.1",
            "1.0.0.5",
        ];
        for w in ordered.windows(2) {
            assert_eq!(cmp(w[0], w[1]), Ordering::Less, "{} < {}", w[0], w[1]);
        }
    }

    /// Found by the property test below (its shrunk case, kept here rather
    /// than in a proptest-regressions file): an empty part.
    #[test]
    fn an_empty_version_and_an_empty_part_order_the_same_by_key() {
        for (a, b) in [("", ".0"), (".0", ""), ("", "0"), ("1.", "1.0")] {
            assert_eq!(sort_key(a).cmp(&sort_key(b)), cmp(a, b), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn a_behind_bound_must_look_like_a_version_and_ignores_build_metadata() {
        for good in ["1", "1.10.0", "2.0.0-rc.1", "1.10.0+build.5", "2026.12"] {
            assert!(is_comparable(good), "{good}");
        }
        for bad in [
            "",
            "v1.10.0",
            " 1.10.0",
            "1..0",
            "1.",
            "notaversion",
            "1.0\n",
        ] {
            assert!(!is_comparable(bad), "{bad:?}");
        }
        assert_eq!(bound_key("1.10.0+build"), sort_key("1.10.0"));
        assert!(
            sort_key("1.10.0") >= bound_key("1.10.0+build"),
            "not behind"
        );
        assert!(sort_key("1.9.0") < bound_key("1.10.0+build"));
    }

    #[test]
    fn only_equal_strings_compare_equal() {
        assert_eq!(cmp("1.2", "1.2"), Ordering::Equal);
        assert_ne!(cmp("01.2", "1.2"), Ordering::Equal);
        assert_ne!(sort_key("01.2"), sort_key("1.2"));
    }

    /// Versions as people write them, and odd ones: semver with pre-release
    /// and build, dotted numbers with leading zeros, text, empty parts.
    fn version() -> impl Strategy<Value = String> {
        let num = prop_oneof!["0", "[1-9][0-9]{0,2}", "0[0-9]{1,2}", "[0-9]{19,22}"];
        let ident = prop_oneof![num.clone(), "[a-z]{1,3}", "[a-z0-9-]{1,4}"];
        let idents = prop::collection::vec(ident, 1..4).prop_map(|v| v.join("."));
        let semverish = (
            num.clone(),
            num.clone(),
            num.clone(),
            prop::option::of(idents.clone()),
            prop::option::of(idents),
        )
            .prop_map(|(a, b, c, pre, build)| {
                let mut v = format!("{a}.{b}.{c}");
                if let Some(pre) = pre {
                    v += &format!("-{pre}");
                }
                if let Some(build) = build {
                    v += &format!("+{build}");
                }
                v
            });
        let dotted = prop::collection::vec(prop_oneof![num, "[a-zA-Z0-9+-]{0,3}"], 1..5)
            .prop_map(|v| v.join("."));
        prop_oneof![semverish, dotted, "\\PC{1,12}", "[0-9.\\-+a ]{1,10}"]
    }

    proptest! {
        // No regressions file: a failure found here becomes a named test above.
        #![proptest_config(ProptestConfig { cases: 4000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn sort_key_orders_as_cmp_does(a in version(), b in version()) {
            prop_assert_eq!(sort_key(&a).cmp(&sort_key(&b)), cmp(&a, &b), "{:?} vs {:?}", a, b);
        }

        #[test]
        fn component_order_is_the_semver_order_on_semver_versions(a in version(), b in version()) {
            if let (Ok(x), Ok(y)) = (semver::Version::parse(&a), semver::Version::parse(&b)) {
                prop_assert_eq!(cmp_parsed(&a, &b), x.cmp(&y).then_with(|| a.cmp(&b)));
            }
        }

        #[test]
        fn cmp_is_antisymmetric(a in version(), b in version()) {
            prop_assert_eq!(cmp(&a, &b), cmp(&b, &a).reverse());
        }
    }
}
