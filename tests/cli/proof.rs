//! `prove` and `verify-proof`: every leaf of every tree size proves, and
//! anything changed does not.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Outcome, Sandbox};

/// A tree of `n` files at mixed depths, one executable and one symlink.
fn tree(sb: &Sandbox, n: usize) -> (PathBuf, Vec<String>) {
    let dir = sb.path().join(format!("tree{n}"));
    let mut paths = Vec::new();
    for i in 0..n {
        let rel = match i % 4 {
            0 => format!("f{i}.txt"),
            1 => format!("d{}/f{i}", i % 3),
            2 => format!("d{}/sub/f{i}.sh", i % 2),
            _ => format!("l{i}"),
        };
        let full = dir.join(&rel);
        fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        if i % 4 == 3 {
            symlink(format!("target-{i}"), &full).expect("symlink");
        } else {
            fs::write(&full, format!("content of file {i}\n")).expect("write");
            if i % 4 == 2 {
                fs::set_permissions(&full, fs::Permissions::from_mode(0o755)).expect("chmod");
            }
        }
        paths.push(rel);
    }
    (dir, paths)
}

fn prove(sb: &Sandbox, dir: &Path, path: &str) -> Value {
    let o = sb.run(["prove".as_ref(), dir.as_os_str(), path.as_ref()]);
    assert_eq!(o.code, 0, "prove {path}: {}", o.stderr);
    serde_json::from_str(&o.stdout).expect("proof is JSON")
}

fn verify_proof(sb: &Sandbox, proof: &Value, file: &Path) -> Outcome {
    let pf = sb.path().join("proof.json");
    fs::write(&pf, proof.to_string()).expect("write proof");
    sb.run(["verify-proof".as_ref(), pf.as_os_str(), file.as_os_str()])
}

#[test]
fn every_leaf_of_trees_of_1_to_33_files_proves_and_verifies() {
    let sb = Sandbox::new();
    for n in 1..=33 {
        let (dir, paths) = tree(&sb, n);
        let root = {
            let o = sb.run(["receipt".as_ref(), dir.as_os_str()]);
            let r: Value = serde_json::from_str(&o.stdout).expect("json");
            r["merkle_root"].clone()
        };
        for path in &paths {
            let proof = prove(&sb, &dir, path);
            assert_eq!(proof["merkle_root"], root);
            assert_eq!(proof["leaf_count"], n);
            assert_eq!(proof["path"], path.as_str());
            let o = verify_proof(&sb, &proof, &dir.join(path));
            assert_eq!(o.code, 0, "n={n} {path}: {}", o.stderr);
            assert!(o.stdout.starts_with("ok: "), "{}", o.stdout);
        }
    }
}

/// Prove `proven` in a tree of 7 files, let `change` act on the tree, then
/// check the proof against `checked`: it fails with exit 10 naming `needle`.
fn assert_proof_fails(proven: &str, change: impl FnOnce(&Path), checked: &str, needle: &str) {
    let sb = Sandbox::new();
    let (dir, _) = tree(&sb, 7);
    let proof = prove(&sb, &dir, proven);
    change(&dir);
    let o = verify_proof(&sb, &proof, &dir.join(checked));
    o.assert_error(10, needle);
}

#[test]
fn a_proof_fails_for_a_modified_file_with_exit_10() {
    let modify = |dir: &Path| fs::write(dir.join("f4.txt"), "content of file 5\n").expect("write");
    assert_proof_fails("f4.txt", modify, "f4.txt", "or it was changed");
}

#[test]
fn a_proof_for_one_file_does_not_verify_another() {
    // The file may be intact and merely not the one proven: say both.
    assert_proof_fails(
        "f0.txt",
        |_| {},
        "f4.txt",
        "does not match the proof for \"f0.txt\": its BLAKE3 is",
    );
    assert_proof_fails(
        "f0.txt",
        |_| {},
        "f4.txt",
        "; it is a different file, or it was changed",
    );
}

#[test]
fn a_mode_change_fails_the_proof() {
    let chmod = |dir: &Path| {
        fs::set_permissions(dir.join("f4.txt"), fs::Permissions::from_mode(0o755)).expect("chmod")
    };
    assert_proof_fails("f4.txt", chmod, "f4.txt", "mode 100755");
}

#[test]
fn altered_proofs_fail() {
    let sb = Sandbox::new();
    let (dir, _) = tree(&sb, 9);
    let file = dir.join("f4.txt");
    let proof = prove(&sb, &dir, "f4.txt");

    let mut p = proof.clone();
    p["merkle_root"] = blake3::hash(b"x").to_hex().as_str().into();
    verify_proof(&sb, &p, &file).assert_error(10, "altered");

    let mut p = proof.clone();
    p["siblings"][0] = blake3::hash(b"x").to_hex().as_str().into();
    verify_proof(&sb, &p, &file).assert_error(10, "altered");

    assert_eq!(proof["leaf_index"], 5, "f4.txt sorts sixth");
    let mut p = proof.clone();
    p["leaf_index"] = 4.into();
    verify_proof(&sb, &p, &file).assert_error(10, "altered");

    let mut p = proof.clone();
    p["path"] = "f5.txt".into();
    verify_proof(&sb, &p, &file).assert_error(10, "altered");

    let mut p = proof.clone();
    p["siblings"].as_array_mut().expect("array").pop();
    verify_proof(&sb, &p, &file).assert_error(6, "needs exactly");

    let mut p = proof.clone();
    p["leaf_index"] = 9.into();
    verify_proof(&sb, &p, &file).assert_error(6, "outside its leaf_count");
}

#[test]
fn bad_proof_files_exit_6() {
    let sb = Sandbox::new();
    let (dir, _) = tree(&sb, 3);
    let file = dir.join("f0.txt");
    let pf = sb.path().join("p.json");
    for (text, needle) in [
        (&b"{\"format\":"[..], "not valid JSON"),
        (b"null", "not a spawn-elite proof"),
        (
            b"{\"format\": \"spawn-elite.receipt/v1\"}",
            "not \"spawn-elite.proof/v1\"",
        ),
        (
            b"{\"format\": \"spawn-elite.proof/v1\", \"path\": 3}",
            "is malformed",
        ),
    ] {
        fs::write(&pf, text).expect("write");
        sb.assert_error(
            ["verify-proof".as_ref(), pf.as_os_str(), file.as_os_str()],
            6,
            needle,
        );
    }
}

/// A proof of `f0.txt` in a tree of 4 files, written to `proof.json`:
/// (proof file, proven file, merkle root).
fn proof_of_f0(sb: &Sandbox) -> (PathBuf, PathBuf, String) {
    let (dir, _) = tree(sb, 4);
    let proof = prove(sb, &dir, "f0.txt");
    let pf = sb.path().join("proof.json");
    fs::write(&pf, proof.to_string()).expect("write");
    let root = proof["merkle_root"].as_str().expect("root").to_owned();
    (pf, dir.join("f0.txt"), root)
}

#[test]
fn root_option_pins_the_expected_root() {
    let sb = Sandbox::new();
    let (pf, file, root) = proof_of_f0(&sb);
    let o = sb.run([
        "verify-proof".as_ref(),
        pf.as_os_str(),
        file.as_os_str(),
        "--root".as_ref(),
        root.as_ref(),
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let other = blake3::hash(b"other").to_hex().to_string();
    sb.assert_error(
        [
            "verify-proof".as_ref(),
            pf.as_os_str(),
            file.as_os_str(),
            "--root".as_ref(),
            other.as_ref(),
        ],
        10,
        "belongs to another receipt",
    );
}

#[test]
fn prove_uses_the_stored_receipt_so_later_edits_fail_verification() {
    let sb = Sandbox::new();
    let (dir, _) = tree(&sb, 5);
    let stored = dir.join(".spawn-elite/receipt.json");
    let o = sb.run([
        "receipt".as_ref(),
        dir.as_os_str(),
        "-o".as_ref(),
        stored.as_os_str(),
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    fs::write(dir.join("f0.txt"), "edited after the receipt\n").expect("write");
    let proof = prove(&sb, &dir, "f0.txt");
    assert_eq!(
        proof["blake3"],
        blake3::hash(b"content of file 0\n").to_hex().as_str()
    );
    let o = verify_proof(&sb, &proof, &dir.join("f0.txt"));
    o.assert_error(10, "it is a different file, or it was changed");
}

#[test]
fn proving_a_path_not_in_the_tree_exits_2() {
    let sb = Sandbox::new();
    let (dir, _) = tree(&sb, 3);
    let o = sb.run(["prove".as_ref(), dir.as_os_str(), "nope.txt".as_ref()]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("\"nope.txt\" is not in the receipt"),
        "{}",
        o.stderr
    );
}

#[test]
fn prove_accepts_the_path_with_dir_in_front() {
    let sb = Sandbox::new();
    let (dir, _) = tree(&sb, 3);
    let with_dir = dir.join("d1/f1");
    let o = sb.run(["prove".as_ref(), dir.as_os_str(), with_dir.as_os_str()]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let p: Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(p["path"], "d1/f1");
}

#[test]
fn root_option_ignores_case_and_rejects_what_is_not_a_root() {
    let sb = Sandbox::new();
    let (pf, file, root) = proof_of_f0(&sb);
    let with_root = |r: &str| {
        sb.run([
            "verify-proof".as_ref(),
            pf.as_os_str(),
            file.as_os_str(),
            "--root".as_ref(),
            r.as_ref(),
        ])
    };
    let o = with_root(&root.to_uppercase());
    assert_eq!(o.code, 0, "{}", o.stderr);
    for bad in [
        "xyz",
        &root[..63],
        &format!("{}g", &root[..63]),
        &format!("{root}0"),
    ] {
        let o = with_root(bad);
        o.assert_error(2, "is not a Merkle root; give the 64 hex digits");
    }
}

#[test]
fn prove_accepts_paths_relative_to_the_current_directory_and_absolute_ones() {
    let sb = Sandbox::new();
    let (dir, _) = tree(&sb, 6);
    let proved = |cwd: &Path, d: &OsStr, p: &OsStr| {
        let out = sb
            .cmd()
            .current_dir(cwd)
            .args([OsStr::new("prove"), d, p])
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "prove {d:?} {p:?} in {cwd:?}: {err}"
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        v["path"].as_str().map(str::to_owned)
    };
    let want = Some("d1/f1".to_owned());
    // The tests run in sb.path(), where the tree is "tree6".
    let top = sb.path();
    assert_eq!(proved(top, "tree6".as_ref(), "tree6/d1/f1".as_ref()), want);
    assert_eq!(
        proved(top, "./tree6/".as_ref(), "tree6/d1/../d1/f1".as_ref()),
        want
    );
    assert_eq!(
        proved(top, "tree6".as_ref(), dir.join("d1/f1").as_os_str()),
        want
    );
    assert_eq!(proved(top, dir.as_os_str(), "tree6/d1/f1".as_ref()), want);
    assert_eq!(proved(top, "tree6".as_ref(), "d1/f1".as_ref()), want);
    // From inside the tree, as shell completion writes paths.
    assert_eq!(proved(&dir.join("d1"), "..".as_ref(), "f1".as_ref()), want);
    assert_eq!(proved(&dir, ".".as_ref(), "./d1/f1".as_ref()), want);
    // A symlink is proved as the link, not as what it points to.
    assert_eq!(
        proved(top, "tree6".as_ref(), "tree6/l3".as_ref()),
        Some("l3".to_owned())
    );
}

#[test]
fn prove_rejects_a_path_outside_dir_with_exit_2() {
    let sb = Sandbox::new();
    let (dir, _) = tree(&sb, 3);
    let outside = sb.path().join("outside.txt");
    fs::write(&outside, "x").expect("write");
    for p in [outside.as_os_str(), "../outside.txt".as_ref()] {
        sb.assert_error(
            ["prove".as_ref(), dir.as_os_str(), p],
            2,
            "is not a file inside",
        );
    }
    // A bare name is also a name inside DIR: taken as such, and not listed.
    let o = sb.run(["prove".as_ref(), dir.as_os_str(), "outside.txt".as_ref()]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("\"outside.txt\" is not in the receipt"),
        "{}",
        o.stderr
    );
    sb.assert_error(
        ["prove".as_ref(), dir.as_os_str(), dir.as_os_str()],
        2,
        "is not a file inside",
    );
}
