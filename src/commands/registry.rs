//! `spawn-elite registry list|show|sets`: ask a receiver's registry, and
//! print its answer as a table (or as the API's JSON with `--json`).

use std::time::Duration;

use anyhow::Result;

use crate::cli::{RegistryAction, RegistryConn};
use crate::error::{ExitCode, fail};
use crate::output::stdout_write;
use crate::registry::client::{self, Client};
use crate::registry::filter::Filter;
use crate::registry::{Repo, RepoDetail, SetUse};

pub fn run(action: &RegistryAction) -> Result<ExitCode> {
    match action {
        RegistryAction::List {
            conn,
            kind,
            set,
            version,
            behind,
            since,
            page_size,
        } => {
            let mut query = Vec::new();
            for (key, value) in [
                ("type", kind),
                ("set", set),
                ("version", version),
                ("behind", behind),
                ("since", since),
            ] {
                if let Some(v) = value {
                    query.push(format!("{key}={}", encode(v)));
                }
            }
            query.push(format!("limit={page_size}"));
            // The same parser as the server's: a bad value is refused here,
            // before anything is sent.
            let filter = Filter::parse(Some(&query.join("&"))).map_err(|why| {
                fail(
                    ExitCode::Usage,
                    format!("{why}; see `spawn-elite registry list --help`"),
                )
            })?;
            list(conn, filter)
        }
        RegistryAction::Show { name, conn } => show(conn, name),
        RegistryAction::Sets { conn } => sets(conn),
    }
}

/// A value for a query string (the filter parser decodes it again).
fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn client(conn: &RegistryConn) -> Result<Client> {
    Client::new(&client::Options {
        url: conn.url.clone(),
        key: conn.key.clone(),
        ca_file: conn.ca_cert.clone(),
        allow_insecure_http: conn.allow_insecure_http,
        timeout: Duration::from_secs(u64::from(conn.timeout)),
    })
}

fn list(conn: &RegistryConn, mut filter: Filter) -> Result<ExitCode> {
    let client = client(conn)?;
    let mut repos = Vec::new();
    // Every page; the registry's `next` cursor is strictly increasing, and
    // a registry that repeats one is stopped rather than followed forever.
    loop {
        let page = client.repos(&filter)?;
        repos.extend(page.repos);
        match page.next {
            Some(next) if filter.after.as_deref() != Some(next.as_str()) => {
                filter.after = Some(next)
            }
            _ => break,
        }
    }
    if conn.json {
        let text = serde_json::to_string_pretty(&serde_json::json!({ "repos": repos }))?;
        stdout_write(format!("{text}\n").as_bytes())?;
    } else if repos.is_empty() {
        eprintln!("no repository matches");
    } else {
        stdout_write(repo_rows(&repos).as_bytes())?;
    }
    Ok(ExitCode::Success)
}

/// A value for a table cell: as is, or with its control characters
/// escaped, so that what a registry holds can never move the cursor, color
/// the terminal or forge a row.
fn cell(value: &str) -> std::borrow::Cow<'_, str> {
    if value.chars().any(char::is_control) {
        value.escape_debug().to_string().into()
    } else {
        value.into()
    }
}

fn repo_rows(repos: &[Repo]) -> String {
    let mut text = format!(
        "{:<24} {:<8} {:<24} {:<10} {:<7} {:<22} {:<6} {}\n",
        "NAME", "TYPE", "SET", "VERSION", "EVENT", "AT", "SIGNED", "KEY"
    );
    for r in repos {
        let (set, version) = r
            .set
            .as_ref()
            .map_or(("-", "-"), |s| (s.name.as_str(), s.version.as_str()));
        text.push_str(&format!(
            "{:<24} {:<8} {:<24} {:<10} {:<7} {:<22} {:<6} {}\n",
            cell(&r.name),
            cell(&r.kind),
            cell(set),
            cell(version),
            event_word(r.last_event),
            cell(&short_time(&r.last_at)),
            if r.signed { "yes" } else { "no" },
            cell(&r.keyid)
        ));
    }
    text
}

fn event_word(e: crate::registry::EventKind) -> &'static str {
    match e {
        crate::registry::EventKind::Spawn => "spawn",
        crate::registry::EventKind::Update => "update",
    }
}

/// An RFC 3339 time to the second, for a table.
fn short_time(t: &str) -> String {
    t.parse::<jiff::Timestamp>()
        .map(|ts| {
            ts.round(jiff::Unit::Second)
                .map_or_else(|_| t.to_owned(), |r| r.to_string())
        })
        .unwrap_or_else(|_| t.to_owned())
}

fn show(conn: &RegistryConn, name: &str) -> Result<ExitCode> {
    let Some(detail) = client(conn)?.repo(name)? else {
        return Err(fail(
            ExitCode::Registry,
            format!(
                "the registry has no repository named {name:?}; `spawn-elite registry list` shows the ones it has"
            ),
        ));
    };
    if conn.json {
        let text = serde_json::to_string_pretty(&detail)?;
        stdout_write(format!("{text}\n").as_bytes())?;
    } else {
        stdout_write(history_rows(&detail).as_bytes())?;
    }
    Ok(ExitCode::Success)
}

fn history_rows(d: &RepoDetail) -> String {
    let r = &d.repo;
    let mut text = format!(
        "{} ({}{}), {} event{}\n",
        cell(&r.name),
        cell(&r.kind),
        if r.elite { ", elite" } else { "" },
        r.events,
        if r.events == 1 { "" } else { "s" }
    );
    text.push_str(&format!(
        "{:>6}  {:<7} {:<22} {:<24} {:<10} {:<16} {:<6} {}\n",
        "SEQ", "EVENT", "AT", "SET", "VERSION", "ROOT", "SIGNED", "KEY"
    ));
    for h in &d.history {
        let (set, version) = h
            .set
            .as_ref()
            .map_or(("-", "-"), |s| (s.name.as_str(), s.version.as_str()));
        text.push_str(&format!(
            "{:>6}  {:<7} {:<22} {:<24} {:<10} {:<16} {:<6} {}\n",
            h.seq,
            event_word(h.event),
            cell(&short_time(&h.received_at)),
            cell(set),
            cell(version),
            cell(&h.merkle_root.chars().take(16).collect::<String>()),
            if h.attestation.is_some() { "yes" } else { "no" },
            cell(&h.keyid)
        ));
    }
    text
}

fn sets(conn: &RegistryConn) -> Result<ExitCode> {
    let sets = client(conn)?.sets()?;
    if conn.json {
        let text = serde_json::to_string_pretty(&serde_json::json!({ "sets": sets }))?;
        stdout_write(format!("{text}\n").as_bytes())?;
    } else if sets.is_empty() {
        eprintln!("no template set in use yet");
    } else {
        stdout_write(set_rows(&sets).as_bytes())?;
    }
    Ok(ExitCode::Success)
}

fn set_rows(sets: &[SetUse]) -> String {
    let mut text = format!("{:<24} {:<12} {:>6}\n", "SET", "VERSION", "REPOS");
    for s in sets {
        for (i, v) in s.versions.iter().enumerate() {
            let newest = if i == 0 { "  (newest)" } else { "" };
            text.push_str(&format!(
                "{:<24} {:<12} {:>6}{newest}\n",
                cell(&s.name),
                cell(&v.version),
                v.repos
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_a_cell_are_escaped_and_plain_text_is_kept() {
        assert_eq!(cell("acme"), "acme");
        assert_eq!(cell("a\nforged row"), "a\\nforged row");
        assert_eq!(cell("\u{1b}[31mRED"), "\\u{1b}[31mRED");
        assert!(!cell("x\u{7}").chars().any(char::is_control));
    }
}
