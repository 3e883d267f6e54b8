#!/usr/bin/env bash
# Cross-check: the RFC 3161 token a `spawn --sign --tsa` commits is accepted
# by OpenSSL alone (`openssl ts -verify` over the envelope's raw signature
# bytes, against the test TSA's CA), and a deliberate break is refused.
# The TSA is real OpenSSL (`openssl ts -reply`) behind a small python3 HTTP
# server on 127.0.0.1, stopped on exit. Needs openssl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
export XDG_DATA_HOME="$work/data" HOME="$work/home"
mkdir -p "$HOME" "$work/pki"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL="$work/gitconfig"
printf '[user]\n\tname = Cross Check\n\temail = check@example.com\n' >"$GIT_CONFIG_GLOBAL"
unset SPAWN_ELITE_TSA

bin="${SPAWN_ELITE_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --quiet
  bin="${CARGO_TARGET_DIR:-target}/debug/spawn-elite"
fi

# The test TSA: a CA, and a TSA certificate with critical timeStamping.
pki="$work/pki"
( cd "$pki"
  openssl req -x509 -nodes -days 2 -newkey rsa:2048 -keyout ca.key -out ca.pem \
    -subj "/CN=Cross-check CA" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  openssl req -nodes -newkey rsa:2048 -keyout tsa.key -out tsa.csr -subj "/CN=Cross-check TSA" 2>/dev/null
  printf '[v3]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n' >ext.cnf
  openssl x509 -req -in tsa.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -out tsa.pem -extfile ext.cnf -extensions v3 2>/dev/null
  echo 01 >serial
  cat >ts.cnf <<CNF
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
serial = $pki/serial
crypto_device = builtin
signer_cert = $pki/tsa.pem
certs = $pki/ca.pem
signer_key = $pki/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_alg = sha256
CNF
)
cat >"$work/tsa.py" <<'PY'
import http.server, subprocess, sys, tempfile, os
conf, portfile = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with tempfile.TemporaryDirectory() as d:
            q, r = os.path.join(d, "q.tsq"), os.path.join(d, "r.tsr")
            open(q, "wb").write(body)
            subprocess.run(["openssl", "ts", "-reply", "-config", conf, "-queryfile", q, "-out", r],
                           check=True, capture_output=True)
            answer = open(r, "rb").read()
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(portfile, "w").write(str(s.server_address[1]))
s.serve_forever()
PY
python3 "$work/tsa.py" "$pki/ts.cnf" "$work/port" &
server=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { echo "cross-check FAILED: the test TSA did not start" >&2; exit 1; }
url="http://127.0.0.1:$(cat "$work/port")/tsa"

"$bin" keygen -o "$work/key.pem" >/dev/null
"$bin" stamped --sign --key "$work/key.pem" --tsa "$url" --out-dir "$work" -q
repo="$work/stamped"

# The stamped bytes: the envelope's first signature, base64-decoded.
python3 -c 'import json,sys,base64; sys.stdout.buffer.write(base64.b64decode(json.load(open(sys.argv[1]))["signatures"][0]["sig"]))' \
  "$repo/.spawn-elite/attestation.intoto.json" >"$work/sig.bin"
[ "$(wc -c <"$work/sig.bin")" -eq 64 ] || { echo "cross-check FAILED: the signature is not 64 bytes" >&2; exit 1; }

openssl ts -verify -in "$repo/.spawn-elite/attestation.tst" -token_in -data "$work/sig.bin" -CAfile "$pki/ca.pem"
openssl ts -reply -in "$repo/.spawn-elite/attestation.tst" -token_in -token_out -text | grep -E 'Time stamp:|TSA:'

# A deliberate break: one flipped bit in the stamped bytes must be refused.
python3 -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[0]^=1; open(sys.argv[2],"wb").write(b)' \
  "$work/sig.bin" "$work/sig-broken.bin"
if openssl ts -verify -in "$repo/.spawn-elite/attestation.tst" -token_in -data "$work/sig-broken.bin" \
  -CAfile "$pki/ca.pem" >/dev/null 2>&1; then
  echo "cross-check FAILED: a token over other bytes was accepted" >&2
  exit 1
fi
echo "timestamp cross-check: openssl ts -verify accepts the token, and refuses it for changed bytes"
