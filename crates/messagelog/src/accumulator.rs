//! A streaming RFC 6962 Merkle root: O(log n) memory for any number of leaves.

use passerelle_pki::merkle::node_hash;

/// Accumulates leaf hashes and yields the RFC 6962 root of everything added so far.
///
/// It keeps the roots of the perfect subtrees that make up the leaves so far (one per set bit of
/// the count, largest first), which is also what an archive stores to resume a span that started
/// before it (a "span prefix").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerkleAccumulator {
    count: u64,
    /// (height, root) of each perfect subtree, heights strictly decreasing.
    subtrees: Vec<(u32, [u8; 32])>,
}

impl MerkleAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds an accumulator from its parts; `None` when they are inconsistent.
    pub fn from_parts(count: u64, roots: Vec<[u8; 32]>) -> Option<Self> {
        let heights: Vec<u32> = (0..64).rev().filter(|bit| count >> bit & 1 == 1).collect();
        if heights.len() != roots.len() {
            return None;
        }
        Some(MerkleAccumulator {
            count,
            subtrees: heights.into_iter().zip(roots).collect(),
        })
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The subtree roots, largest subtree first.
    pub fn roots(&self) -> Vec<[u8; 32]> {
        self.subtrees.iter().map(|(_, root)| *root).collect()
    }

    /// Adds one leaf hash (already `leaf_hash(data)`).
    pub fn push(&mut self, leaf: [u8; 32]) {
        let mut height = 0;
        let mut hash = leaf;
        while let Some(&(top_height, top)) = self.subtrees.last() {
            if top_height != height {
                break;
            }
            self.subtrees.pop();
            hash = node_hash(&top, &hash);
            height += 1;
        }
        self.subtrees.push((height, hash));
        self.count += 1;
    }

    /// The root of all leaves so far; `None` when empty.
    pub fn root(&self) -> Option<[u8; 32]> {
        let mut iter = self.subtrees.iter().rev();
        let mut root = iter.next()?.1;
        for (_, left) in iter {
            root = node_hash(left, &root);
        }
        Some(root)
    }
}

#[cfg(test)]
mod tests {
    use passerelle_pki::merkle::{MerkleTree, leaf_hash};

    use super::MerkleAccumulator;

    #[test]
    fn matches_the_pki_tree_for_every_size_up_to_70() {
        let leaves: Vec<[u8; 32]> = (0u32..70).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let mut accumulator = MerkleAccumulator::new();
        for size in 1..=leaves.len() {
            accumulator.push(leaves[size - 1]);
            let tree = MerkleTree::from_leaf_hashes(leaves[..size].to_vec());
            assert_eq!(accumulator.root(), Some(tree.root()), "size {size}");
            let rebuilt =
                MerkleAccumulator::from_parts(accumulator.count(), accumulator.roots()).unwrap();
            assert_eq!(rebuilt, accumulator);
        }
    }
}
