#!/usr/bin/env python3
"""Send one RFC 9421-signed callback to 127.0.0.1, with parts changed at will.

The signature is made by the real `openssl` (Ed25519, `pkeyutl -rawin`) over
a signature base built as docs/CALLBACK.md describes, so the suite can sign
what spawn-elite itself would never send: another authority or path, another
content type, no `alg`. Prints the HTTP status (or 'error ...').

  sign.py --key KEY.pem --receipt R.json --port P [--authority A] [--path /p]
          [--content-type T] [--no-alg]

--authority is what the signature covers and what the Host header says
(default 127.0.0.1:P); the request always goes to 127.0.0.1:P.
"""
import argparse
import base64
import hashlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--key", required=True)
    ap.add_argument("--receipt", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--authority")
    ap.add_argument("--path", default="/hooks/spawn")
    ap.add_argument("--content-type", default="application/json")
    ap.add_argument("--no-alg", action="store_true")
    args = ap.parse_args()
    authority = args.authority or f"127.0.0.1:{args.port}"
    body = open(args.receipt, "rb").read()
    root = json.loads(body)["merkle_root"]
    der = subprocess.run(
        ["openssl", "pkey", "-in", args.key, "-pubout", "-outform", "DER"],
        check=True, capture_output=True,
    ).stdout
    keyid = b64url(hashlib.sha256(der[-32:]).digest()[:16])
    digest = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
    created = int(time.time())
    params = (
        '("@method" "@authority" "@path" "content-type" "content-digest")'
        f';created={created};expires={created + 300};nonce="{b64url(os.urandom(16))}"'
        f';keyid="{keyid}"'
        + ("" if args.no_alg else ';alg="ed25519"')
        + ';tag="spawn-elite"'
    )
    base = (
        f'"@method": POST\n"@authority": {authority}\n"@path": {args.path}\n'
        f'"content-type": {args.content_type}\n"content-digest": {digest}\n'
        f'"@signature-params": {params}'
    )
    with tempfile.NamedTemporaryFile("wb", delete=False) as f:
        f.write(base.encode())
        base_file = f.name
    try:
        sig = subprocess.run(
            ["openssl", "pkeyutl", "-sign", "-inkey", args.key, "-rawin", "-in", base_file],
            check=True, capture_output=True,
        ).stdout
    finally:
        os.unlink(base_file)
    headers = {
        "Host": authority,
        "Content-Type": args.content_type,
        "Content-Digest": digest,
        "Idempotency-Key": root,
        "Signature-Input": "spawn=" + params,
        "Signature": "spawn=:" + base64.b64encode(sig).decode() + ":",
        "Content-Length": str(len(body)),
    }
    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=5)
    try:
        conn.putrequest("POST", args.path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        resp = conn.getresponse()
        print(resp.status, resp.read().decode(errors="replace").strip()[:200])
    except OSError as e:
        print(f"error {e}")
        return 1
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
