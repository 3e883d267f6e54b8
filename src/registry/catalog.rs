//! The fleet as Backstage catalog entities: one `kind: Component` per
//! repository, as a YAML stream (one `---` document per entity), the shape
//! of a `catalog-info.yaml` that Backstage reads from a URL location.
//!
//! What each field says, and why:
//!
//! - `metadata.name`: the repository's name. Backstage accepts 1 to 63
//!   characters made of runs of `[a-zA-Z0-9]` joined by single `-`, `_` or
//!   `.`; a spawned repository's name is a DNS-1123 label, which always
//!   fits. A name that does not fit (a receipt from some other sender) is
//!   left out, never renamed: a renamed entity would not match its
//!   repository, and two names could map to one. Each one left out is
//!   named in a `#` comment at the top of the stream.
//! - `metadata.annotations`, all under the prefix [`ANNOTATION_PREFIX`]
//!   (`spawn-elite.dev/`): `merkle-root` (of its latest receipt), and for
//!   a receipt that names its template set (v2) `template-set`,
//!   `template-set-version` and `template-set-digest`.
//!   With them a Backstage search or plugin can find every repository on an
//!   old version of a set.
//! - `spec.type`: the spawn type as it is. The embedded `service` is
//!   Backstage's well-known `service` (a backend exposing an API). `infra`
//!   (Terraform) and `tool` (a command-line tool) have no well-known
//!   equivalent among `service`, `website` and `library`, and Backstage
//!   takes any string here while its plugins act on the well-known ones (a
//!   `website` gets website tooling), so calling a Terraform repository or
//!   a command-line tool a `library` would be wrong in a way that shows,
//!   while `infra` only goes unrecognised. A custom set's types pass
//!   through the same way.
//! - `spec.lifecycle`: `production` for an elite spawn, `experimental` for
//!   one made with `--no-elite`. It says how the repository was shaped
//!   (the elite layers add the CI, containers, Kubernetes and monitoring
//!   of a production repository; without them it is base and type files
//!   only), not whether it runs in production: the receiver cannot know
//!   that.
//! - `spec.owner`: `group:ORG` from the `org` template value of its latest
//!   receipt; [`FALLBACK_OWNER`] when the receipt has none or it is not a
//!   Backstage entity name (the value then stays visible in the
//!   `spawn-elite.dev/org` annotation).
//!
//! The YAML comes from `serde_norway`, a maintained fork of the archived
//! `serde_yaml` with the same emitter, so every string that YAML would read
//! as something else (`yes`, `1.10`, `null`) is quoted for us.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Serialize;

use super::Repo;

/// The prefix of every annotation spawn-elite writes.
pub const ANNOTATION_PREFIX: &str = "spawn-elite.dev/";

/// The owner of a repository whose receipt names no usable `org`.
pub const FALLBACK_OWNER: &str = "group:unowned";

/// Whether Backstage accepts `name` as an entity name (`metadata.name`,
/// and the name part of a reference such as an owner): 1 to 63 characters,
/// runs of ASCII letters and digits joined by single `-`, `_` or `.`.
pub fn is_entity_name(name: &str) -> bool {
    name.len() <= 63
        && name
            .split(['-', '_', '.'])
            .all(|run| !run.is_empty() && run.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entity<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata<'a>,
    spec: Spec<'a>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    name: &'a str,
    /// Sorted, so that the same fleet gives the same bytes.
    annotations: BTreeMap<String, &'a str>,
}

#[derive(Serialize)]
struct Spec<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    lifecycle: &'static str,
    owner: String,
}

fn entity(repo: &Repo) -> Entity<'_> {
    let key = |k: &str| format!("{ANNOTATION_PREFIX}{k}");
    let mut annotations = BTreeMap::new();
    annotations.insert(key("merkle-root"), repo.merkle_root.as_str());
    if let Some(set) = &repo.set {
        annotations.insert(key("template-set"), set.name.as_str());
        annotations.insert(key("template-set-version"), set.version.as_str());
        annotations.insert(key("template-set-digest"), set.digest.as_str());
    }
    let owner = match repo.org.as_deref() {
        Some(org) if is_entity_name(org) => format!("group:{org}"),
        Some(org) => {
            annotations.insert(key("org"), org);
            FALLBACK_OWNER.to_owned()
        }
        None => FALLBACK_OWNER.to_owned(),
    };
    Entity {
        api_version: "backstage.io/v1alpha1",
        kind: "Component",
        metadata: Metadata {
            name: &repo.name,
            annotations,
        },
        spec: Spec {
            kind: &repo.kind,
            lifecycle: if repo.elite {
                "production"
            } else {
                "experimental"
            },
            owner,
        },
    }
}

/// The catalog of `repos`, in the order given: a `#` comment line for
/// each repository left out (its name, escaped to printable ASCII so it
/// cannot end the comment), then one `---` document per entity. No
/// repositories give an empty stream.
pub fn render(repos: &[Repo]) -> Result<String> {
    let mut out = String::new();
    for repo in repos.iter().filter(|r| !is_entity_name(&r.name)) {
        out.push_str(&format!(
            "# left out \"{}\": not a Backstage entity name (1-63 letters or digits, joined by single '-', '_' or '.')\n",
            repo.name.escape_default()
        ));
    }
    for repo in repos.iter().filter(|r| is_entity_name(&r.name)) {
        let doc = serde_norway::to_string(&entity(repo))
            .with_context(|| format!("writing the catalog entity of {} failed", repo.name))?;
        out.push_str("---\n");
        out.push_str(&doc);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::registry::{EventKind, SetRef};

    fn repo(name: &str) -> Repo {
        Repo {
            name: name.to_owned(),
            kind: "service".to_owned(),
            elite: true,
            org: Some("acme".to_owned()),
            set: Some(SetRef {
                name: "acme-templates".to_owned(),
                version: "1.10".to_owned(),
                digest: format!("blake3:{}", "ab".repeat(32)),
            }),
            merkle_root: "cd".repeat(32),
            last_event: EventKind::Update,
            last_at: "2026-12-04T21:00:00Z".to_owned(),
            keyid: "9ED6sKuj_iSi2XtkbsZ2GA".to_owned(),
            signed: true,
            events: 2,
        }
    }

    /// Every document of the stream, read back by the YAML parser.
    fn documents(stream: &str) -> Vec<serde_json::Value> {
        serde_norway::Deserializer::from_str(stream)
            .map(|doc| serde_json::Value::deserialize(doc).expect("each document parses"))
            .collect()
    }

    fn at<'a>(doc: &'a serde_json::Value, path: &str) -> &'a str {
        doc.pointer(path)
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("no string at {path} in {doc}"))
    }

    #[test]
    fn each_repository_becomes_a_component_with_its_set_in_annotations() {
        let mut infra = repo("net");
        infra.kind = "infra".to_owned();
        infra.elite = false;
        infra.org = None;
        infra.set = None;
        let stream = render(&[repo("api"), infra]).unwrap();
        assert!(stream.starts_with("---\n"), "{stream}");
        let docs = documents(&stream);
        assert_eq!(docs.len(), 2, "{stream}");

        let api = &docs[0];
        assert_eq!(at(api, "/apiVersion"), "backstage.io/v1alpha1");
        assert_eq!(at(api, "/kind"), "Component");
        assert_eq!(at(api, "/metadata/name"), "api");
        assert_eq!(at(api, "/spec/type"), "service");
        assert_eq!(at(api, "/spec/lifecycle"), "production");
        assert_eq!(at(api, "/spec/owner"), "group:acme");
        let a = "/metadata/annotations/spawn-elite.dev~1";
        assert_eq!(at(api, &format!("{a}template-set")), "acme-templates");
        // "1.10" would be the number 1.1 if it were not quoted.
        assert_eq!(at(api, &format!("{a}template-set-version")), "1.10");
        assert_eq!(
            at(api, &format!("{a}template-set-digest")),
            format!("blake3:{}", "ab".repeat(32))
        );
        assert_eq!(at(api, &format!("{a}merkle-root")), "cd".repeat(32));

        let net = &docs[1];
        assert_eq!(at(net, "/metadata/name"), "net");
        assert_eq!(at(net, "/spec/type"), "infra");
        assert_eq!(at(net, "/spec/lifecycle"), "experimental");
        assert_eq!(at(net, "/spec/owner"), FALLBACK_OWNER);
        let annotations = net["metadata"]["annotations"].as_object().unwrap();
        assert!(!annotations.contains_key("spawn-elite.dev/template-set"));
        assert!(annotations.keys().all(|k| k.starts_with(ANNOTATION_PREFIX)));
    }

    #[test]
    fn a_name_backstage_would_refuse_is_left_out_and_named_in_a_comment() {
        let long = "a".repeat(64);
        let repos = [
            repo("ok-1"),
            repo("two--dashes"),
            repo("bad name\n---\nkind: Evil"),
            repo(&long),
        ];
        let stream = render(&repos).unwrap();
        let docs = documents(&stream);
        assert_eq!(docs.len(), 1, "{stream}");
        assert_eq!(at(&docs[0], "/metadata/name"), "ok-1");
        assert!(stream.contains("# left out \"two--dashes\": not a Backstage entity name"));
        assert!(
            stream.contains("# left out \"bad name\\n---\\nkind: Evil\""),
            "{stream}"
        );
        assert!(stream.contains(&format!("# left out \"{long}\"")));
        assert!(!stream.contains("\nkind: Evil"), "{stream}");
    }

    #[test]
    fn an_org_that_is_no_entity_name_falls_back_and_stays_in_an_annotation() {
        let mut r = repo("api");
        r.org = Some("Acme Corp".to_owned());
        let docs = documents(&render(&[r]).unwrap());
        assert_eq!(at(&docs[0], "/spec/owner"), FALLBACK_OWNER);
        assert_eq!(
            at(&docs[0], "/metadata/annotations/spawn-elite.dev~1org"),
            "Acme Corp"
        );
    }

    #[test]
    fn backstage_entity_names_follow_its_rule() {
        for ok in ["a", "my-svc", "A.b_c-9", &"x".repeat(63)] {
            assert!(is_entity_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a..b", "a/b", "a b", "é", &"x".repeat(64)] {
            assert!(!is_entity_name(bad), "{bad}");
        }
    }

    #[test]
    fn no_repositories_give_an_empty_stream() {
        assert_eq!(render(&[]).unwrap(), "");
    }
}
