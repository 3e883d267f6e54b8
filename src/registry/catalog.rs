//! The fleet as Backstage catalog entities: one `kind: Component` per
//! repository, as a YAML stream (one `---` document per entity), the shape
//! of a `catalog-info.yaml` that Backstage reads from a URL location.
//!
//! Each entity says what the repository's own `catalog-info.yaml` (from
//! `templates/base/catalog-info.yaml.j2`, docs/POSTURE.md) says about the
//! same fields, so that the registry and the repository never disagree
//! about one entity; what only the registry knows goes in annotations.
//!
//! - `metadata.name`: the repository's name. Backstage accepts 1 to 63
//!   characters made of runs of `[a-zA-Z0-9]` joined by single `-`, `_` or
//!   `.`; a spawned repository's name is a DNS-1123 label, which always
//!   fits. A name that does not fit (a receipt from some other sender) is
//!   left out, never renamed: a renamed entity would not match its
//!   repository, and two names could map to one. Each one left out is
//!   named in a `#` comment at the top of the stream.
//! - `metadata.annotations`: `github.com/project-slug` (`ORG/NAME`, when
//!   the receipt has an `org`), as the repository's own file has it, and
//!   under the prefix [`ANNOTATION_PREFIX`] (`spawn-elite.dev/`), stable
//!   across versions: `merkle-root` (of its latest receipt) and, for a
//!   receipt that names its template set (v2), `template-set`,
//!   `template-set-version` and `template-set-digest`. With them a
//!   Backstage search or plugin can find every repository on an old
//!   version of a set.
//! - `spec.type` ([`SPEC_TYPES`]): `service` for `service`,
//!   `infrastructure` for `infra` (Terraform), `tool` for `tool` (a
//!   command-line tool), and `service` for a type of another set, as the
//!   repository's own file has it. Only `service` is among Backstage's
//!   well-known values (`service`, `website`, `library`); Backstage takes
//!   any string, and calling Terraform or a command-line tool a `library`
//!   would mislead the plugins that act on the well-known ones.
//! - `spec.lifecycle`: `experimental`, always, as in the repository's own
//!   file: the receiver knows a repository was spawned or updated, not
//!   that it is established and run in production (Backstage's
//!   `production`); the elite flag says how it was shaped, not that.
//! - `spec.owner`: `group:default/NAME-owners`, the team the repository's
//!   `CODEOWNERS` names (`@ORG/NAME-owners`), as Backstage's GitHub org
//!   import names it and as the repository's own file has it, when the
//!   receipt has an `org` (the team lives in that organisation; the org
//!   itself is not a group that import creates). [`FALLBACK_OWNER`] when
//!   the receipt has no `org`, or `NAME-owners` is longer than an entity
//!   name may be.
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

/// The owner of a repository whose receipt names no `org`: a group a
/// Backstage admin can create (or search for) to find such repositories.
pub const FALLBACK_OWNER: &str = "group:default/unowned";

/// `spec.type` by spawn type, as `templates/base/catalog-info.yaml.j2`
/// maps them; any other type is a `service` there and here.
pub const SPEC_TYPES: &[(&str, &str)] = &[
    ("service", "service"),
    ("infra", "infrastructure"),
    ("tool", "tool"),
];

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
    spec: Spec,
}

#[derive(Serialize)]
struct Metadata<'a> {
    name: &'a str,
    /// Sorted, so that the same fleet gives the same bytes.
    annotations: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Spec {
    #[serde(rename = "type")]
    kind: &'static str,
    lifecycle: &'static str,
    owner: String,
}

fn entity(repo: &Repo) -> Entity<'_> {
    let key = |k: &str| format!("{ANNOTATION_PREFIX}{k}");
    let mut annotations = BTreeMap::new();
    annotations.insert(key("merkle-root"), repo.merkle_root.clone());
    if let Some(set) = &repo.set {
        annotations.insert(key("template-set"), set.name.clone());
        annotations.insert(key("template-set-version"), set.version.clone());
        annotations.insert(key("template-set-digest"), set.digest.clone());
    }
    let team = format!("{}-owners", repo.name);
    let owner = match &repo.org {
        Some(org) => {
            annotations.insert(
                "github.com/project-slug".to_owned(),
                format!("{org}/{}", repo.name),
            );
            if is_entity_name(&team) {
                format!("group:default/{team}")
            } else {
                FALLBACK_OWNER.to_owned()
            }
        }
        None => FALLBACK_OWNER.to_owned(),
    };
    let kind = SPEC_TYPES
        .iter()
        .find(|(ours, _)| *ours == repo.kind)
        .map_or("service", |(_, theirs)| theirs);
    Entity {
        api_version: "backstage.io/v1alpha1",
        kind: "Component",
        metadata: Metadata {
            name: &repo.name,
            annotations,
        },
        spec: Spec {
            kind,
            lifecycle: "experimental",
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
    fn each_repository_becomes_a_component_that_agrees_with_its_own_catalog_info() {
        let mut infra = repo("net");
        infra.kind = "infra".to_owned();
        infra.elite = false;
        infra.org = None;
        infra.set = None;
        let mut tool = repo("cli");
        tool.kind = "tool".to_owned();
        let mut custom = repo("site");
        custom.kind = "website".to_owned();
        let stream = render(&[repo("api"), infra, tool, custom]).unwrap();
        assert!(stream.starts_with("---\n"), "{stream}");
        let docs = documents(&stream);
        assert_eq!(docs.len(), 4, "{stream}");

        let api = &docs[0];
        assert_eq!(at(api, "/apiVersion"), "backstage.io/v1alpha1");
        assert_eq!(at(api, "/kind"), "Component");
        assert_eq!(at(api, "/metadata/name"), "api");
        assert_eq!(at(api, "/spec/type"), "service");
        assert_eq!(at(api, "/spec/lifecycle"), "experimental");
        assert_eq!(at(api, "/spec/owner"), "group:default/api-owners");
        let a = "/metadata/annotations/spawn-elite.dev~1";
        assert_eq!(at(api, &format!("{a}template-set")), "acme-templates");
        // "1.10" would be the number 1.1 if it were not quoted.
        assert_eq!(at(api, &format!("{a}template-set-version")), "1.10");
        assert_eq!(
            at(api, &format!("{a}template-set-digest")),
            format!("blake3:{}", "ab".repeat(32))
        );
        assert_eq!(at(api, &format!("{a}merkle-root")), "cd".repeat(32));
        assert_eq!(
            at(api, "/metadata/annotations/github.com~1project-slug"),
            "acme/api"
        );

        let net = &docs[1];
        assert_eq!(at(net, "/metadata/name"), "net");
        assert_eq!(at(net, "/spec/type"), "infrastructure");
        assert_eq!(at(net, "/spec/lifecycle"), "experimental");
        assert_eq!(at(net, "/spec/owner"), FALLBACK_OWNER);
        let annotations = net["metadata"]["annotations"].as_object().unwrap();
        assert_eq!(
            annotations.keys().collect::<Vec<_>>(),
            ["spawn-elite.dev/merkle-root"],
            "no set, no org: {net}"
        );

        assert_eq!(at(&docs[2], "/spec/type"), "tool");
        assert_eq!(at(&docs[3], "/spec/type"), "service");
    }

    #[test]
    fn the_types_match_the_repositorys_own_catalog_info_template() {
        let template = include_str!("../../templates/base/catalog-info.yaml.j2");
        let spec_type = template
            .lines()
            .find_map(|l| l.trim().strip_prefix("type: "))
            .expect("the template has a spec.type line");
        for (ours, theirs) in SPEC_TYPES {
            let shown = if *ours == "service" {
                format!("else \"{theirs}\"")
            } else {
                format!("\"{theirs}\" if type == \"{ours}\"")
            };
            assert!(spec_type.contains(&shown), "{shown} not in {spec_type}");
        }
        assert!(template.contains("lifecycle: experimental"), "{template}");
        assert!(
            template.contains("owner: group:default/{{ name }}-owners"),
            "{template}"
        );
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
    fn an_owner_team_name_too_long_for_backstage_falls_back() {
        let name = format!("a{}", "b".repeat(57));
        let docs = documents(&render(&[repo(&name)]).unwrap());
        assert_eq!(at(&docs[0], "/metadata/name"), name);
        assert_eq!(at(&docs[0], "/spec/owner"), FALLBACK_OWNER);
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
