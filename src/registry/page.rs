//! The fleet page: one server-rendered HTML document, the answer of
//! `GET /` on the receiver.
//!
//! It is plain HTML5 with its CSS inline and no JavaScript and no external
//! asset, so it shows the same on an air-gapped host, in a text browser and
//! to a screen reader. Everything a test (or a script) needs to find is in
//! the markup: each repository row is `<tr data-repo="NAME">`, a repository
//! behind its set's newest version has `class="behind"` and
//! `data-newest="VERSION"` and says "behind (newest VERSION)" in its text,
//! and each set's summary is `<section data-set="NAME">` with one
//! `<li data-version="V" data-repos="N">` per version in use. The summary
//! line is `<p id="summary" data-shown="N" data-total="M">`: the rows on
//! this page of the repositories that match the page's query, and how many
//! match in all, with a link to the next page (`rel="next"`) when there is
//! one.
//!
//! Every value is escaped as HTML by minijinja (auto-escaping on, set
//! explicitly below rather than left to the template's file name), so a
//! repository or set name is always text, never markup.

use anyhow::{Context, Result};
use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use super::{API_VERSION, EventKind, RepoPage, SetRef, SetUse};

/// The template, part of the binary.
const TEMPLATE: &str = include_str!("page.html");

/// One row of the repository table, with what the template cannot work out
/// on its own (whether it is behind) already worked out.
#[derive(Serialize)]
struct Row<'a> {
    name: &'a str,
    kind: &'a str,
    elite: bool,
    set: Option<&'a SetRef>,
    /// The newest version of its set in use, when that is not its version.
    behind: Option<&'a str>,
    last_event: &'static str,
    last_at: &'a str,
    keyid: &'a str,
    signed: bool,
}

/// What the template sees.
#[derive(Serialize)]
struct Page<'a> {
    rows: Vec<Row<'a>>,
    /// How many repositories match the query in all.
    total: u64,
    /// The filters asked for, as given (shown as text).
    query: Option<&'a str>,
    /// The query of the next page (`after=` the last row), if there is one.
    next: Option<String>,
    sets: &'a [SetUse],
    behind_count: usize,
    without_set: usize,
    generated_at: &'a str,
    api_version: &'static str,
}

/// The newest version of `set` in the fleet, when it is not `set.version`.
/// A set the summary does not list (or lists with no version) is not
/// called behind: there is nothing to compare with.
fn behind<'a>(set: &SetRef, sets: &'a [SetUse]) -> Option<&'a str> {
    let newest = sets.iter().find(|s| s.name == set.name)?.versions.first()?;
    (newest.version != set.version).then_some(newest.version.as_str())
}

fn event_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Spawn => "spawn",
        EventKind::Update => "update",
    }
}

/// `query` with `after=` set to `next` (and any `after=` it had dropped):
/// the query of the page after this one.
fn next_query(query: Option<&str>, next: &str) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if key != "after" {
            out.append_pair(&key, &value);
        }
    }
    out.append_pair("after", next);
    out.finish()
}

/// The page for `page` (one page of the repositories that match `query`,
/// in the order given: the index gives them by name) and `sets` (each with
/// its versions newest first, as `GET /v1/sets` answers). The rows are
/// counted as "shown" of the total that match; the set summary counts the
/// whole fleet. `generated_at` is shown as given (RFC 3339).
pub fn render(
    page: &RepoPage,
    query: Option<&str>,
    sets: &[SetUse],
    generated_at: &str,
) -> Result<String> {
    let repos = &page.repos;
    let rows: Vec<Row> = repos
        .iter()
        .map(|r| Row {
            name: &r.name,
            kind: &r.kind,
            elite: r.elite,
            set: r.set.as_ref(),
            behind: r.set.as_ref().and_then(|s| behind(s, sets)),
            last_event: event_name(r.last_event),
            last_at: &r.last_at,
            keyid: &r.keyid,
            signed: r.signed,
        })
        .collect();
    let behind_count = rows.iter().filter(|r| r.behind.is_some()).count();
    let without_set = repos.iter().filter(|r| r.set.is_none()).count();

    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // minijinja would pick HTML escaping from the ".html" name too; saying
    // so here keeps it on whatever the template is called.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    // A block tag's line leaves no blank line behind in the page.
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .context("the fleet page's template syntax is invalid (a bug in spawn-elite)")?;
    env.set_syntax(syntax);
    env.add_template("page.html", TEMPLATE)
        .context("the fleet page template does not parse (a bug in spawn-elite)")?;
    let html = env
        .get_template("page.html")
        .context("the fleet page template is missing (a bug in spawn-elite)")?
        .render(Value::from(Serde(Page {
            rows,
            total: page.total,
            query: query.filter(|q| !q.is_empty()),
            next: page.next.as_deref().map(|n| next_query(query, n)),
            sets,
            behind_count,
            without_set,
            generated_at,
            api_version: API_VERSION,
        })))
        .context("rendering the fleet page failed (a bug in spawn-elite)")?;
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Repo, VersionUse};

    /// Every one of `repos`, on one page.
    fn all(repos: &[Repo]) -> RepoPage {
        RepoPage {
            repos: repos.to_vec(),
            next: None,
            total: repos.len() as u64,
        }
    }

    #[test]
    fn a_filtered_page_counts_its_rows_of_the_total_names_the_filter_and_links_the_next_page() {
        let page = RepoPage {
            repos: vec![repo("a", None), repo("b", None)],
            next: Some("b".to_owned()),
            total: 5,
        };
        let html = render(&page, Some("type=service&after=0&limit=2"), &[], "now").unwrap();
        assert!(
            html.contains("id=\"summary\" data-shown=\"2\" data-total=\"5\""),
            "{html}"
        );
        assert!(html.contains("2 of 5 repositories shown"), "{html}");
        assert!(
            html.contains("filtered by <code>type=service&amp;after=0&amp;limit=2</code>"),
            "{html}"
        );
        assert!(
            html.contains("<a rel=\"next\" href=\"?type=service&amp;limit=2&amp;after=b\">"),
            "{html}"
        );

        let none = RepoPage {
            repos: vec![],
            next: None,
            total: 0,
        };
        let html = render(&none, Some("set=nope"), &[], "now").unwrap();
        assert!(
            html.contains("No repository matches <code>set=nope</code>"),
            "{html}"
        );
        assert!(!html.contains("No repositories yet"), "{html}");
    }

    fn set(name: &str, version: &str) -> SetRef {
        SetRef {
            name: name.to_owned(),
            version: version.to_owned(),
            digest: format!("blake3:{}", "ab".repeat(32)),
        }
    }

    fn repo(name: &str, set_ref: Option<SetRef>) -> Repo {
        Repo {
            name: name.to_owned(),
            kind: "service".to_owned(),
            elite: true,
            org: Some("acme".to_owned()),
            set: set_ref,
            merkle_root: "cd".repeat(32),
            last_event: EventKind::Spawn,
            last_at: "2026-12-04T21:00:00Z".to_owned(),
            keyid: "9ED6sKuj_iSi2XtkbsZ2GA".to_owned(),
            signed: false,
            events: 1,
        }
    }

    fn set_use(name: &str, versions: &[(&str, u64)]) -> SetUse {
        SetUse {
            name: name.to_owned(),
            versions: versions
                .iter()
                .map(|(v, n)| VersionUse {
                    version: (*v).to_owned(),
                    repos: *n,
                })
                .collect(),
            repos: versions.iter().map(|(_, n)| n).sum(),
        }
    }

    /// The `<tr ...>` start tag of the row of `name`.
    fn row_tag<'a>(page: &'a str, name: &str) -> &'a str {
        let needle = format!("data-repo=\"{name}\"");
        let at = page
            .find(&needle)
            .unwrap_or_else(|| panic!("no row for {name} in:\n{page}"));
        let start = page[..at].rfind("<tr").expect("a row starts with <tr");
        let end = at + page[at..].find('>').expect("the tag ends");
        &page[start..=end]
    }

    /// The whole `<tr>...</tr>` of the row of `name`.
    fn row<'a>(page: &'a str, name: &str) -> &'a str {
        let tag = row_tag(page, name);
        let start = page.find(tag).expect("the tag is in the page");
        let end = start + page[start..].find("</tr>").expect("the row ends");
        &page[start..end]
    }

    #[test]
    fn a_repository_on_an_older_version_than_its_sets_newest_is_marked_behind() {
        let repos = [
            repo("api", Some(set("acme", "1.2.0"))),
            repo("old", Some(set("acme", "1.0.0"))),
        ];
        let sets = [set_use("acme", &[("1.2.0", 1), ("1.0.0", 1)])];
        let page = render(&all(&repos), None, &sets, "2026-12-04T21:05:00Z").unwrap();

        let old = row_tag(&page, "old");
        assert!(old.contains("class=\"behind\""), "{old}");
        assert!(old.contains("data-newest=\"1.2.0\""), "{old}");
        assert!(row(&page, "old").contains("behind (newest 1.2.0)"));

        let api = row_tag(&page, "api");
        assert!(!api.contains("behind"), "{api}");
        assert!(!row(&page, "api").contains("behind (newest"));
        assert!(
            page.contains("2 of 2 repositories shown; 1 of them behind"),
            "{page}"
        );
    }

    #[test]
    fn a_repository_without_a_set_or_with_a_set_not_in_the_summary_is_not_behind() {
        let repos = [repo("v1", None), repo("lone", Some(set("other", "2.0.0")))];
        let sets = [set_use("acme", &[("1.0.0", 3)])];
        let page = render(&all(&repos), None, &sets, "2026-12-04T21:05:00Z").unwrap();
        for name in ["v1", "lone"] {
            assert!(!row_tag(&page, name).contains("behind"), "{name}");
        }
        assert!(row(&page, "v1").contains("none (receipt v1)"));
        assert!(
            page.contains("2 of 2 repositories shown; 0 of them behind"),
            "{page}"
        );
        assert!(page.contains("1 of them without a template set"), "{page}");
    }

    #[test]
    fn names_with_markup_are_shown_as_text_never_as_markup() {
        let mut evil = repo(
            "<script>alert(1)</script>",
            Some(set("<b>set</b>", "1\"<x>")),
        );
        evil.kind = "<img src=x onerror=alert(2)>".to_owned();
        evil.keyid = "k\"><script>".to_owned();
        let sets = [set_use("<b>set</b>", &[("1\"<x>", 1)])];
        let page = render(&all(&[evil]), None, &sets, "<now>").unwrap();

        for raw in ["<script", "<img", "<b>", "<x>", "<now>"] {
            assert!(!page.contains(raw), "{raw} got through unescaped:\n{page}");
        }
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{page}"
        );
        assert!(
            page.contains("&lt;img src=x onerror=alert(2)&gt;"),
            "{page}"
        );
        // An attribute value cannot be closed by a quote in the name.
        assert!(page.contains("data-version=\"1&quot;&lt;x&gt;\""), "{page}");
    }

    #[test]
    fn no_repositories_shows_the_empty_state_naming_how_to_send_the_first_callback() {
        let page = render(&all(&[]), None, &[], "2026-12-04T21:05:00Z").unwrap();
        assert!(page.contains("No repositories yet:"), "{page}");
        assert!(page.contains("--callback"), "{page}");
        assert!(page.contains("--trust"), "{page}");
        assert!(!page.contains("data-repo="), "{page}");
        assert!(!page.contains("<table"), "{page}");
    }

    #[test]
    fn the_set_summary_lists_each_sets_versions_newest_first_with_their_counts() {
        let repos = [
            repo("a", Some(set("acme", "2.0.0"))),
            repo("b", Some(set("acme", "1.10.0"))),
            repo("c", Some(set("acme", "1.10.0"))),
            repo("d", Some(set("spawn-elite", "1.0.0"))),
        ];
        let sets = [
            set_use("acme", &[("2.0.0", 1), ("1.10.0", 2)]),
            set_use("spawn-elite", &[("1.0.0", 1)]),
        ];
        let page = render(&all(&repos), None, &sets, "2026-12-04T21:05:00Z").unwrap();

        let acme = &page[page.find("data-set=\"acme\"").unwrap()..];
        let acme = &acme[..acme.find("</section>").unwrap()];
        let newest = acme
            .find("data-version=\"2.0.0\" data-repos=\"1\"")
            .unwrap();
        let older = acme
            .find("data-version=\"1.10.0\" data-repos=\"2\"")
            .unwrap();
        assert!(newest < older, "{acme}");
        assert!(acme.contains("3 repositories"), "{acme}");
        assert!(acme.contains("1.10.0</span>: 2 repositories"), "{acme}");

        let se = &page[page.find("data-set=\"spawn-elite\"").unwrap()..];
        assert!(
            se.contains("data-version=\"1.0.0\" data-repos=\"1\""),
            "{se}"
        );
        assert_eq!(page.matches("data-repo=").count(), 4);
    }

    #[test]
    fn the_page_is_one_html5_document_with_a_title_a_language_and_no_script() {
        let page = render(
            &all(&[repo("api", None)]),
            None,
            &[],
            "2026-12-04T21:05:00Z",
        )
        .unwrap();
        assert!(
            page.starts_with("<!doctype html>\n<html lang=\"en\">"),
            "{page}"
        );
        assert!(page.contains("<title>"), "{page}");
        assert!(page.contains("<caption>"), "{page}");
        assert!(page.trim_end().ends_with("</html>"), "{page}");
        for banned in ["<script", "src=", "href=\"http", "@import", "url("] {
            assert!(!page.contains(banned), "{banned} in:\n{page}");
        }
    }
}
