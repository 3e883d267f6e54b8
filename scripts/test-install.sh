#!/bin/sh
# The real release path, end to end: check that the docs pin the crate's
# version, lint the shell scripts, build the archive with scripts/dist.sh (the
# dist profile), then install from dist/ through a web server on 127.0.0.1 and
# check the extras and the failure cases (tests/install_test.sh). CI runs this
# from .ci/run. `cargo test` does not: its install_sh test runs the same
# checks against a stand-in archive only when asked, with
# `cargo test --test cli install_sh -- --ignored` (it needs python3 and curl).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

sh scripts/check-doc-versions.sh

if ! command -v shellcheck >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-install: installing shellcheck" >&2
    { apt-get update -qq && apt-get install -y -qq shellcheck; } >/dev/null 2>&1 ||
        echo "test-install: could not install shellcheck" >&2
fi

if command -v shellcheck >/dev/null 2>&1; then
    shellcheck -s sh install.sh scripts/dist.sh scripts/test-install.sh scripts/check-doc-versions.sh tests/install_test.sh
    echo "test-install: shellcheck -s sh passed" >&2
else
    echo "test-install: error: shellcheck is not installed; install.sh must pass shellcheck -s sh" >&2
    exit 1
fi

if command -v actionlint >/dev/null 2>&1; then
    actionlint .github/workflows/release.yml
    echo "test-install: actionlint passed" >&2
fi

# The static musl build is the Linux release; dist.sh falls back to glibc (and
# says so) when these cannot be had.
if [ "$(uname -s)" = Linux ]; then
    musl=$(uname -m)-unknown-linux-musl
    if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$musl"; then
        rustup target add "$musl" >/dev/null 2>&1 || echo "test-install: could not add the Rust target $musl" >&2
    fi
    if ! command -v musl-gcc >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        { apt-get update -qq && apt-get install -y -qq musl-tools; } >/dev/null 2>&1 ||
            echo "test-install: could not install musl-tools" >&2
    fi
fi

rm -f dist/spawn-elite-*.tar.gz dist/SHA256SUMS
scripts/dist.sh
sh tests/install_test.sh --dist dist
