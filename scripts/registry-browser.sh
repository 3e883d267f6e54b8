#!/usr/bin/env bash
# The fleet page in a real browser. Starts `spawn-elite receive` on
# 127.0.0.1, spawns three repositories with signed callbacks to it (one
# from an exported copy of the embedded set with an older version, so that
# it is behind), loads http://ADDR/ in chromium-headless-shell and checks
# the DOM the browser built: the three `data-repo` rows, the behind one
# marked, the per-set counts (and, with PyYAML, reads /v1/catalog back as
# three Backstage Components). Then takes a screenshot,
# target/registry-page.png (the CI artifact).
#
#   cargo build --release && scripts/registry-browser.sh
#   SPAWN_ELITE_BIN=path/to/spawn-elite scripts/registry-browser.sh
#   REGISTRY_PAGE_URL=file:///tmp/page.html scripts/registry-browser.sh
#       (checks an already rendered page of the same three repositories,
#       without a receiver)
#
# Needs python3 and Debian's chromium-headless-shell (or $CHROMIUM). Without
# chromium it says so and exits 0, except under CI=true, where it fails.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${SPAWN_ELITE_BIN:-target/release/spawn-elite}"
shot="target/registry-page.png"
chromium="${CHROMIUM:-chromium-headless-shell}"

fail() {
  echo "registry-browser: FAILED: $*" >&2
  exit 1
}

if ! command -v "$chromium" >/dev/null; then
  if [ "${CI:-}" = true ]; then
    fail "$chromium is not installed (apt-get install chromium-headless-shell, or set CHROMIUM)"
  fi
  echo "registry-browser: skipped: $chromium is not installed (apt-get install chromium-headless-shell, or set CHROMIUM)"
  exit 0
fi
command -v python3 >/dev/null || fail "python3 is needed to check the DOM"

work=$(mktemp -d)
receiver=
cleanup() {
  if [ -n "$receiver" ]; then
    kill -TERM "$receiver" 2>/dev/null || true
    wait "$receiver" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

url="${REGISTRY_PAGE_URL:-}"
if [ -z "$url" ]; then
  [ -x "$bin" ] || fail "no spawn-elite binary at $bin (cargo build --release, or set SPAWN_ELITE_BIN)"
  export XDG_DATA_HOME="$work/data" HOME="$work/home"
  mkdir -p "$work/trust" "$work/repos" "$HOME"
  "$bin" keygen -o "$work/key.pem" >/dev/null
  cp "$work/key.pem.pub" "$work/trust/"

  # Created here, not by the background job's redirection, which may not
  # have run yet when the loop below first reads it.
  : >"$work/receiver.out"
  "$bin" receive --listen 127.0.0.1:0 --trust "$work/trust" --log "$work/received.jsonl" \
    >"$work/receiver.out" 2>"$work/receiver.err" &
  receiver=$!
  addr=
  for _ in $(seq 200); do
    addr=$(sed -n 's/^listening on http:\/\/\([^ ]*\).*/\1/p' "$work/receiver.out" || true)
    [ -n "$addr" ] && break
    kill -0 "$receiver" 2>/dev/null || fail "the receiver exited: $(cat "$work/receiver.err")"
    sleep 0.05
  done
  [ -n "$addr" ] || fail "the receiver printed no 'listening on' line within 10 s"
  url="http://$addr/"

  # The embedded set as files, one version older: same set name, so the
  # registry compares it with the embedded set's version.
  "$bin" templates export "$work/old-set" >/dev/null
  sed -i 's/^version = "1.0.0"$/version = "0.9.0"/' "$work/old-set/spawn-elite.toml"
  grep -q '^version = "0.9.0"$' "$work/old-set/spawn-elite.toml" ||
    fail "could not set the exported set's version (its manifest has no 'version = \"1.0.0\"' line)"

  spawn() {
    "$bin" "$@" --out-dir "$work/repos" --no-git --quiet \
      --callback "http://$addr/hooks/spawn" --key "$work/key.pem" --attempts 3 ||
      fail "spawn-elite $* exited $? (7: the callback was not delivered)"
  }
  spawn svc-a service
  spawn infra-b infra
  spawn old-c tool --templates "$work/old-set"
  logged=$(wc -l <"$work/received.jsonl")
  [ "$logged" -eq 3 ] || fail "the receiver logged $logged receipts, not 3"

  # The status first, so that a missing route says so instead of failing
  # the DOM checks on an error page.
  python3 - "$url" <<'EOF' || fail "GET $url did not answer 200 text/html"
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
        ctype = r.headers.get("Content-Type", "")
        print(f"GET {sys.argv[1]}: {r.status} {ctype}")
        sys.exit(0 if r.status == 200 and ctype.startswith("text/html") else 1)
except urllib.error.HTTPError as e:
    print(f"GET {sys.argv[1]}: {e.code}", file=sys.stderr)
    sys.exit(1)
EOF

  # The Backstage catalog of the same fleet, read back by a YAML parser
  # other than the one that wrote it (PyYAML, when installed).
  # REGISTRY_PYTHON: a Python with PyYAML (.ci/run passes the conformance
  # venv's, which pins it).
  "${REGISTRY_PYTHON:-python3}" - "http://$addr/v1/catalog" <<'EOF' || fail "GET /v1/catalog is not the fleet's catalog"
import sys, urllib.request
import os
try:
    import yaml
except ImportError:
    # .ci/run provides it (REGISTRY_PYTHON): a skip there would hide a
    # check that never ran.
    if os.environ.get("CI") == "true":
        print("FAIL the /v1/catalog check needs PyYAML, and CI=true", file=sys.stderr)
        sys.exit(1)
    print("skipped: the /v1/catalog check needs PyYAML (pip install pyyaml, or set REGISTRY_PYTHON)")
    sys.exit(0)
with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
    docs = list(yaml.safe_load_all(r.read().decode("utf-8")))
got = {d["metadata"]["name"]: d for d in docs}
want = {"svc-a": "service", "infra-b": "infrastructure", "old-c": "tool"}
ok = sorted(got) == sorted(want)
for name, kind in want.items():
    d = got.get(name, {})
    a = d.get("metadata", {}).get("annotations", {})
    ok = ok and d.get("kind") == "Component" and d["spec"]["type"] == kind \
        and d["spec"]["owner"] == f"group:default/{name}-owners" \
        and a.get("spawn-elite.dev/template-set") == "spawn-elite" \
        and a.get("spawn-elite.dev/template-set-version") == ("0.9.0" if name == "old-c" else "1.0.0")
print(("ok   " if ok else "FAIL ") + f"/v1/catalog: {len(docs)} Components {sorted(got)}, their types, owners and set versions")
if not ok:
    print(docs, file=sys.stderr)
sys.exit(0 if ok else 1)
EOF
fi

# Root cannot use chromium's sandbox (CI containers run as root).
sandbox=()
[ "$(id -u)" -eq 0 ] && sandbox=(--no-sandbox)
browse() {
  timeout 60 "$chromium" --headless "${sandbox[@]}" --disable-gpu --no-first-run \
    --user-data-dir="$work/chromium" "$@" 2>>"$work/chromium.err"
}

browse --dump-dom "$url" >"$work/dom.html" ||
  fail "$chromium --dump-dom $url exited $?: $(tail -3 "$work/chromium.err")"

python3 - "$work/dom.html" <<'EOF' || fail "the page $url is not what the fleet holds (DOM above)"
"""Check the DOM as the browser built it, element by element."""
import sys
from html.parser import HTMLParser

class Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows = {}  # name -> {"attrs": {...}, "text": "..."}
        self.sets = {}  # name -> [(version, repos)]
        self.row = self.set = None
        self.title = ""
        self.in_title = False
        self.lang = None
        self.scripts = 0
        self.summary = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "p" and a.get("id") == "summary":
            self.summary = (a.get("data-shown"), a.get("data-total"))
        if tag == "html":
            self.lang = a.get("lang")
        elif tag == "title":
            self.in_title = True
        elif tag == "script":
            self.scripts += 1
        elif tag == "tr" and "data-repo" in a:
            self.row = a["data-repo"]
            self.rows[self.row] = {"attrs": a, "text": ""}
        elif tag == "section" and "data-set" in a:
            self.set = a["data-set"]
            self.sets[self.set] = []
        elif tag == "li" and self.set is not None and "data-version" in a:
            self.sets[self.set].append((a["data-version"], a.get("data-repos")))

    def handle_endtag(self, tag):
        if tag == "tr":
            self.row = None
        elif tag == "section":
            self.set = None
        elif tag == "title":
            self.in_title = False

    def handle_data(self, data):
        if self.row is not None:
            self.rows[self.row]["text"] += data
        if self.in_title:
            self.title += data

dom = Dom()
dom.feed(open(sys.argv[1], encoding="utf-8").read())
problems = []
def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        problems.append(what)

check(dom.lang == "en", f'<html lang="en"> (got {dom.lang!r})')
check(dom.title.strip() != "", f"a <title> (got {dom.title.strip()!r})")
check(dom.scripts == 0, f"no <script> (got {dom.scripts})")
check(dom.summary == ("3", "3"), f'summary data-shown="3" data-total="3" (got {dom.summary})')
check(sorted(dom.rows) == ["infra-b", "old-c", "svc-a"],
      f"three data-repo rows infra-b, old-c, svc-a (got {sorted(dom.rows)})")
old = dom.rows.get("old-c", {"attrs": {}, "text": ""})
check("behind" in old["attrs"].get("class", "").split(), 'old-c has class="behind"')
check(old["attrs"].get("data-newest") == "1.0.0", f"old-c data-newest=1.0.0 (got {old['attrs'].get('data-newest')!r})")
check("behind (newest 1.0.0)" in " ".join(old["text"].split()), "old-c says 'behind (newest 1.0.0)'")
for name in ("svc-a", "infra-b"):
    row = dom.rows.get(name, {"attrs": {}, "text": ""})
    check("behind" not in row["attrs"].get("class", "") and "behind" not in row["text"],
          f"{name} is not marked behind")
check(dom.sets.get("spawn-elite") == [("1.0.0", "2"), ("0.9.0", "1")],
      f"set spawn-elite: 1.0.0 on 2, then 0.9.0 on 1 (got {dom.sets.get('spawn-elite')})")
if problems:
    print(open(sys.argv[1], encoding="utf-8").read(), file=sys.stderr)
    sys.exit(1)
EOF

mkdir -p "$(dirname "$shot")"
rm -f "$shot"
browse --screenshot="$shot" --window-size=1440,810 --hide-scrollbars "$url" >/dev/null ||
  fail "$chromium --screenshot exited $?: $(tail -3 "$work/chromium.err")"
[ "$(head -c 8 "$shot" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
  fail "no PNG screenshot at $shot"
echo "registry-browser: ok: $url checked in $("$chromium" --version 2>/dev/null || echo "$chromium")"
echo "screenshot: $shot ($(wc -c <"$shot") bytes)"
