//! The query parameters of `GET /v1/repos` (and of `spawn-elite registry`
//! that sends them): which repositories, and which page of them.
//!
//! Strict on purpose: a misspelt or repeated parameter is an error, not an
//! unfiltered answer that looks like a filtered one.

use super::version;
use std::str::FromStr as _;

/// How many repositories a page holds when `limit=` is not given.
pub const DEFAULT_LIMIT: u32 = 100;
/// The most a page may hold.
pub const MAX_LIMIT: u32 = 1000;

/// Which repositories to list. Every condition given must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// `type=`: the repository type (exact).
    pub kind: Option<String>,
    /// `set=`: the template set's name (exact).
    pub set: Option<String>,
    /// `version=`: the template set's version (exact).
    pub version: Option<String>,
    /// `behind=V`: on `set=`'s set at a version older than V (compared as
    /// versions, see [`super::version`]).
    pub behind: Option<String>,
    /// `since=`: its latest event was received at or after this time (to
    /// the second).
    pub since: Option<jiff::Timestamp>,
    /// `after=`: only names after this one (the `next` of the page before).
    pub after: Option<String>,
    /// `limit=`: at most this many per page, 1 to [`MAX_LIMIT`].
    pub limit: u32,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            kind: None,
            set: None,
            version: None,
            behind: None,
            since: None,
            after: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

/// The parameters, in the order [`Filter::to_query`] writes them.
const KEYS: &str = "type, set, version, behind, since, after, limit";

impl Filter {
    /// Read a query string (without its `?`; `None` or empty for none).
    /// The error is one line naming the parameter and what it accepts.
    pub fn parse(query: Option<&str>) -> Result<Filter, String> {
        let mut f = Filter::default();
        let mut limit = None;
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let given = match key.as_ref() {
                "type" => f.kind.is_some(),
                "set" => f.set.is_some(),
                "version" => f.version.is_some(),
                "behind" => f.behind.is_some(),
                "since" => f.since.is_some(),
                "after" => f.after.is_some(),
                "limit" => limit.is_some(),
                other => {
                    return Err(format!(
                        "unknown query parameter {other:?}; the parameters are {KEYS}"
                    ));
                }
            };
            if given {
                return Err(format!(
                    "query parameter {key:?} is given more than once; give it once"
                ));
            }
            if value.is_empty() {
                return Err(format!(
                    "query parameter {key:?} is empty; give it a value or leave it out"
                ));
            }
            let text = Some(value.to_string());
            match key.as_ref() {
                "type" => f.kind = text,
                "set" => f.set = text,
                "version" => f.version = text,
                "behind" => {
                    if !version::is_comparable(&value) {
                        return Err(format!(
                            "behind={value:?} is not a version to compare with: give it as the set's manifest writes it, starting with a digit, with no empty or blank parts (e.g. behind=1.10.0)"
                        ));
                    }
                    f.behind = text;
                }
                "after" => f.after = text,
                "since" => {
                    f.since = Some(jiff::Timestamp::from_str(&value).map_err(|_| {
                        format!(
                            "since={value:?} is not an RFC 3339 time; give one like since=2026-12-01T00:00:00Z"
                        )
                    })?);
                }
                _ => {
                    let n = value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            format!("limit={value:?} is not a whole number from 1 to {MAX_LIMIT}")
                        })?;
                    limit = Some(n);
                }
            }
        }
        if f.behind.is_some() && f.set.is_none() {
            return Err(
                "behind= needs set=: a version is behind only within its own template set"
                    .to_owned(),
            );
        }
        f.limit = limit.unwrap_or(DEFAULT_LIMIT);
        Ok(f)
    }

    /// The query string that [`Filter::parse`] reads back as this filter
    /// (without `?`; empty for the default filter). `limit` is left out when
    /// it is the default.
    pub fn to_query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        let texts = [
            ("type", &self.kind),
            ("set", &self.set),
            ("version", &self.version),
            ("behind", &self.behind),
        ];
        for (key, value) in texts {
            if let Some(v) = value {
                q.append_pair(key, v);
            }
        }
        if let Some(since) = self.since {
            q.append_pair("since", &since.to_string());
        }
        if let Some(after) = &self.after {
            q.append_pair("after", after);
        }
        if self.limit != DEFAULT_LIMIT {
            q.append_pair("limit", &self.limit.to_string());
        }
        q.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn err(q: &str) -> String {
        Filter::parse(Some(q)).unwrap_err()
    }

    #[test]
    fn no_query_is_every_repository_in_pages_of_the_default_size() {
        assert_eq!(Filter::parse(None).unwrap(), Filter::default());
        assert_eq!(Filter::parse(Some("")).unwrap(), Filter::default());
        assert_eq!(Filter::default().limit, DEFAULT_LIMIT);
        assert_eq!(Filter::default().to_query(), "");
    }

    #[test]
    fn every_parameter_is_read_and_percent_decoded() {
        let f = Filter::parse(Some(
            "type=rust-cli&set=acme%20web&version=1.2.0&behind=2.0.0&since=2026-12-01T00:00:00%2B01:00&after=a%26b&limit=7",
        ))
        .unwrap();
        assert_eq!(
            f,
            Filter {
                kind: Some("rust-cli".into()),
                set: Some("acme web".into()),
                version: Some("1.2.0".into()),
                behind: Some("2.0.0".into()),
                since: Some("2026-11-30T23:00:00Z".parse().unwrap()),
                after: Some("a&b".into()),
                limit: 7,
            }
        );
    }

    #[test]
    fn an_unknown_parameter_is_refused_with_the_known_ones() {
        let e = err("typ=x");
        assert_eq!(
            e,
            "unknown query parameter \"typ\"; the parameters are type, set, version, behind, since, after, limit"
        );
    }

    #[test]
    fn a_repeated_parameter_is_refused() {
        assert_eq!(
            err("set=a&set=b"),
            "query parameter \"set\" is given more than once; give it once"
        );
        assert!(err("limit=1&limit=2").contains("\"limit\" is given more than once"));
        assert!(err("since=2026-01-01T00:00:00Z&since=2026-01-01T00:00:00Z").contains("\"since\""));
    }

    #[test]
    fn an_empty_value_is_refused() {
        assert_eq!(
            err("type="),
            "query parameter \"type\" is empty; give it a value or leave it out"
        );
        assert!(err("limit").contains("\"limit\" is empty"));
    }

    #[test]
    fn bad_values_name_what_is_accepted() {
        assert_eq!(
            err("since=yesterday"),
            "since=\"yesterday\" is not an RFC 3339 time; give one like since=2026-12-01T00:00:00Z"
        );
        assert!(err("since=2026-12-01T00:00:00").contains("not an RFC 3339 time"));
        for bad in ["0", "1001", "-1", "ten", "1.5"] {
            assert_eq!(
                err(&format!("limit={bad}")),
                format!("limit=\"{bad}\" is not a whole number from 1 to 1000")
            );
        }
        assert_eq!(Filter::parse(Some("limit=1000")).unwrap().limit, 1000);
    }

    #[test]
    fn behind_needs_a_set() {
        assert_eq!(
            err("behind=1.2.0"),
            "behind= needs set=: a version is behind only within its own template set"
        );
        assert!(Filter::parse(Some("behind=1.2.0&set=web")).is_ok());
        for bad in ["v1.10.0", "%201.10.0", "1..0", "notaversion"] {
            let why = err(&format!("set=web&behind={bad}"));
            assert!(why.contains("is not a version"), "{bad}: {why}");
        }
    }

    fn text() -> impl Strategy<Value = Option<String>> {
        prop::option::of("\\PC{1,12}|[&=+%# ?]{1,4}")
    }

    /// Bounds `behind=` takes: versions, with the characters a query string
    /// must escape (`+`).
    fn bound() -> impl Strategy<Value = Option<String>> {
        prop::option::of("[0-9]{1,3}(\\.[0-9]{1,3}){0,2}(-[a-z0-9.]{1,4})?(\\+[a-z0-9]{1,3})?")
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn parse_reads_back_what_to_query_writes(
            kind in text(), set in text(), version in text(), behind in bound(),
            since in prop::option::of(0i64..4_000_000_000, ), nanos in 0i32..1_000_000_000,
            after in text(), limit in 1..=MAX_LIMIT,
        ) {
            let f = Filter {
                kind,
                behind: if set.is_some() { behind } else { None },
                set,
                version,
                since: since.map(|s| jiff::Timestamp::new(s, nanos).unwrap()),
                after,
                limit,
            };
            prop_assert_eq!(Filter::parse(Some(&f.to_query())), Ok(f));
        }
    }
}
