#!/bin/sh
# The release version the docs pin in their examples must be the crate's own:
# every version number on a line that mentions SPAWN_ELITE_VERSION in
# README.md, docs/INSTALL.md and install.sh equals `version` in Cargo.toml
# (a leading "v" allowed), and README.md and docs/INSTALL.md each show one.
# Run by scripts/test-install.sh, so by CI; after bumping the crate version,
# update the examples it names.
#
# usage: scripts/check-doc-versions.sh
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

crate=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$crate" ] || {
    echo "check-doc-versions: error: no version in Cargo.toml" >&2
    exit 1
}

bad=0
for file in README.md docs/INSTALL.md install.sh; do
    # LINE:VERSION for each version number on a line naming the variable.
    found=$(awk '/SPAWN_ELITE_VERSION/ {
        rest = $0
        while (match(rest, /v?[0-9]+\.[0-9]+\.[0-9]+/)) {
            print NR ":" substr(rest, RSTART, RLENGTH)
            rest = substr(rest, RSTART + RLENGTH)
        }
    }' "$file")
    if [ -z "$found" ] && [ "$file" != install.sh ]; then
        echo "check-doc-versions: $file shows no pinned SPAWN_ELITE_VERSION example" >&2
        bad=1
    fi
    for hit in $found; do
        version=${hit#*:}
        if [ "${version#v}" != "$crate" ]; then
            echo "check-doc-versions: $file:${hit%%:*} pins $version, but Cargo.toml says $crate" >&2
            bad=1
        fi
    done
done
if [ "$bad" -ne 0 ]; then
    exit 1
fi
echo "check-doc-versions: the docs pin $crate, as Cargo.toml does" >&2
