//! The Merkle tree over a receipt's files.
//!
//! The encoding is fixed by docs/RECEIPT.md so that verifiers written without
//! this code agree with it; change nothing here without bumping the receipt
//! format.
//!
//! rs_merkle builds the tree level by level, pairing nodes left to right and
//! carrying an unpaired last node up unchanged. That gives exactly RFC 6962's
//! shape (left subtree = the largest power of two below the leaf count), which
//! `level_by_level_matches_rfc6962_split` below checks against a direct
//! recursive implementation. What rs_merkle does not provide is domain
//! separation, so leaves are hashed here with a 0x00 prefix before they reach
//! it, and interior nodes get a 0x01 prefix in `concat_and_hash`.

use rs_merkle::{MerkleProof, MerkleTree};

pub type Hash = [u8; 32];

pub const MODE_FILE: u32 = 0o100644;
pub const MODE_EXEC: u32 = 0o100755;
pub const MODE_LINK: u32 = 0o120000;

#[derive(Clone)]
pub struct Blake3;

impl rs_merkle::Hasher for Blake3 {
    type Hash = Hash;

    fn hash(data: &[u8]) -> Hash {
        *blake3::hash(data).as_bytes()
    }

    fn concat_and_hash(left: &Hash, right: Option<&Hash>) -> Hash {
        match right {
            Some(right) => interior_hash(left, right),
            // Promote, never duplicate: duplicating would let two different
            // file lists share a root.
            None => *left,
        }
    }
}

pub fn interior_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[0x01]);
    h.update(left);
    h.update(right);
    *h.finalize().as_bytes()
}

/// The leaf for one file; `content` is the plain BLAKE3 of its bytes (or of
/// the link target for a symlink).
pub fn leaf_hash(path: &str, mode: u32, content: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[0x00]);
    h.update(&(path.len() as u64).to_le_bytes());
    h.update(path.as_bytes());
    h.update(&mode.to_le_bytes());
    h.update(content);
    *h.finalize().as_bytes()
}

/// Root of the leaves in order; an empty list has BLAKE3("") as its root so
/// that every receipt has one.
pub fn root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return *blake3::hash(b"").as_bytes();
    }
    MerkleTree::<Blake3>::from_leaves(leaves)
        .root()
        .unwrap_or_else(|| *blake3::hash(b"").as_bytes())
}

/// The sibling hashes proving leaf `index`, from the leaf upwards.
pub fn proof(leaves: &[Hash], index: usize) -> Vec<Hash> {
    MerkleTree::<Blake3>::from_leaves(leaves)
        .proof(&[index])
        .proof_hashes()
        .to_vec()
}

/// How many siblings a proof for `index` among `count` leaves must have: one
/// per level where the node on the path is not the promoted odd one out.
pub fn proof_len(index: u64, count: u64) -> usize {
    let (mut i, mut n, mut len) = (index, count, 0);
    while n > 1 {
        if i % 2 == 1 || i + 1 < n {
            len += 1;
        }
        i /= 2;
        n = n.div_ceil(2);
    }
    len
}

/// The root that `siblings` lead to from `leaf`, or None when the shape does
/// not fit `count` (wrong index, too many or too few siblings).
pub fn root_from_proof(leaf: &Hash, index: u64, count: u64, siblings: &[Hash]) -> Option<Hash> {
    if index >= count || siblings.len() != proof_len(index, count) {
        return None;
    }
    let index = usize::try_from(index).ok()?;
    let count = usize::try_from(count).ok()?;
    MerkleProof::<Blake3>::new(siblings.to_vec())
        .root(&[index], &[*leaf], count)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| {
                leaf_hash(
                    &format!("f{i}"),
                    MODE_FILE,
                    blake3::hash(&[i as u8]).as_bytes(),
                )
            })
            .collect()
    }

    /// RFC 6962 section 2.1, written the way the RFC states it.
    fn rfc6962_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => *blake3::hash(b"").as_bytes(),
            1 => leaves[0],
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                interior_hash(&rfc6962_root(&leaves[..k]), &rfc6962_root(&leaves[k..]))
            }
        }
    }

    #[test]
    fn level_by_level_matches_rfc6962_split() {
        for n in 0..=130 {
            let l = leaves(n);
            assert_eq!(root(&l), rfc6962_root(&l), "{n} leaves");
        }
    }

    #[test]
    fn single_leaf_root_is_the_leaf() {
        let l = leaves(1);
        assert_eq!(root(&l), l[0]);
    }

    #[test]
    fn every_proof_round_trips_and_has_the_predicted_length() {
        for n in 1..=40 {
            let l = leaves(n);
            let r = root(&l);
            for (i, leaf) in l.iter().enumerate() {
                let p = proof(&l, i);
                assert_eq!(p.len(), proof_len(i as u64, n as u64), "n={n} i={i}");
                assert_eq!(root_from_proof(leaf, i as u64, n as u64, &p), Some(r));
                let other = (i + 1) % n;
                if other != i {
                    assert_ne!(root_from_proof(leaf, other as u64, n as u64, &p), Some(r));
                }
            }
        }
    }

    #[test]
    fn malformed_proof_shapes_are_rejected() {
        let l = leaves(5);
        let p = proof(&l, 2);
        assert_eq!(root_from_proof(&l[2], 5, 5, &p), None);
        assert_eq!(root_from_proof(&l[2], 2, 0, &p), None);
        assert_eq!(root_from_proof(&l[2], 2, 5, &p[1..]), None);
        let mut longer = p.clone();
        longer.push(l[0]);
        assert_eq!(root_from_proof(&l[2], 2, 5, &longer), None);
        assert_eq!(root_from_proof(&l[0], u64::MAX - 1, u64::MAX, &[]), None);
    }
}
