#!/bin/sh
# Installs the spawn-elite binary for this machine, and its shell completions
# and man page into the user's XDG directories.
#
#   curl -fsSL URL/install.sh | sh
#   curl -fsSL URL/install.sh | sh -s -- --no-extras    # the binary only
#   sh install.sh --offline spawn-elite-TARGET.tar.gz   # SHA256SUMS beside it
#
# Environment:
#   SPAWN_ELITE_INSTALL_DIR  where the binary goes       (default: ~/.local/bin)
#   SPAWN_ELITE_NO_EXTRAS    1: as --no-extras
#   SPAWN_ELITE_VERSION      release to fetch, e.g. 0.1.0 (default: latest)
#   SPAWN_ELITE_REPO         GitHub owner/name of the releases
#   SPAWN_ELITE_BASE_URL     directory holding the archives and SHA256SUMS;
#                            overrides VERSION and REPO
#   SPAWN_ELITE_TARGET       force a target triple instead of detecting one
#
# Nothing runs until the last line of this file has been read, so a download
# cut short installs nothing.
set -eu

# Replaced by main's own trap once the whole file has been parsed. Until then a
# shell that reaches the end of a cut-off file fails instead of succeeding.
trap 'echo "spawn-elite install: error: this script is incomplete (interrupted download?); nothing was installed" >&2; exit 1' EXIT

main() {
    # Running main means the whole file arrived.
    trap - EXIT
    prog=spawn-elite
    default_repo=vaultmesh/spawn-elite

    offline=""
    extras=true
    case ${SPAWN_ELITE_NO_EXTRAS:-} in
        "" | 0 | false | no) ;;
        1 | true | yes) extras=false ;;
        *) die "SPAWN_ELITE_NO_EXTRAS is '$SPAWN_ELITE_NO_EXTRAS'; set it to 1 to install the binary only, or 0" ;;
    esac
    while [ $# -gt 0 ]; do
        case $1 in
            --offline)
                [ $# -ge 2 ] || die "--offline needs the path of a $prog-TARGET.tar.gz archive"
                offline=$2
                shift 2
                ;;
            --offline=*)
                offline=${1#--offline=}
                shift
                ;;
            --no-extras)
                extras=false
                shift
                ;;
            -h | --help)
                usage
                return 0
                ;;
            *)
                die "unknown argument '$1' (try --help)"
                ;;
        esac
    done

    install_dir=${SPAWN_ELITE_INSTALL_DIR:-}
    if [ -z "$install_dir" ]; then
        [ -n "${HOME:-}" ] || die "HOME is not set; set SPAWN_ELITE_INSTALL_DIR to choose where to install"
        install_dir=$HOME/.local/bin
    fi

    work=""
    staged=""
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    work=$(mktemp -d 2>/dev/null || mktemp -d -t spawn-elite) || die "cannot create a temporary directory"

    if [ -n "$offline" ]; then
        fetch_offline "$offline"
    else
        fetch_online
    fi

    # archive and sums are set by the fetch step.
    verify_checksum "$archive" "$sums" "$(basename "$archive")"

    mkdir "$work/unpacked"
    tar -xzf "$archive" -C "$work/unpacked" 2>/dev/null || die "cannot unpack $(basename "$archive"): not a gzip-compressed tar archive"
    binary=""
    for candidate in "$work/unpacked"/*/"$prog" "$work/unpacked/$prog"; do
        if [ -f "$candidate" ]; then
            binary=$candidate
            break
        fi
    done
    [ -n "$binary" ] || die "$(basename "$archive") holds no '$prog' binary"

    place "$binary"
    say "installed $("$install_dir/$prog" --version 2>/dev/null || echo "$prog") to $install_dir/$prog"
    if $extras; then
        place_extras "$(dirname "$binary")"
    fi
    path_hint
}

usage() {
    cat <<EOF
Install spawn-elite.

usage: install.sh                       download the release for this machine
       install.sh --offline FILE.tar.gz install from a local archive; the
                                        SHA256SUMS file must sit beside it
       --no-extras                      install the binary only, without the
                                        bash, zsh and fish completions and the
                                        man page (which go under ~/.local/share
                                        and ~/.config, or XDG_DATA_HOME and
                                        XDG_CONFIG_HOME)

Environment: SPAWN_ELITE_INSTALL_DIR (default ~/.local/bin), SPAWN_ELITE_VERSION
(default latest), SPAWN_ELITE_REPO, SPAWN_ELITE_BASE_URL, SPAWN_ELITE_TARGET,
SPAWN_ELITE_NO_EXTRAS=1 (as --no-extras).
EOF
}

say() {
    echo "spawn-elite install: $*" >&2
}

die() {
    echo "spawn-elite install: error: $*" >&2
    exit 1
}

cleanup() {
    status=$?
    if [ -n "${staged:-}" ]; then
        rm -f "$staged"
    fi
    if [ -n "${work:-}" ]; then
        rm -rf "$work"
    fi
    exit "$status"
}

# Archive names this machine can run, best first. Linux prefers the static
# musl build, which runs on any distribution.
targets_for_host() {
    if [ -n "${SPAWN_ELITE_TARGET:-}" ]; then
        echo "$SPAWN_ELITE_TARGET"
        return 0
    fi
    os=$(uname -s)
    arch=$(uname -m)
    case $arch in
        x86_64 | amd64) arch=x86_64 ;;
        aarch64 | arm64) arch=aarch64 ;;
        *) die "unsupported CPU architecture '$arch' (releases exist for x86_64 and aarch64)" ;;
    esac
    case $os in
        Linux) echo "$arch-unknown-linux-musl $arch-unknown-linux-gnu" ;;
        Darwin) echo "$arch-apple-darwin" ;;
        MINGW* | MSYS* | CYGWIN*) die "Windows is not supported; install from WSL, which counts as Linux" ;;
        *) die "unsupported operating system '$os' (releases exist for Linux and macOS)" ;;
    esac
}

base_url() {
    if [ -n "${SPAWN_ELITE_BASE_URL:-}" ]; then
        echo "${SPAWN_ELITE_BASE_URL%/}"
        return 0
    fi
    repo=${SPAWN_ELITE_REPO:-$default_repo}
    version=${SPAWN_ELITE_VERSION:-}
    if [ -z "$version" ] || [ "$version" = latest ]; then
        echo "https://github.com/$repo/releases/latest/download"
    else
        echo "https://github.com/$repo/releases/download/v${version#v}"
    fi
}

# download URL FILE: fails with a message naming the URL.
download() {
    if command -v curl >/dev/null 2>&1; then
        if ! curl --fail --silent --show-error --location --retry 2 --output "$2" "$1" 2>"$work/download.err"; then
            if grep -q 'error: 404' "$work/download.err"; then
                die "download failed: $1 does not exist (HTTP 404); check SPAWN_ELITE_VERSION or SPAWN_ELITE_BASE_URL"
            fi
            die "download failed: $1 ($(tail -n 1 "$work/download.err"))"
        fi
    elif command -v wget >/dev/null 2>&1; then
        wget --quiet --tries=3 --output-document="$2" "$1" 2>"$work/download.err" ||
            die "download failed: $1 (wget could not fetch it; does the release have this file?)"
    else
        die "neither curl nor wget is installed; install one, or use --offline with an archive copied here"
    fi
}

fetch_online() {
    candidates=$(targets_for_host)
    url=$(base_url)
    case $url in
        https://* | http://127.0.0.1[:/]* | http://localhost[:/]*) ;;
        *) say "warning: $url is not https; the download can be read and altered on the way" ;;
    esac
    sums=$work/SHA256SUMS
    download "$url/SHA256SUMS" "$sums"
    name=""
    for target in $candidates; do
        if [ -n "$(expected_sum "$sums" "$prog-$target.tar.gz")" ]; then
            name=$prog-$target.tar.gz
            break
        fi
    done
    [ -n "$name" ] || die "unsupported platform: the release at $url has no archive for $(echo "$candidates" | sed 's/ / or /g')"
    archive=$work/$name
    say "downloading $url/$name"
    download "$url/$name" "$archive"
}

fetch_offline() {
    [ -f "$1" ] || die "no such archive: $1"
    archive=$1
    sums=$(dirname "$1")/SHA256SUMS
    [ -f "$sums" ] || die "no SHA256SUMS beside $1; copy it from the release together with the archive"
}

# expected_sum SUMS NAME: the hash listed for NAME, or nothing.
expected_sum() {
    awk -v n="$2" '$2 == n || $2 == "*" n { print $1; exit }' "$1"
}

verify_checksum() {
    want=$(expected_sum "$2" "$3")
    [ -n "$want" ] || die "SHA256SUMS does not list $3"
    if command -v sha256sum >/dev/null 2>&1; then
        got=$(sha256sum <"$1" | awk '{ print $1 }')
    elif command -v shasum >/dev/null 2>&1; then
        got=$(shasum -a 256 <"$1" | awk '{ print $1 }')
    else
        die "neither sha256sum nor shasum is installed, so the download cannot be verified"
    fi
    [ "$got" = "$want" ] || die "checksum mismatch for $3: expected $want, got $got; nothing was installed"
}

# Copy into a temporary name inside the install directory, check it runs, then
# rename over the old binary: the rename is atomic, so the command is never
# missing or half-written.
place() {
    mkdir -p "$install_dir" 2>/dev/null || die "cannot create the install directory $install_dir; set SPAWN_ELITE_INSTALL_DIR to a directory you can write"
    staged=$install_dir/.$prog.tmp.$$
    if ! cp "$1" "$staged" 2>/dev/null || ! chmod 755 "$staged" 2>/dev/null; then
        die "cannot write to $install_dir; set SPAWN_ELITE_INSTALL_DIR to a directory you can write"
    fi
    "$staged" --version >/dev/null 2>&1 || die "the downloaded binary does not run on this machine (wrong platform?); nothing was installed"
    mv -f "$staged" "$install_dir/$prog" || die "cannot move the binary into $install_dir"
    staged=""
}

# xdg_dir VAR_VALUE FALLBACK: the XDG base directory, which the specification
# says to use only when it is an absolute path; FALLBACK is relative to HOME.
xdg_dir() {
    case $1 in
        /*) echo "${1%/}" ;;
        *)
            [ -n "${HOME:-}" ] || return 1
            echo "$HOME/$2"
            ;;
    esac
}

# place_extras DIR: the completions and man page from the unpacked archive
# directory DIR, each written like the binary (temporary name, then rename).
# They are a convenience: one that cannot be written is a warning, never a
# failed install, since the binary is already in place.
place_extras() {
    data=$(xdg_dir "${XDG_DATA_HOME:-}" .local/share) || data=""
    config=$(xdg_dir "${XDG_CONFIG_HOME:-}" .config) || config=""
    if [ -z "$data" ] || [ -z "$config" ]; then
        say "warning: HOME is not set, so the completions and man page were not installed (set HOME, or XDG_DATA_HOME and XDG_CONFIG_HOME)"
        return 0
    fi
    place_extra "bash completion" "$1/completions/$prog.bash" "$data/bash-completion/completions" "$prog" || true
    if place_extra "zsh completion" "$1/completions/_$prog" "$data/zsh/site-functions" "_$prog"; then
        fpath_hint "$data/zsh/site-functions"
    fi
    place_extra "fish completion" "$1/completions/$prog.fish" "$config/fish/completions" "$prog.fish" || true
    place_extra "man page" "$1/man/$prog.1" "$data/man/man1" "$prog.1" || true
}

# place_extra WHAT SOURCE DIR NAME: copy SOURCE to DIR/NAME; says where, or
# warns why not. Returns non-zero when nothing was placed.
place_extra() {
    if [ ! -f "$2" ]; then
        say "warning: the archive has no $1 ($(basename "$2")); skipped"
        return 1
    fi
    if ! mkdir -p "$3" 2>/dev/null; then
        say "warning: $1 not installed: cannot create $3"
        return 1
    fi
    if [ -d "$3/$4" ]; then
        say "warning: $1 not installed: $3/$4 is a directory"
        return 1
    fi
    staged=$3/.$4.tmp.$$
    if ! cp "$2" "$staged" 2>/dev/null || ! chmod 644 "$staged" 2>/dev/null || ! mv -f "$staged" "$3/$4" 2>/dev/null; then
        rm -f "$staged"
        staged=""
        say "warning: $1 not installed: cannot write to $3"
        return 1
    fi
    staged=""
    say "installed the $1 to $3/$4"
}

# zsh reads completions only from directories on its fpath, which a fresh
# ~/.local/share/zsh/site-functions is not. A non-interactive zsh shows the
# fpath of zshenv; one set in ~/.zshrc cannot be seen from here, hence "if".
fpath_hint() {
    command -v zsh >/dev/null 2>&1 || return 0
    # shellcheck disable=SC2016 # $fpath belongs to zsh
    if zsh -c 'print -rl -- $fpath' </dev/null 2>/dev/null | grep -qxF "$1"; then
        return 0
    fi
    say "zsh looks for completions only on its fpath; unless ~/.zshrc already adds $1, add this before compinit:"
    echo "    fpath=(\"$1\" \$fpath)" >&2
}

path_hint() {
    case ":${PATH:-}:" in
        *":$install_dir:"*) return 0 ;;
    esac
    say "$install_dir is not on your PATH; add it, e.g. in ~/.profile:"
    echo "    export PATH=\"$install_dir:\$PATH\"" >&2
}

# In braces so that no cut-off prefix of this line runs main, e.g. without its
# arguments: a partial group is a syntax error.
{ main "$@"; }
