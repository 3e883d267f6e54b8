"""Loopback HTTP probes for scripts/conformance.sh (standard library only).

  probe.py free-port
  probe.py wait URL SECONDS                  until URL answers 200, bounded
  probe.py json URL EXPECTED_JSON            200 and exactly this JSON body
  probe.py metrics URL                       200, Prometheus text, has # TYPE lines
  probe.py prom-up PROM_URL JOB SECONDS      Prometheus reports up == 1 for JOB
"""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (loopback only)
        return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()


def loopback_only(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname
    if host not in {"127.0.0.1", "localhost", "::1"}:
        sys.exit(f"refusing non-loopback URL {url}")


def main(argv: list[str]) -> int:
    cmd = argv[0]
    if cmd == "free-port":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            print(s.getsockname()[1])
        return 0
    url = argv[1]
    loopback_only(url)
    if cmd == "wait":
        deadline = time.monotonic() + float(argv[2])
        while time.monotonic() < deadline:
            try:
                if get(url)[0] == 200:
                    return 0
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.25)
        print(f"{url} did not answer 200 within {argv[2]} s")
        return 1
    if cmd == "json":
        status, ctype, body = get(url)
        print(f"{status} {ctype} {body}")
        ok = status == 200 and json.loads(body) == json.loads(argv[2])
        return 0 if ok else 1
    if cmd == "metrics":
        try:
            status, ctype, body = get(url)
        except urllib.error.HTTPError as err:
            print(f"{url}: HTTP {err.code}")
            return 1
        types = [ln for ln in body.splitlines() if ln.startswith("# TYPE ")]
        print(f"{status} {ctype}; {len(types)} metric families")
        print("\n".join(types[:8]))
        ok = status == 200 and ctype.startswith("text/plain") and len(types) > 0
        return 0 if ok else 1
    if cmd == "prom-up":
        job, seconds = argv[2], float(argv[3])
        query = urllib.parse.urlencode({"query": f'up{{job="{job}"}}'})
        deadline = time.monotonic() + seconds
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                _, _, body = get(f"{url}/api/v1/query?{query}")
                results = json.loads(body)["data"]["result"]
                last = json.dumps(results)
                if results and all(r["value"][1] == "1" for r in results):
                    print(f"up == 1: {last}")
                    return 0
            except (urllib.error.URLError, ConnectionError, OSError, KeyError):
                pass
            time.sleep(1)
        print(f"target not up within {seconds} s; last answer: {last}")
        return 1
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
