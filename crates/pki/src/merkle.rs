//! Merkle trees with RFC 6962 hashing, for batch signatures and log time-stamp checkpoints.
//!
//! Leaf hash `SHA-256(0x00 ‖ data)`, node hash `SHA-256(0x01 ‖ left ‖ right)`; a tree of `n`
//! leaves splits at the largest power of two below `n` (RFC 6962 §2.1). Built bottom-up, that is
//! the same as pairing each level and promoting a lone last node unchanged, which is what
//! [`MerkleTree`] stores. Proofs are verified with the algorithm of RFC 9162 §2.1.3.2.

use crate::digest::Sha256;

/// What is wrong with an inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    #[error("leaf index {leaf_index} is outside a tree of {tree_size} leaves")]
    IndexOutOfRange { leaf_index: u64, tree_size: u64 },
    #[error(
        "inclusion proof has {found} hashes, a tree of {tree_size} leaves needs {expected} for leaf {leaf_index}"
    )]
    WrongPathLength {
        leaf_index: u64,
        tree_size: u64,
        expected: usize,
        found: usize,
    },
    #[error("inclusion proof for leaf {leaf_index} does not lead to the expected root")]
    RootMismatch { leaf_index: u64 },
}

/// `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(&[0x00]).update(data);
    hasher.finish()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(&[0x01]).update(left).update(right);
    hasher.finish()
}

/// A whole tree, kept level by level so that every proof is a walk up, not a rebuild.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    /// `levels[0]` are the leaf hashes; the last level holds the root alone.
    levels: Vec<Vec<[u8; 32]>>,
}

impl MerkleTree {
    /// Builds the tree over already-hashed leaves (see [`leaf_hash`]). An empty tree has the root
    /// `SHA-256("")`, as RFC 6962 defines.
    pub fn from_leaf_hashes(leaves: Vec<[u8; 32]>) -> Self {
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|level| level.len() > 1) {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            let above = below
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => node_hash(left, right),
                    [lone] => *lone,
                    _ => unreachable!("chunks(2) yields one or two items"),
                })
                .collect();
            levels.push(above);
        }
        Self { levels }
    }

    /// Builds the tree over raw leaf data.
    pub fn from_leaves<T: AsRef<[u8]>>(leaves: &[T]) -> Self {
        Self::from_leaf_hashes(leaves.iter().map(|leaf| leaf_hash(leaf.as_ref())).collect())
    }

    pub fn len(&self) -> usize {
        self.levels[0].len()
    }

    pub fn is_empty(&self) -> bool {
        self.levels[0].is_empty()
    }

    pub fn root(&self) -> [u8; 32] {
        match self.levels.last().and_then(|level| level.first()) {
            Some(root) => *root,
            None => crate::digest::sha256(b""),
        }
    }

    /// The inclusion proof of leaf `index`, or `None` when the index is out of range.
    pub fn proof(&self, index: usize) -> Option<InclusionProof> {
        if index >= self.len() {
            return None;
        }
        let mut path = Vec::new();
        let mut position = index;
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = position ^ 1;
            if let Some(hash) = level.get(sibling) {
                path.push(*hash);
            }
            position /= 2;
        }
        Some(InclusionProof {
            leaf_index: index as u64,
            tree_size: self.len() as u64,
            path,
        })
    }
}

/// The audit path of one leaf: the sibling hashes from the leaf up to the root.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    #[serde(with = "hex_hashes")]
    pub path: Vec<[u8; 32]>,
}

impl InclusionProof {
    /// The root that this proof and `leaf_hash` lead to.
    pub fn root_for(&self, leaf_hash: &[u8; 32]) -> Result<[u8; 32], MerkleError> {
        let (leaf_index, tree_size) = (self.leaf_index, self.tree_size);
        if leaf_index >= tree_size {
            return Err(MerkleError::IndexOutOfRange {
                leaf_index,
                tree_size,
            });
        }
        let expected = expected_path_length(leaf_index, tree_size);
        if self.path.len() != expected {
            return Err(MerkleError::WrongPathLength {
                leaf_index,
                tree_size,
                expected,
                found: self.path.len(),
            });
        }
        let (mut index, mut last) = (leaf_index, tree_size - 1);
        let mut hash = *leaf_hash;
        for sibling in &self.path {
            if index & 1 == 1 || index == last {
                hash = node_hash(sibling, &hash);
                while index & 1 == 0 && index != 0 {
                    index >>= 1;
                    last >>= 1;
                }
            } else {
                hash = node_hash(&hash, sibling);
            }
            index >>= 1;
            last >>= 1;
        }
        Ok(hash)
    }

    /// Checks that `leaf_hash` is in the tree whose root is `root`.
    pub fn verify(&self, leaf_hash: &[u8; 32], root: &[u8; 32]) -> Result<(), MerkleError> {
        if &self.root_for(leaf_hash)? == root {
            Ok(())
        } else {
            Err(MerkleError::RootMismatch {
                leaf_index: self.leaf_index,
            })
        }
    }
}

/// How many siblings a leaf has on its way up (a lone last node is promoted without one).
fn expected_path_length(mut index: u64, size: u64) -> usize {
    let mut width = size;
    let mut length = 0;
    while width > 1 {
        if index ^ 1 < width {
            length += 1;
        }
        index /= 2;
        width = width.div_ceil(2);
    }
    length
}

mod hex_hashes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error, ser::SerializeSeq};

    pub(super) fn serialize<S: Serializer>(
        path: &[[u8; 32]],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(path.len()))?;
        for hash in path {
            seq.serialize_element(&hex::encode(hash))?;
        }
        seq.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<[u8; 32]>, D::Error> {
        let strings = Vec::<String>::deserialize(deserializer)?;
        strings
            .iter()
            .map(|text| {
                let bytes = hex::decode(text).map_err(D::Error::custom)?;
                bytes
                    .try_into()
                    .map_err(|_| D::Error::custom("a path hash must be 32 bytes"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6962's recursive definition, written out naively, as the reference.
    fn reference_root(leaves: &[[u8; 32]]) -> [u8; 32] {
        match leaves.len() {
            0 => crate::digest::sha256(b""),
            1 => leaves[0],
            n => {
                let k = n.next_power_of_two() / 2;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    fn reference_path(index: usize, leaves: &[[u8; 32]]) -> Vec<[u8; 32]> {
        let n = leaves.len();
        if n <= 1 {
            return Vec::new();
        }
        let k = n.next_power_of_two() / 2;
        if index < k {
            let mut path = reference_path(index, &leaves[..k]);
            path.push(reference_root(&leaves[k..]));
            path
        } else {
            let mut path = reference_path(index - k, &leaves[k..]);
            path.push(reference_root(&leaves[..k]));
            path
        }
    }

    fn leaves(n: usize) -> Vec<[u8; 32]> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn every_leaf_of_trees_up_to_33_verifies_and_matches_rfc_6962() {
        for size in 1..=33 {
            let hashes = leaves(size);
            let tree = MerkleTree::from_leaf_hashes(hashes.clone());
            let root = tree.root();
            assert_eq!(root, reference_root(&hashes), "root of {size}");
            for index in 0..size {
                let proof = tree.proof(index).unwrap();
                assert_eq!(
                    proof.path,
                    reference_path(index, &hashes),
                    "path {index}/{size}"
                );
                proof.verify(&hashes[index], &root).unwrap();
            }
            assert!(tree.proof(size).is_none());
        }
    }

    #[test]
    fn wrong_leaf_index_or_root_fails() {
        let hashes = leaves(13);
        let tree = MerkleTree::from_leaf_hashes(hashes.clone());
        let root = tree.root();
        let proof = tree.proof(5).unwrap();
        assert_eq!(
            proof.verify(&hashes[6], &root),
            Err(MerkleError::RootMismatch { leaf_index: 5 })
        );
        assert!(proof.verify(&hashes[5], &leaf_hash(b"other")).is_err());
        let mut moved = proof.clone();
        moved.leaf_index = 4;
        assert!(moved.verify(&hashes[5], &root).is_err());
        let mut outside = proof.clone();
        outside.leaf_index = 13;
        assert!(matches!(
            outside.verify(&hashes[5], &root),
            Err(MerkleError::IndexOutOfRange { .. })
        ));
        let mut short = proof.clone();
        short.path.pop();
        assert!(matches!(
            short.verify(&hashes[5], &root),
            Err(MerkleError::WrongPathLength { .. })
        ));
        let mut flipped = proof;
        flipped.path[0][0] ^= 1;
        assert!(flipped.verify(&hashes[5], &root).is_err());
    }

    #[test]
    fn known_answer_from_rfc_6962_style_inputs() {
        // One leaf: the root is the leaf hash of the data, i.e. SHA-256(0x00 ‖ data).
        let tree = MerkleTree::from_leaves(&[b"".as_slice()]);
        assert_eq!(
            hex::encode(tree.root()),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let json = serde_json::to_string(&tree.proof(0).unwrap()).unwrap();
        assert_eq!(json, r#"{"leaf_index":0,"tree_size":1,"path":[]}"#);
    }
}
