#!/usr/bin/env python3
"""The digest of a template set (docs/TEMPLATES.md, "The digest"), computed
without spawn-elite's code: the Merkle root of docs/RECEIPT.md over the set's
files, and for a set that extends the embedded one,
H(0x02 || embedded digest || that root).

    pip install blake3
    python3 scripts/templates_digest.py DIR [--embedded HEX]
    python3 scripts/templates_digest.py --vector     # the test vector

For an extending set, --embedded gives the embedded set's digest (what
`spawn-elite templates list --json` prints without --templates).
"""

import os
import stat
import sys
import tempfile

from receipt_vectors import h, leaf, mth

# The test vector: a set of three files and one symlink.
VECTOR = [
    ("spawn-elite.toml", 0o100644,
     b'[set]\nname = "v"\nversion = "1"\n\n[[types]]\nname = "app"\n'
     b'description = "d"\nlayers = ["app"]\n'),
    ("app/README.md.j2", 0o100644, b"# {{ name }}\n"),
    ("app/bin/__name__", 0o100755, b"#!/bin/sh\necho hi\n"),
    ("app/LICENSE", 0o120000, b"README.md.j2"),
]


def entries(root):
    """(path, mode, content) of every file, as a receipt covers it."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d != ".git"]
            filenames = [f for f in filenames if f != ".git"]
        names = filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in names:
            full = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name)).replace(os.sep, "/")
            if rel == ".spawn-elite/receipt.json":
                continue
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                out.append((rel, 0o120000, os.fsencode(os.readlink(full))))
            elif stat.S_ISREG(st.st_mode):
                mode = 0o100755 if st.st_mode & 0o100 else 0o100644
                with open(full, "rb") as f:
                    out.append((rel, mode, f.read()))
            else:
                raise SystemExit(f"{rel}: not a file or symlink")
    return sorted(out, key=lambda e: e[0].encode("utf-8"))


def digest(root, embedded_hex=None):
    own = mth([leaf(p, m, c) for p, m, c in entries(root)])
    with open(os.path.join(root, "spawn-elite.toml"), "rb") as f:
        manifest = f.read()
    # The one manifest line that matters here; a TOML parser is not needed.
    extends = any(
        line.split("#")[0].replace(" ", "") == 'extends="embedded"'
        for line in manifest.decode("utf-8").splitlines()
    )
    if not extends:
        return own.hex()
    if not embedded_hex:
        raise SystemExit("the set extends the embedded one: pass --embedded HEX")
    return h(b"\x02" + bytes.fromhex(embedded_hex) + own).hex()


def make_vector(root):
    for path, mode, content in VECTOR:
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if mode == 0o120000:
            os.symlink(content.decode(), full)
        else:
            with open(full, "wb") as f:
                f.write(content)
            os.chmod(full, mode & 0o777)


def main(argv):
    if argv[:1] == ["--vector"]:
        with tempfile.TemporaryDirectory() as tmp:
            make_vector(tmp)
            print(digest(tmp))
        return
    if argv[:1] == ["--make-vector"] and len(argv) == 2:
        make_vector(argv[1])
        return
    if not argv:
        raise SystemExit(__doc__)
    embedded = argv[argv.index("--embedded") + 1] if "--embedded" in argv else None
    print(digest(argv[0], embedded))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main(sys.argv[1:])
