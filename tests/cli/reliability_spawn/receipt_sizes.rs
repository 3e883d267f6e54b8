//! Item 13: a receipt whose recorded size contradicts the content hash it
//! records is reported as an inconsistent receipt (exit 6), not as drift.

use super::{receipt_of, tree_with, verify_args};
use crate::support::Sandbox;

#[test]
fn an_edited_size_makes_the_receipt_inconsistent_not_the_tree_modified() {
    let sb = Sandbox::new();
    let tree = tree_with(&sb, &[("a.txt", b"hello\n"), ("b.txt", b"world\n")]);
    let receipt = receipt_of(&sb, &tree);
    let verify = |sb: &Sandbox| sb.run(verify_args(&tree, &receipt, &[]));
    assert!(verify(&sb).success());

    let text = std::fs::read_to_string(&receipt).unwrap();
    let edited = text.replacen("\"size\": 6", "\"size\": 7", 1);
    assert_ne!(text, edited);
    std::fs::write(&receipt, edited).unwrap();
    let o = verify(&sb);
    o.assert_error(6, "inconsistent");
    assert!(o.stderr.contains("a.txt"), "{}", o.stderr);
    assert!(o.stderr.contains("size 7"), "{}", o.stderr);
    assert_eq!(o.stdout, "", "nothing is blamed on the tree");
    let json = sb.run(verify_args(&tree, &receipt, &["--json"]));
    json.assert_error(6, "inconsistent");
}

/// A changed file whose size changed too is still drift: the check only
/// fires when the recorded content is the content on disk.
#[test]
fn a_changed_file_is_still_drift() {
    let sb = Sandbox::new();
    let tree = tree_with(&sb, &[("a.txt", b"hello\n")]);
    let receipt = receipt_of(&sb, &tree);
    std::fs::write(tree.join("a.txt"), "hello, longer\n").unwrap();
    let o = sb.run(verify_args(&tree, &receipt, &[]));
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stdout.contains("modified      a.txt"), "{}", o.stdout);
}
