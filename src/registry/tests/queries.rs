//! The registry's questions over a small fleet.

use super::*;

/// A fleet: three sets, versions that sort wrongly as text, updates.
fn fleet() -> (Log, Index) {
    let mut log = Log::new();
    let mut on = |name, set, version, kind, at| {
        let mut e = ev(name, set, version);
        e.kind = kind;
        e.at = at;
        log.push(&e);
    };
    on("a", "web", "1.9.0", "svc", "2026-12-01T00:00:00Z");
    on("b", "web", "1.10.0", "svc", "2026-12-01T00:00:00.5Z");
    on("c", "web", "1.2.0", "lib", "2026-12-02T00:00:00Z");
    on("d", "web", "2.0.0-rc.1", "svc", "2026-12-02T12:00:00Z");
    on("e", "cli", "1.0.0", "lib", "2026-12-03T00:00:00Z");
    on("f", "web", "1.9.0", "svc", "2026-12-03T00:00:00Z");
    // c is updated from 1.2.0 to 1.10.0.
    on("c", "web", "1.10.0", "lib", "2026-12-04T00:00:00Z");
    let mut v1 = ev("g", "", "");
    v1.set = None;
    v1.at = "2026-12-04T00:00:00Z";
    log.push(&v1);
    let (index, _) = log.index();
    (log, index)
}

#[test]
fn filters_select_by_type_set_and_exact_version() {
    let (_log, index) = fleet();
    let q = |q: &str| names(&index.repos(&filter(q)).unwrap()).join(",");
    assert_eq!(q(""), "a,b,c,d,e,f,g");
    assert_eq!(q("type=lib"), "c,e");
    assert_eq!(q("set=web"), "a,b,c,d,f");
    assert_eq!(q("set=web&version=1.10.0"), "b,c");
    assert_eq!(q("version=1.9.0&type=svc"), "a,f");
    assert_eq!(q("set=nope"), "");
}

#[test]
fn behind_compares_versions_as_versions_within_the_set() {
    let (_log, index) = fleet();
    let q = |q: &str| names(&index.repos(&filter(q)).unwrap()).join(",");
    // 1.9.0 < 1.10.0, though not as text; c was updated past 1.2.0.
    assert_eq!(q("set=web&behind=1.10.0"), "a,f");
    assert_eq!(q("set=web&behind=2.0.0"), "a,b,c,d,f");
    // A pre-release is behind its release and ahead of what came before.
    assert_eq!(q("set=web&behind=2.0.0-rc.1"), "a,b,c,f");
    assert_eq!(q("set=web&behind=1.9.0"), "");
    assert_eq!(q("set=cli&behind=1.0.1"), "e");
    assert_eq!(q("set=web&behind=2.0.0&type=lib"), "c");
}

#[test]
fn since_selects_by_the_latest_event() {
    let (_log, index) = fleet();
    let q = |q: &str| names(&index.repos(&filter(q)).unwrap()).join(",");
    assert_eq!(q("since=2026-12-03T00:00:00Z"), "c,e,f,g");
    // c's spawn was before, but its update after.
    assert_eq!(q("since=2026-12-03T00:00:01Z"), "c,g");
    assert_eq!(q("since=2026-12-04T01:00:00%2B01:00"), "c,g");
    assert_eq!(q("since=2027-01-01T00:00:00Z"), "");
}

#[test]
fn pages_follow_the_after_cursor_and_count_every_match() {
    let (_log, index) = fleet();
    let first = index.repos(&filter("set=web&limit=2")).unwrap();
    assert_eq!(
        (names(&first), first.next.as_deref(), first.total),
        (vec!["a", "b"], Some("b"), 5)
    );
    let second = index.repos(&filter("set=web&limit=2&after=b")).unwrap();
    assert_eq!(
        (names(&second), second.next.as_deref(), second.total),
        (vec!["c", "d"], Some("d"), 5)
    );
    let last = index.repos(&filter("set=web&limit=2&after=d")).unwrap();
    assert_eq!(
        (names(&last), last.next.as_deref(), last.total),
        (vec!["f"], None, 5)
    );
    // A page that ends exactly at the last match has no next.
    let exact = index.repos(&filter("set=web&limit=5")).unwrap();
    assert_eq!((exact.repos.len(), exact.next), (5, None));
    let behind = index
        .repos(&filter("set=web&behind=2.0.0&limit=3&after=a"))
        .unwrap();
    assert_eq!(
        (names(&behind), behind.next.as_deref(), behind.total),
        (vec!["b", "c", "d"], Some("d"), 5)
    );
}

#[test]
fn sets_count_repositories_by_their_current_version_newest_first() {
    let (_log, index) = fleet();
    let v = |version: &str, repos| VersionUse {
        version: version.into(),
        repos,
    };
    assert_eq!(
        index.sets().unwrap(),
        vec![
            SetUse {
                name: "cli".into(),
                versions: vec![v("1.0.0", 1)],
                repos: 1,
            },
            SetUse {
                name: "web".into(),
                versions: vec![v("2.0.0-rc.1", 1), v("1.10.0", 2), v("1.9.0", 2)],
                repos: 5,
            },
        ]
    );
}

#[test]
fn a_v1_receipt_is_a_repository_without_a_set() {
    let (_log, index) = fleet();
    let g = index.repo("g").unwrap().unwrap();
    assert_eq!((g.repo.set, g.repo.elite, g.repo.org), (None, false, None));
    assert_eq!(g.history[0].set, None);
}

#[test]
fn the_index_can_be_shared_behind_a_mutex() {
    fn send<T: Send>() {}
    send::<Index>();
    send::<std::sync::Mutex<Index>>();
}

#[test]
fn an_index_of_a_missing_log_is_an_error_naming_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("none.jsonl");
    let err = Index::open(&log).err().unwrap().to_string();
    assert_eq!(
        err,
        format!(
            "cannot read log {}: No such file or directory (os error 2)",
            log.display()
        )
    );
    assert!(!Index::path_for(&log).exists());
}
