//! The index's tables, and the statements that write them.

/// `PRAGMA user_version` of the schema below. An index with another one is
/// rebuilt: there is nothing in it the log does not hold.
pub(super) const SCHEMA_VERSION: i64 = 1;

/// The tables. `repos` holds each repository's latest event (`version_key`
/// is [`version::sort_key`] of its set's version, for `behind=`); `events`
/// where each event's line is in the log. `meta` holds the head: `seq`,
/// `end_offset` (where the next line starts), `last_offset` (where the last
/// line starts) and `last_hash` (its BLAKE3).
pub(super) const TABLES: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
CREATE TABLE repos (
    name TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    elite INTEGER NOT NULL,
    org TEXT,
    set_name TEXT,
    set_version TEXT,
    set_digest TEXT,
    version_key TEXT,
    merkle_root TEXT NOT NULL,
    keyid TEXT NOT NULL,
    signed INTEGER NOT NULL,
    last_at TEXT NOT NULL,
    last_unix INTEGER NOT NULL,
    events INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    offset INTEGER NOT NULL,
    len INTEGER NOT NULL,
    is_update INTEGER NOT NULL
);
";

/// The secondary indexes, made after a rebuild's rows are in (one sort
/// instead of a million index updates). `repos` has no rowid, so each of
/// its indexes ends in the name: `behind=` and `version=` read names from
/// `repos_by_version` alone, and [`Index::sets`] counts from it alone.
pub(super) const INDEXES: &str = "
CREATE INDEX repos_by_version ON repos(set_name, version_key, set_version);
CREATE INDEX repos_by_kind ON repos(kind);
CREATE INDEX repos_by_time ON repos(last_unix);
CREATE INDEX events_by_repo ON events(name, seq);
";

pub(super) const REPO_COLUMNS: &str = "name, kind, elite, org, set_name, set_version, set_digest, merkle_root, keyid, signed, last_at, events";

/// Upsert a repository's row from an event; returns how many events it has.
pub(super) const UPSERT_REPO: &str = "
INSERT INTO repos (name, kind, elite, org, set_name, set_version, set_digest, version_key,
                   merkle_root, keyid, signed, last_at, last_unix, events)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 1)
ON CONFLICT (name) DO UPDATE SET
    kind = excluded.kind, elite = excluded.elite, org = excluded.org,
    set_name = excluded.set_name, set_version = excluded.set_version,
    set_digest = excluded.set_digest, version_key = excluded.version_key,
    merkle_root = excluded.merkle_root, keyid = excluded.keyid, signed = excluded.signed,
    last_at = excluded.last_at, last_unix = excluded.last_unix, events = events + 1
RETURNING events";

pub(super) const INSERT_EVENT: &str =
    "INSERT INTO events (seq, name, offset, len, is_update) VALUES (?1, ?2, ?3, ?4, ?5)";

pub(super) const SAVE_HEAD: &str = "
INSERT INTO meta (key, value) VALUES ('seq', ?1), ('end_offset', ?2), ('last_offset', ?3), ('last_hash', ?4)
ON CONFLICT (key) DO UPDATE SET value = excluded.value";
