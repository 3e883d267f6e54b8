"""An independent RFC 9421 verifier for spawn-elite's callback.

Listens on 127.0.0.1 for one request, checks it with the
`http-message-signatures` package (an RFC 9421 implementation unrelated to
spawn-elite), answers 204 or 401, prints the verdict and exits. It also checks
that the same request with a changed body no longer verifies.

Usage: python verify-callback-python.py PUBLIC_KEY.pem KEY_ID PORT_FILE
"""

import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

import requests
from http_message_signatures import (
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)

public_pem = open(sys.argv[1], "rb").read()
expected_key_id = sys.argv[2]
port_file = sys.argv[3]
REQUIRED = ("@method", "@authority", "@path", "content-type", "content-digest")


class Resolver(HTTPSignatureKeyResolver):
    def resolve_public_key(self, key_id):
        if key_id != expected_key_id:
            raise InvalidSignature(f"unknown key id {key_id}")
        return public_pem

    def resolve_private_key(self, key_id):
        raise NotImplementedError


def check(method, url, headers, body):
    prepared = requests.Request(method, url, headers=headers, data=body).prepare()
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=Resolver())
    return verifier.verify(
        prepared,
        expect_tag="spawn-elite",
        require_components=REQUIRED,
        body=body,
        max_age=None,
    )


verdict = {"status": None}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k: v for k, v in self.headers.items()}
        url = f"http://{self.headers['Host']}{self.path}"
        try:
            results = check("POST", url, headers, body)
            params = results[0].parameters
            try:
                check("POST", url, headers, body.replace(b"merkle_root", b"merkle_rooT"))
                tamper = "TAMPERED BODY VERIFIED (bad)"
                status = 500
            except InvalidSignature:
                tamper = "tampered body rejected"
                status = 204
            print(f"independent verifier: OK label={results[0].label} keyid={params.get('keyid')} "
                  f"alg={params.get('alg')} tag={params.get('tag')}; {tamper}")
        except Exception as e:  # report anything as a failed verification
            print(f"independent verifier: FAILED: {type(e).__name__}: {e}")
            status = 401
        verdict["status"] = status
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
with open(port_file, "w") as f:
    f.write(str(server.server_address[1]))
server.timeout = 30
server.handle_request()
sys.exit(0 if verdict["status"] == 204 else 1)
