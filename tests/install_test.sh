#!/bin/sh
# End-to-end checks of install.sh against a web server on 127.0.0.1.
#
# usage: tests/install_test.sh --binary PATH   pack PATH into a stand-in release
#                                              (fast; what `cargo test` runs)
#        tests/install_test.sh --dist DIR      use real archives + SHA256SUMS
#                                              from scripts/dist.sh
#
# Needs python3 (for `python3 -m http.server`), curl, tar, gzip, sha256sum or
# shasum; bash and man-db's man for some checks of the completions and man page
# (skipped, and said so, without them). Each run gets its own HOME, so nothing
# lands in the real one. Ends with "N passed, N failed"; exits non-zero when
# any check failed.
# INSTALL_TEST_SHELL picks the shell that runs install.sh (default: sh), e.g.
# "bash --posix" or "busybox sh".
set -eu

prog=spawn-elite
root=$(cd "$(dirname "$0")/.." && pwd)
installer=$root/install.sh

passed=0
failed=0
# Word-split on purpose: "busybox sh" is two words.
shell_under_test=${INSTALL_TEST_SHELL:-sh}
server_pid=""
scratch=""

main() {
    mode=${1:-}
    source=${2:-}
    case $mode in
        --binary | --dist) [ -n "$source" ] || usage ;;
        *) usage ;;
    esac

    scratch=$(mktemp -d)
    trap finish EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    serve=$scratch/www
    mkdir -p "$serve/good"
    if [ "$mode" = --binary ]; then
        fake_release "$source" "$serve/good"
    else
        cp "$source"/"$prog"-*.tar.gz "$source/SHA256SUMS" "$serve/good/"
    fi
    cp "$installer" "$serve/install.sh"
    archive_name=$(host_archive "$serve/good")
    [ -n "$archive_name" ] || bail "no archive in the release runs on this host"

    # A release whose SHA256SUMS lies about the archive.
    mkdir "$serve/badsum"
    cp "$serve/good/$archive_name" "$serve/badsum/"
    sed 's/^[0-9a-f]\{8\}/00000000/' "$serve/good/SHA256SUMS" >"$serve/badsum/SHA256SUMS"
    # A release that lists the archive but lacks the file itself (404).
    mkdir "$serve/missing"
    cp "$serve/good/SHA256SUMS" "$serve/missing/"
    # A release with nothing for this platform.
    mkdir "$serve/otherplatform"
    echo "0000000000000000000000000000000000000000000000000000000000000000  $prog-sparc-unknown-plan9.tar.gz" >"$serve/otherplatform/SHA256SUMS"

    start_server "$serve"
    base=http://127.0.0.1:$port

    if [ "$mode" = --dist ]; then
        case_archive_layout "$serve/good"
    fi
    case_arguments
    case_online_install
    case_curl_pipe
    case_wget_only
    case_checksum_mismatch
    case_missing_asset
    case_no_release_for_platform
    case_unsupported_os
    case_truncated_script
    case_unwritable_dir
    case_offline_install
    case_offline_failures
    case_extras
    case_extras_xdg
    case_no_extras
    case_extras_unwritable
    case_zsh_fpath_hint

    echo
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

usage() {
    sed -n '4,7p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

bail() {
    echo "install_test: error: $*" >&2
    exit 1
}

finish() {
    status=$?
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ -n "$scratch" ]; then
        chmod -R u+w "$scratch" 2>/dev/null || true
        rm -rf "$scratch"
    fi
    exit "$status"
}

# aim URL DIR: the installer's environment for a run against URL into DIR
# (call in a subshell). HOME is DIR's sibling "home" (or XTRA_HOME), so the
# completions and the man page go to home/.local/share and home/.config;
# XTRA_DATA, XTRA_CONFIG and NO_EXTRAS set XDG_DATA_HOME, XDG_CONFIG_HOME and
# SPAWN_ELITE_NO_EXTRAS.
aim() {
    unset SPAWN_ELITE_VERSION SPAWN_ELITE_REPO SPAWN_ELITE_TARGET SPAWN_ELITE_NO_EXTRAS
    unset XDG_DATA_HOME XDG_CONFIG_HOME ZDOTDIR
    SPAWN_ELITE_BASE_URL=$1
    SPAWN_ELITE_INSTALL_DIR=$2
    HOME=${XTRA_HOME:-$(dirname "$2")/home}
    export SPAWN_ELITE_BASE_URL SPAWN_ELITE_INSTALL_DIR HOME
    if [ -n "${XTRA_DATA:-}" ]; then
        XDG_DATA_HOME=$XTRA_DATA
        export XDG_DATA_HOME
    fi
    if [ -n "${XTRA_CONFIG:-}" ]; then
        XDG_CONFIG_HOME=$XTRA_CONFIG
        export XDG_CONFIG_HOME
    fi
    if [ -n "${NO_EXTRAS:-}" ]; then
        SPAWN_ELITE_NO_EXTRAS=$NO_EXTRAS
        export SPAWN_ELITE_NO_EXTRAS
    fi
}

# under_test ARGS...: run the shell chosen to run install.sh.
under_test() {
    # shellcheck disable=SC2086 # "busybox sh" is two words
    $shell_under_test "$@"
}

ok() {
    passed=$((passed + 1))
    echo "ok   - $*"
}

not_ok() {
    failed=$((failed + 1))
    echo "FAIL - $*"
    if [ -s "$scratch/out" ]; then
        sed 's/^/       | /' "$scratch/out"
    fi
}

sha256() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$@"
    else
        shasum -a 256 "$@"
    fi
}

# The triple install.sh would look for first on this host, glibc flavour on
# Linux: a stand-in release built from a debug binary is not static.
host_triple() {
    arch=$(uname -m)
    case $arch in
        amd64) arch=x86_64 ;;
        arm64) arch=aarch64 ;;
    esac
    case $(uname -s) in
        Linux) echo "$arch-unknown-linux-gnu" ;;
        Darwin) echo "$arch-apple-darwin" ;;
        *) bail "this test runs on Linux or macOS only" ;;
    esac
}

# host_archive DIR: the archive in DIR that install.sh will choose here.
host_archive() {
    arch=$(uname -m)
    case $arch in
        amd64) arch=x86_64 ;;
        arm64) arch=aarch64 ;;
    esac
    for triple in "$arch-unknown-linux-musl" "$arch-unknown-linux-gnu" "$arch-apple-darwin"; do
        if [ -f "$1/$prog-$triple.tar.gz" ]; then
            echo "$prog-$triple.tar.gz"
            return 0
        fi
    done
}

# fake_release BINARY DIR: an archive laid out like scripts/dist.sh makes it.
fake_release() {
    triple=$(host_triple)
    top=$scratch/pack/$prog-$triple
    mkdir -p "$top/completions" "$top/man"
    cp "$1" "$top/$prog"
    # A debug build is mostly debug info; without it every case runs faster.
    strip "$top/$prog" 2>/dev/null || true
    echo "stand-in README" >"$top/README.md"
    echo "stand-in LICENSE" >"$top/LICENSE"
    "$1" completions bash >"$top/completions/$prog.bash"
    "$1" completions zsh >"$top/completions/_$prog"
    "$1" completions fish >"$top/completions/$prog.fish"
    "$1" completions powershell >"$top/completions/_$prog.ps1"
    "$1" man >"$top/man/$prog.1"
    tar -C "$scratch/pack" -cf - "$prog-$triple" | gzip -n >"$2/$prog-$triple.tar.gz"
    (cd "$2" && sha256 "$prog-$triple.tar.gz" >SHA256SUMS)
}

start_server() {
    command -v python3 >/dev/null 2>&1 || bail "python3 is needed to serve the release over HTTP"
    # Port 0: the kernel picks a free port, and the server prints which.
    python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$1" \
        >"$scratch/server.out" 2>"$scratch/server.log" &
    server_pid=$!
    port=""
    tries=0
    while [ -z "$port" ]; do
        port=$(sed -n 's/.* port \([0-9][0-9]*\).*/\1/p' "$scratch/server.out" | head -n 1)
        [ -n "$port" ] && break
        tries=$((tries + 1))
        [ "$tries" -lt 100 ] || bail "the HTTP server did not start: $(cat "$scratch/server.log")"
        kill -0 "$server_pid" 2>/dev/null || bail "the HTTP server exited: $(cat "$scratch/server.log")"
        sleep 0.1
    done
}

# run_installer DIR [ARGS...]: install.sh with a clean environment aimed at the
# local server and the install directory DIR; output in $scratch/out.
run_installer() {
    dir=$1
    shift
    set +e
    (
        aim "${BASE_URL:-$base/good}" "$dir"
        under_test "${SCRIPT:-$installer}" "$@"
    ) >"$scratch/out" 2>&1
    rc=$?
    set -e
}

# nothing_installed DIR: neither the binary nor a staged temporary copy, and
# no completion or man page either (their HOME, DIR/../home, does not exist).
nothing_installed() {
    [ ! -e "$1/$prog" ] || return 1
    [ ! -e "$(dirname "$1")/home" ] || return 1
    if [ -d "$1" ]; then
        # shellcheck disable=SC2012 # names are ours; ls -A counts dotfiles
        [ "$(ls -A "$1" | wc -l | tr -d ' ')" -eq 0 ] || return 1
    fi
}

fails_cleanly() {
    name=$1
    dir=$2
    pattern=$3
    if [ "$rc" -eq 0 ]; then
        not_ok "$name: exited 0"
    elif ! nothing_installed "$dir"; then
        not_ok "$name: left files in $dir"
    elif ! grep -q "$pattern" "$scratch/out"; then
        not_ok "$name: message lacks '$pattern'"
    else
        ok "$name (exit $rc: $(grep 'error:' "$scratch/out" | head -n 1 | sed 's/^spawn-elite install: error: //'))"
    fi
}

# Every real archive holds one top directory with the binary, the docs,
# completions for four shells and the man page.
case_archive_layout() {
    bad=""
    for archive in "$1"/"$prog"-*.tar.gz; do
        top=$(basename "$archive" .tar.gz)
        listing=$(tar -tzf "$archive")
        for member in "$prog" README.md LICENSE man/"$prog".1 \
            completions/"$prog".bash completions/_"$prog" completions/"$prog".fish completions/_"$prog".ps1; do
            printf '%s\n' "$listing" | grep -qx "$top/$member" || bad="$bad $top/$member"
        done
        if printf '%s\n' "$listing" | grep -qv "^$top/"; then
            bad="$bad $(basename "$archive"):entries-outside-$top/"
        fi
    done
    if [ -z "$bad" ]; then
        ok "archive layout: binary, README.md, LICENSE, 4 completions, man page under one directory"
    else
        not_ok "archive layout, missing:$bad"
    fi
}

case_online_install() {
    dir=$scratch/t-online/bin
    run_installer "$dir"
    if [ "$rc" -ne 0 ]; then
        not_ok "online install exited $rc"
    elif ! "$dir/$prog" --version >/dev/null 2>&1; then
        not_ok "online install: the installed binary does not run"
    elif [ "$(ls -A "$dir")" != "$prog" ]; then
        not_ok "online install: stray files in $dir"
    elif ! grep -q 'not on your PATH' "$scratch/out"; then
        not_ok "online install: no PATH hint"
    else
        ok "online install into a new directory, binary runs, PATH hint shown"
    fi

    # Again over the installed copy: an upgrade replaces it in place.
    echo stale >"$dir/$prog"
    PATH="$dir:$PATH" run_installer "$dir"
    if [ "$rc" -eq 0 ] && "$dir/$prog" --version >/dev/null 2>&1 && ! grep -q 'not on your PATH' "$scratch/out"; then
        ok "reinstall replaces an existing binary; no PATH hint when already on PATH"
    else
        not_ok "reinstall over an existing binary (exit $rc)"
    fi
}

case_arguments() {
    dir=$scratch/t-args/bin
    run_installer "$dir" --help
    if [ "$rc" -eq 0 ] && grep -q 'offline' "$scratch/out" && ! grep -q 'error' "$scratch/out" && nothing_installed "$dir"; then
        ok "--help prints usage, exits 0, installs nothing"
    else
        not_ok "--help (exit $rc)"
    fi
    run_installer "$dir" --bogus
    fails_cleanly "unknown argument" "$dir" "unknown argument '--bogus'"
    if grep -q 'incomplete' "$scratch/out"; then
        not_ok "unknown argument: also blamed on an incomplete script"
    fi
    run_installer "$dir" --offline
    fails_cleanly "--offline without a file" "$dir" "offline needs"
}

case_curl_pipe() {
    command -v curl >/dev/null 2>&1 || {
        echo "skip - curl | sh: no curl"
        return 0
    }
    dir=$scratch/t-pipe/bin
    set +e
    curl -fsSL "$base/install.sh" | (
        aim "$base/good" "$dir"
        under_test
    ) >"$scratch/out" 2>&1
    rc=$?
    set -e
    if [ "$rc" -eq 0 ] && "$dir/$prog" --version >/dev/null 2>&1; then
        ok "curl -fsSL .../install.sh | sh"
    else
        not_ok "curl | sh exited $rc"
    fi
}

# With a PATH that has wget but no curl.
case_wget_only() {
    wget=$(command -v wget 2>/dev/null || true)
    if [ -z "$wget" ]; then
        echo "skip - wget download: no wget"
        return 0
    fi
    tools=$scratch/wget-only
    mkdir -p "$tools"
    for tool in ${shell_under_test%% *} sh env mktemp uname awk sed tar gzip sha256sum shasum cp chmod mv rm mkdir dirname basename tail cat wget; do
        path=$(command -v "$tool" 2>/dev/null || true)
        [ -z "$path" ] || ln -sf "$path" "$tools/$tool"
    done
    dir=$scratch/t-wget/bin
    PATH=$tools run_installer "$dir"
    if [ "$rc" -eq 0 ] && "$dir/$prog" --version >/dev/null 2>&1; then
        ok "download with wget when curl is absent"
    else
        not_ok "wget-only install exited $rc"
    fi
    dir=$scratch/t-wget404/bin
    PATH=$tools BASE_URL=$base/missing run_installer "$dir"
    fails_cleanly "wget: missing asset" "$dir" "download failed"
}

case_checksum_mismatch() {
    dir=$scratch/t-badsum/bin
    BASE_URL=$base/badsum run_installer "$dir"
    fails_cleanly "checksum mismatch" "$dir" "checksum mismatch"
}

case_missing_asset() {
    dir=$scratch/t-404/bin
    BASE_URL=$base/missing run_installer "$dir"
    fails_cleanly "missing asset (404)" "$dir" "download failed"
    dir=$scratch/t-nosums/bin
    BASE_URL=$base/no-such-release run_installer "$dir"
    fails_cleanly "missing SHA256SUMS (404)" "$dir" "download failed"
}

case_no_release_for_platform() {
    dir=$scratch/t-noplatform/bin
    BASE_URL=$base/otherplatform run_installer "$dir"
    fails_cleanly "release without this platform" "$dir" "unsupported platform"
}

# fake_uname FILE OS ARCH: a uname that reports OS for -s and ARCH otherwise.
fake_uname() {
    # shellcheck disable=SC2016 # $1 belongs to the generated script
    printf '#!/bin/sh\nif [ "$1" = -s ]; then echo %s; else echo %s; fi\n' "$2" "$3" >"$1"
    chmod 755 "$1"
}

case_unsupported_os() {
    fake=$scratch/fake-uname
    mkdir -p "$fake"
    fake_uname "$fake/uname" Plan9 x86_64
    dir=$scratch/t-os/bin
    # Refused before any download: the URL is a closed port.
    PATH=$fake:$PATH BASE_URL=http://127.0.0.1:9/unused run_installer "$dir"
    fails_cleanly "unsupported operating system" "$dir" "unsupported operating system"
    fake_uname "$fake/uname" Linux mips
    PATH=$fake:$PATH run_installer "$dir"
    fails_cleanly "unsupported CPU architecture" "$dir" "unsupported CPU"
}

# Cut the script at many points, as a dropped connection would. Nothing may be
# installed; once the guard line near the top has been read, the exit must be
# non-zero too. Before that only comments (and `set -eu`) have been read.
case_truncated_script() {
    size=$(wc -c <"$installer" | tr -d ' ')
    guard=$(grep -n '^trap .* EXIT$' "$installer" | head -n 1 | cut -d: -f1)
    guard_end=$(head -n "$guard" "$installer" | wc -c | tr -d ' ')
    last_line_start=$((size - $(tail -n 1 "$installer" | wc -c | tr -d ' ')))
    # Every byte of the last line but its closing brace and newline.
    cuts=$guard_end
    cut=$last_line_start
    while [ "$cut" -le $((size - 2)) ]; do
        cuts="$cuts $cut"
        cut=$((cut + 1))
    done
    cut=$((guard_end + 7))
    while [ "$cut" -lt "$size" ]; do
        cuts="$cuts $cut"
        cut=$((cut + 211))
    done
    bad=""
    n=0
    for cut in $cuts; do
        n=$((n + 1))
        head -c "$cut" "$installer" >"$scratch/cut.sh"
        dir=$scratch/t-cut/bin
        SCRIPT=$scratch/cut.sh run_installer "$dir"
        if ! nothing_installed "$dir"; then
            bad="$bad $cut(installed)"
        elif [ "$rc" -eq 0 ]; then
            bad="$bad $cut(exit 0)"
        fi
        # Also as a pipe, the way curl | sh reads it.
        set +e
        (
            aim "$base/good" "$dir"
            under_test <"$scratch/cut.sh"
        ) >"$scratch/out" 2>&1
        rc=$?
        set -e
        if ! nothing_installed "$dir"; then
            bad="$bad $cut(piped, installed)"
        elif [ "$rc" -eq 0 ]; then
            bad="$bad $cut(piped, exit 0)"
        fi
        rm -rf "$scratch/t-cut"
    done
    if [ -z "$bad" ]; then
        ok "truncated script: $n cut points, each fails and installs nothing"
    else
        not_ok "truncated script at byte(s):$bad"
    fi
}

case_unwritable_dir() {
    # A path through a regular file cannot be created, even by root.
    mkdir -p "$scratch/t-blocked"
    echo "not a directory" >"$scratch/t-blocked/file"
    dir=$scratch/t-blocked/file/bin
    run_installer "$dir"
    if [ "$rc" -ne 0 ] && [ ! -e "$dir" ] && grep -q "cannot create the install directory" "$scratch/out"; then
        ok "install dir that cannot be created (exit $rc)"
    else
        not_ok "install dir that cannot be created (exit $rc)"
    fi

    # An existing directory without write permission. Root ignores permission
    # bits, so as root the installer runs as the unprivileged user 'nobody'.
    dir=$scratch/t-readonly/bin
    mkdir -p "$dir"
    chmod 555 "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        if ! command -v setpriv >/dev/null 2>&1; then
            echo "skip - read-only install dir: running as root without setpriv"
            return 0
        fi
        chmod 755 "$scratch" "$scratch/t-readonly"
        set +e
        # shellcheck disable=SC2086 # "busybox sh" is two words
        env HOME=/nonexistent SPAWN_ELITE_BASE_URL="$base/good" SPAWN_ELITE_INSTALL_DIR="$dir" \
            setpriv --reuid=65534 --regid=65534 --clear-groups $shell_under_test "$serve/install.sh" >"$scratch/out" 2>&1
        rc=$?
        set -e
    else
        run_installer "$dir"
    fi
    fails_cleanly "read-only install dir" "$dir" "cannot write to"
}

case_offline_install() {
    # Only the archive and SHA256SUMS, copied as one would onto an air-gapped
    # host; the base URL points at a closed port to prove nothing is fetched.
    carry=$scratch/usb
    mkdir -p "$carry"
    cp "$serve/good/$archive_name" "$serve/good/SHA256SUMS" "$carry/"
    dir=$scratch/t-offline/bin
    BASE_URL=http://127.0.0.1:9/unused run_installer "$dir" --offline "$carry/$archive_name"
    if [ "$rc" -eq 0 ] && "$dir/$prog" --version >/dev/null 2>&1 &&
        [ -f "$scratch/t-offline/home/.local/share/man/man1/$prog.1" ]; then
        ok "offline install from the archive, man page and completions included"
    else
        not_ok "offline install (exit $rc): no working binary, or no man page"
    fi
}

case_offline_failures() {
    lone=$scratch/lone
    mkdir -p "$lone"
    cp "$serve/good/$archive_name" "$lone/"
    dir=$scratch/t-offline-nosums/bin
    run_installer "$dir" --offline "$lone/$archive_name"
    fails_cleanly "offline without SHA256SUMS" "$dir" "no SHA256SUMS"

    tampered=$scratch/tampered
    mkdir -p "$tampered"
    cp "$serve/good/SHA256SUMS" "$tampered/"
    cp "$serve/good/$archive_name" "$tampered/"
    printf 'x' >>"$tampered/$archive_name"
    dir=$scratch/t-offline-tampered/bin
    run_installer "$dir" --offline "$tampered/$archive_name"
    fails_cleanly "offline archive that does not match SHA256SUMS" "$dir" "checksum mismatch"

    dir=$scratch/t-offline-absent/bin
    run_installer "$dir" --offline "$scratch/nowhere.tar.gz"
    fails_cleanly "offline archive that does not exist" "$dir" "no such archive"
}

# The files of the archive install.sh picks here, unpacked once into
# $scratch/ref/ARCHIVE-TOP/.
reference() {
    if [ ! -d "$scratch/ref" ]; then
        mkdir "$scratch/ref"
        tar -xzf "$serve/good/$archive_name" -C "$scratch/ref"
    fi
    echo "$scratch/ref/$(basename "$archive_name" .tar.gz)"
}

# extras_at DATA CONFIG: the four installed paths, one a line, in the order
# install.sh reports them: bash, zsh, fish, man.
extras_at() {
    echo "$1/bash-completion/completions/$prog"
    echo "$1/zsh/site-functions/_$prog"
    echo "$2/fish/completions/$prog.fish"
    echo "$1/man/man1/$prog.1"
}

# check_extras DATA CONFIG: why the completions and man page installed under
# DATA and CONFIG are not right (nothing when they are): each where it belongs,
# byte for byte the archive's file, not executable, and reported on its own
# line of output; no temporary file left beside any.
check_extras() {
    ref=$(reference)
    problems=""
    set -- "$1" "$2" "$ref/completions/$prog.bash" "$ref/completions/_$prog" \
        "$ref/completions/$prog.fish" "$ref/man/$prog.1"
    for what in "bash completion" "zsh completion" "fish completion" "man page"; do
        case $what in
            bash*) installed=$(extras_at "$1" "$2" | sed -n 1p) source=$3 ;;
            zsh*) installed=$(extras_at "$1" "$2" | sed -n 2p) source=$4 ;;
            fish*) installed=$(extras_at "$1" "$2" | sed -n 3p) source=$5 ;;
            *) installed=$(extras_at "$1" "$2" | sed -n 4p) source=$6 ;;
        esac
        if [ ! -f "$installed" ]; then
            problems="$problems; no $installed"
            continue
        fi
        cmp -s "$source" "$installed" || problems="$problems; $installed differs from the archive's"
        [ ! -x "$installed" ] || problems="$problems; $installed is executable"
        [ "$(grep -cxF "spawn-elite install: installed the $what to $installed" "$scratch/out")" -eq 1 ] ||
            problems="$problems; no single line reporting the $what at $installed"
        # shellcheck disable=SC2012 # names are ours; ls -A counts dotfiles
        [ "$(ls -A "$(dirname "$installed")" | wc -l | tr -d ' ')" -eq 1 ] ||
            problems="$problems; stray files beside $installed"
    done
    printf '%s' "${problems#; }"
}

# The completions and man page land in the default XDG places under HOME, with
# the archive's content, and they work: bash can source the completion, man
# can render the page and finds it from PATH alone.
case_extras() {
    # The default layout: ~/.local/bin for the binary, nothing else set.
    home=$scratch/t-extras/home
    dir=$home/.local/bin
    XTRA_HOME=$home run_installer "$dir"
    data=$home/.local/share
    config=$home/.config
    problems=$(check_extras "$data" "$config")
    if [ "$rc" -ne 0 ]; then
        not_ok "extras: install exited $rc"
    elif ! "$dir/$prog" --version >/dev/null 2>&1; then
        not_ok "extras: the binary does not run"
    elif grep -q 'warning' "$scratch/out"; then
        not_ok "extras: warnings on a clean install"
    elif [ -n "$problems" ]; then
        not_ok "extras: $problems"
    else
        ok "extras: bash, zsh, fish completions and the man page under ~/.local/share and ~/.config, as in the archive, one line each"
    fi

    bash_file=$data/bash-completion/completions/$prog
    if ! command -v bash >/dev/null 2>&1; then
        echo "skip - extras: bash sources the completion: no bash"
    elif bash -c '. "$1" && complete -p spawn-elite' sh "$bash_file" >"$scratch/out" 2>&1 &&
        grep -q -- '-F .* spawn-elite$' "$scratch/out" && [ "$(wc -l <"$scratch/out" | tr -d ' ')" -eq 1 ]; then
        ok "extras: bash sources the completion without error and it completes spawn-elite"
    else
        not_ok "extras: bash cannot source $bash_file"
    fi

    man_file=$data/man/man1/$prog.1
    if ! grep -q "^\.TH $prog 1 " "$man_file"; then
        : >"$scratch/out"
        not_ok "extras: $man_file has no roff .TH $prog 1 header"
    elif ! man --help 2>&1 | grep -q -- '--local-file'; then
        ok "extras: the man page has a roff .TH header (no man-db man here: not rendered)"
    elif ! MANWIDTH=80 man -l "$man_file" 2>"$scratch/out" | grep -q '^NAME'; then
        not_ok "extras: man -l cannot render $man_file"
    elif [ "$(env -u MANPATH HOME="$home" PATH="$dir:/usr/bin:/bin" man -w "$prog" 2>"$scratch/out")" != "$man_file" ]; then
        not_ok "extras: man -w $prog with $dir on PATH does not find $man_file"
    else
        ok "extras: man -l renders the page, and man finds it once the install dir is on PATH"
    fi

    # Reinstalling replaces each one in place.
    for f in $(extras_at "$data" "$config"); do
        if [ -f "$f" ]; then
            echo stale >"$f"
        fi
    done
    XTRA_HOME=$home run_installer "$dir"
    problems=$(check_extras "$data" "$config")
    if [ "$rc" -eq 0 ] && [ -z "$problems" ]; then
        ok "extras: a reinstall replaces each of them"
    else
        not_ok "extras: reinstall (exit $rc) $problems"
    fi
}

# XDG_DATA_HOME and XDG_CONFIG_HOME, when absolute, replace ~/.local/share and
# ~/.config; a relative one is ignored, as the XDG specification says.
case_extras_xdg() {
    dir=$scratch/t-xdg/bin
    XTRA_DATA=$scratch/t-xdg/data/ XTRA_CONFIG=$scratch/t-xdg/config run_installer "$dir"
    problems=$(check_extras "$scratch/t-xdg/data" "$scratch/t-xdg/config")
    if [ "$rc" -eq 0 ] && [ -z "$problems" ] && [ ! -e "$scratch/t-xdg/home" ]; then
        ok "extras: under XDG_DATA_HOME and XDG_CONFIG_HOME when they are set"
    else
        not_ok "extras with XDG_DATA_HOME and XDG_CONFIG_HOME (exit $rc) $problems"
    fi

    dir=$scratch/t-xdg-rel/bin
    XTRA_DATA=relative/data XTRA_CONFIG=relative/config run_installer "$dir"
    home=$scratch/t-xdg-rel/home
    problems=$(check_extras "$home/.local/share" "$home/.config")
    if [ "$rc" -eq 0 ] && [ -z "$problems" ] && [ ! -e relative ]; then
        ok "extras: a relative XDG_DATA_HOME or XDG_CONFIG_HOME is ignored"
    else
        not_ok "extras with a relative XDG_DATA_HOME (exit $rc) $problems"
    fi
}

case_no_extras() {
    for how in --no-extras SPAWN_ELITE_NO_EXTRAS=1; do
        dir=$scratch/t-noextras/bin
        rm -rf "$scratch/t-noextras"
        if [ "$how" = --no-extras ]; then
            run_installer "$dir" --no-extras
        else
            NO_EXTRAS=1 run_installer "$dir"
        fi
        if [ "$rc" -ne 0 ]; then
            not_ok "$how: exited $rc"
        elif ! "$dir/$prog" --version >/dev/null 2>&1; then
            not_ok "$how: the binary does not run"
        elif [ -e "$scratch/t-noextras/home" ]; then
            not_ok "$how: wrote under HOME: $(find "$scratch/t-noextras/home" -type f | tr '\n' ' ')"
        elif grep -q 'completion\|man page' "$scratch/out"; then
            not_ok "$how: output mentions completions or the man page"
        else
            ok "$how installs the binary and nothing else"
        fi
    done
    dir=$scratch/t-noextras-bad/bin
    NO_EXTRAS=maybe run_installer "$dir"
    fails_cleanly "SPAWN_ELITE_NO_EXTRAS=maybe" "$dir" "SPAWN_ELITE_NO_EXTRAS is 'maybe'"
}

# Decided: the binary is what was asked for, so an extra that cannot be
# written is a warning naming it, never a failed install. Exit 0, the binary
# in place, the other extras installed, no temporary file left behind.
case_extras_unwritable() {
    # A path through a regular file cannot be created, even by root.
    dir=$scratch/t-xblocked/bin
    mkdir -p "$scratch/t-xblocked"
    echo "not a directory" >"$scratch/t-xblocked/file"
    XTRA_DATA=$scratch/t-xblocked/file/data run_installer "$dir"
    home=$scratch/t-xblocked/home
    fish=$home/.config/fish/completions/$prog.fish
    if [ "$rc" -ne 0 ]; then
        not_ok "extras dir that cannot be created: exited $rc"
    elif ! "$dir/$prog" --version >/dev/null 2>&1; then
        not_ok "extras dir that cannot be created: no working binary"
    elif [ "$(grep -c 'warning: .* not installed: cannot create ' "$scratch/out")" -ne 3 ]; then
        not_ok "extras dir that cannot be created: not one warning each for bash, zsh and man"
    elif [ ! -f "$fish" ] || ! grep -q "installed the fish completion to $fish" "$scratch/out"; then
        not_ok "extras dir that cannot be created: the fish completion was not installed anyway"
    elif [ -n "$(find "$scratch/t-xblocked" -name '.*.tmp.*')" ]; then
        not_ok "extras dir that cannot be created: temporary files left"
    else
        ok "extras dir that cannot be created: warns for each, installs the rest, binary installed, exit 0"
    fi

    # A completions directory that exists but cannot be written. Root ignores
    # permission bits, so as root the installer runs as the user 'nobody'.
    ro=$scratch/t-xreadonly
    dir=$ro/bin
    home=$ro/home
    completions=$home/.local/share/bash-completion/completions
    mkdir -p "$dir" "$completions"
    if [ "$(id -u)" -eq 0 ]; then
        if ! command -v setpriv >/dev/null 2>&1; then
            echo "skip - read-only completions dir: running as root without setpriv"
            return 0
        fi
        chmod 755 "$scratch"
        chown -R 65534:65534 "$ro"
        chmod 555 "$completions"
        set +e
        # shellcheck disable=SC2086 # "busybox sh" is two words
        env -u XDG_DATA_HOME -u XDG_CONFIG_HOME -u SPAWN_ELITE_NO_EXTRAS HOME="$home" \
            SPAWN_ELITE_BASE_URL="$base/good" SPAWN_ELITE_INSTALL_DIR="$dir" \
            setpriv --reuid=65534 --regid=65534 --clear-groups $shell_under_test "$serve/install.sh" >"$scratch/out" 2>&1
        rc=$?
        set -e
    else
        chmod 555 "$completions"
        run_installer "$dir"
    fi
    if [ "$rc" -ne 0 ]; then
        not_ok "read-only completions dir: exited $rc"
    elif ! "$dir/$prog" --version >/dev/null 2>&1; then
        not_ok "read-only completions dir: no working binary"
    elif ! grep -q "warning: bash completion not installed: cannot write to $completions" "$scratch/out"; then
        not_ok "read-only completions dir: no warning naming $completions"
    elif [ -n "$(ls -A "$completions")" ]; then
        not_ok "read-only completions dir: files left in it"
    elif [ ! -f "$home/.local/share/man/man1/$prog.1" ]; then
        not_ok "read-only completions dir: the man page was not installed anyway"
    else
        ok "read-only completions dir: one warning, the rest installed, exit 0"
    fi
}

# zsh reads completions only from its fpath: when a zsh is on PATH and the
# directory is not on its fpath, the fpath line to add is printed. A stand-in
# zsh reports the fpath, so this runs the same with or without a real zsh.
case_zsh_fpath_hint() {
    fake=$scratch/fake-zsh
    mkdir -p "$fake"
    dir=$scratch/t-fpath/bin
    site=$scratch/t-fpath/home/.local/share/zsh/site-functions
    printf '#!/bin/sh\necho /usr/share/zsh/functions/Completion\n' >"$fake/zsh"
    chmod 755 "$fake/zsh"
    PATH=$fake:$PATH run_installer "$dir"
    if [ "$rc" -eq 0 ] && grep -qxF "    fpath=(\"$site\" \$fpath)" "$scratch/out"; then
        ok "zsh completion dir not on fpath: the fpath line is printed"
    else
        not_ok "zsh fpath hint missing (exit $rc)"
    fi
    printf '#!/bin/sh\necho /usr/share/zsh/functions/Completion\necho %s\n' "$site" >"$fake/zsh"
    PATH=$fake:$PATH run_installer "$dir"
    if [ "$rc" -eq 0 ] && ! grep -q 'fpath=(' "$scratch/out"; then
        ok "zsh completion dir already on fpath: no fpath hint"
    else
        not_ok "zsh fpath hint printed although the dir is on fpath (exit $rc)"
    fi
}

main "$@"
