#!/usr/bin/env python3
"""Check a spawn-elite attestation with third-party tools only, offline.

    verify-provenance-python.py REPO PUBKEY.pem

- the DSSE envelope's signature, by securesystemslib (a DSSE implementation
  of the Secure Systems Lab) with the Ed25519 public key loaded by
  `cryptography`, under the key id spawn-elite prints;
- the payload, parsed into the in-toto attestation framework's own
  Statement v1 and SLSA Provenance v1 models (in-toto-attestation, which
  validates them);
- every subject, by `sha256sum -c` over the repository's files.

Exits non-zero with a message on the first failure. Nothing here comes from
spawn-elite's code.
"""

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1.statement import Statement
from in_toto_attestation.v1 import statement_pb2
from securesystemslib import dsse
from securesystemslib.signer import SSlibKey

ENVELOPE = ".spawn-elite/attestation.intoto.json"


def key_id(public_key) -> str:
    """spawn-elite's key id (docs/CALLBACK.md): base64url, no padding, of the
    first 16 bytes of SHA-256 over the raw 32-byte Ed25519 key."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest()[:16]).decode().rstrip("=")


def main() -> int:
    repo, pub = Path(sys.argv[1]), Path(sys.argv[2])
    public_key = load_pem_public_key(pub.read_bytes())
    key = SSlibKey.from_crypto(public_key, keyid=key_id(public_key))
    envelope = dsse.Envelope.from_dict(json.loads((repo / ENVELOPE).read_text()))
    verified = envelope.verify([key], 1)
    print(f"securesystemslib: DSSE signature verified by key {', '.join(verified)}")

    if envelope.payload_type != "application/vnd.in-toto+json":
        raise SystemExit(f"payloadType is {envelope.payload_type!r}")
    statement_pb = json_format.Parse(envelope.payload.decode(), statement_pb2.Statement())
    Statement.copy_from_pb(statement_pb).validate()
    if statement_pb.predicate_type != "https://slsa.dev/provenance/v1":
        raise SystemExit(f"predicateType is {statement_pb.predicate_type!r}")
    predicate = json_format.ParseDict(
        json_format.MessageToDict(statement_pb.predicate), provenance_pb2.Provenance()
    )
    if not predicate.build_definition.build_type or not predicate.run_details.builder.id:
        raise SystemExit("the SLSA predicate has no buildType or builder id")
    print(
        f"in-toto-attestation: a valid Statement v1 with {len(statement_pb.subject)} subjects "
        f"and an SLSA Provenance v1 predicate (buildType {predicate.build_definition.build_type})"
    )

    lines = "".join(f"{s.digest['sha256']}  {s.name}\n" for s in statement_pb.subject)
    check = subprocess.run(
        ["sha256sum", "--check", "--strict", "--quiet", "-"],
        input=lines.encode(),
        cwd=repo,
        capture_output=True,
    )
    if check.returncode != 0:
        raise SystemExit("sha256sum: " + (check.stdout + check.stderr).decode().strip())
    print(f"sha256sum: all {len(statement_pb.subject)} subjects match the files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
