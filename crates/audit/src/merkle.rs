//! The RFC 9162 (RFC 6962) Merkle tree over the audit events: leaf and
//! node hashing, the root of any prefix of the log, and inclusion and
//! consistency proofs with their verification (RFC 9162 §2.1.3, §2.1.4).
//!
//! A leaf is an event's canonical bytes, exactly the bytes the hash chain
//! hashes, so the tree and the chain commit to the same content.
//!
//! [`Tree`] keeps every complete subtree's hash (about two hashes a leaf),
//! so a root, a proof or an appended leaf costs O(log n) hashes.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The deepest proof of a tree whose size fits in a `u64`.
pub const MAX_PROOF_HASHES: usize = 64;

/// The leaf hash of `data`: SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(data);
    hasher.finalize().into()
}

/// The interior node hash: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Why a proof could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("index {index} is not below the tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {size} is larger than the {have} leaves known")]
    SizeTooLarge { size: u64, have: u64 },
    #[error("the first size {first} is larger than the second size {second}")]
    SizesReversed { first: u64, second: u64 },
    #[error("a consistency proof from the empty tree proves nothing")]
    FromEmpty,
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    #[error("the proof does not lead to the expected root hash")]
    RootMismatch,
}

/// The largest power of two strictly below `n` (`n` ≥ 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// A log's leaves, with every complete subtree's hash kept: `levels[k][i]`
/// is the root of leaves `[i·2^k, (i+1)·2^k)`.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// Appends a leaf by its leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let nodes = &mut self.levels[level];
            nodes.push(hash);
            if nodes.len() % 2 == 1 {
                return;
            }
            hash = node_hash(&nodes[nodes.len() - 2], &nodes[nodes.len() - 1]);
            level += 1;
        }
    }

    /// The leaf hash at `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        let index = usize::try_from(index).ok()?;
        self.levels.first().and_then(|leaves| leaves.get(index)).copied()
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        if size > self.size() {
            return Err(ProofError::SizeTooLarge { size, have: self.size() });
        }
        Ok(())
    }

    /// The root of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash, ProofError> {
        self.check_size(size)?;
        if size == 0 {
            return Ok(empty_root());
        }
        Ok(self.subtree(0, size))
    }

    /// The root of leaves `[start, start + n)`, `n` ≥ 1, within the known
    /// leaves (callers check).
    fn subtree(&self, start: u64, n: u64) -> Hash {
        if n.is_power_of_two() && start.is_multiple_of(n) {
            let level = n.trailing_zeros() as usize;
            let at = usize::try_from(start >> level).unwrap_or(usize::MAX);
            if let Some(hash) = self.levels.get(level).and_then(|nodes| nodes.get(at)) {
                return *hash;
            }
        }
        // Only ever reached with n ≥ 2: a single leaf is always stored.
        let k = split(n.max(2));
        node_hash(&self.subtree(start, k), &self.subtree(start + k, n - k))
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves
    /// (RFC 9162 §2.1.3.1), from the leaf's sibling up.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size)?;
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof);
        Ok(proof)
    }

    fn path(&self, m: u64, start: u64, n: u64, out: &mut Vec<Hash>) {
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path(m, start, k, out);
            out.push(self.subtree(start + k, n - k));
        } else {
            self.path(m - k, start + k, n - k, out);
            out.push(self.subtree(start, k));
        }
    }

    /// The consistency proof from the tree of `first` leaves to the tree
    /// of `second` leaves (RFC 9162 §2.1.4.1).
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(second)?;
        if first > second {
            return Err(ProofError::SizesReversed { first, second });
        }
        if first == 0 {
            return Err(ProofError::FromEmpty);
        }
        let mut proof = Vec::new();
        self.subproof(first, 0, second, true, &mut proof);
        Ok(proof)
    }

    fn subproof(&self, m: u64, start: u64, n: u64, whole: bool, out: &mut Vec<Hash>) {
        if m == n {
            if !whole {
                out.push(self.subtree(start, n));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, start, k, whole, out);
            out.push(self.subtree(start + k, n - k));
        } else {
            self.subproof(m - k, start + k, n - k, false, out);
            out.push(self.subtree(start, k));
        }
    }
}

/// The root of a whole list of leaf hashes, by the RFC's recursive
/// definition: the reference the [`Tree`] is tested against.
pub fn root_of(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [leaf] => *leaf,
        _ => {
            let k = usize::try_from(split(leaves.len() as u64)).unwrap_or(leaves.len() / 2);
            node_hash(&root_of(&leaves[..k]), &root_of(&leaves[k..]))
        }
    }
}

/// Checks that `leaf` is at `index` in the tree of `size` leaves whose
/// root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    if proof.len() > MAX_PROOF_HASHES {
        return Err(ProofError::WrongLength);
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Checks that the tree of `second` leaves with root `second_root`
/// extends the tree of `first` leaves with root `first_root` (RFC 9162
/// §2.1.4.2). Equal sizes need an empty proof and equal roots; a proof from
/// the empty tree is refused, as it proves nothing.
pub fn verify_consistency(
    first: u64,
    second: u64,
    proof: &[Hash],
    first_root: &Hash,
    second_root: &Hash,
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::SizesReversed { first, second });
    }
    if first == 0 {
        return Err(ProofError::FromEmpty);
    }
    if proof.len() > MAX_PROOF_HASHES {
        return Err(ProofError::WrongLength);
    }
    if first == second {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        if first_root != second_root {
            return Err(ProofError::RootMismatch);
        }
        return Ok(());
    }
    let mut path: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(first_root);
    }
    path.extend(proof.iter());
    let Some((head, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength);
    };
    let (mut fnode, mut snode) = (first - 1, second - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (**head, **head);
    for c in rest {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != *first_root || sr != *second_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    fn tree(leaves: &[Hash]) -> Tree {
        let mut tree = Tree::new();
        for leaf in leaves {
            tree.push(*leaf);
        }
        tree
    }

    #[test]
    fn the_empty_tree_has_the_hash_of_nothing() {
        assert_eq!(
            hex::encode(Tree::new().root(0).unwrap()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn roots_match_the_recursive_definition_at_every_size() {
        let all = leaves(70);
        let t = tree(&all);
        for n in 0..=70 {
            assert_eq!(t.root(n).unwrap(), root_of(&all[..usize::try_from(n).unwrap()]), "size {n}");
        }
        assert!(matches!(t.root(71), Err(ProofError::SizeTooLarge { .. })));
    }

    #[test]
    fn bad_arguments_are_refused() {
        let t = tree(&leaves(5));
        assert!(t.inclusion_proof(5, 5).is_err());
        assert!(t.inclusion_proof(0, 6).is_err());
        assert!(t.consistency_proof(0, 3).is_err());
        assert!(t.consistency_proof(4, 3).is_err());
        assert!(verify_consistency(0, 0, &[], &empty_root(), &empty_root()).is_err());
    }

    #[derive(Debug, Clone)]
    enum Tamper {
        Hash,
        Index,
        Size,
        Drop,
        Add,
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn inclusion_proofs_verify_and_tampering_fails(
            size in 1u64..300,
            at in any::<prop::sample::Index>(),
            which in any::<prop::sample::Index>(),
            tamper in prop_oneof![Just(Tamper::Hash), Just(Tamper::Index), Just(Tamper::Size), Just(Tamper::Drop), Just(Tamper::Add)],
        ) {
            let all = leaves(size);
            let t = tree(&all);
            let index = at.index(usize::try_from(size).unwrap()) as u64;
            let root = t.root(size).unwrap();
            let proof = t.inclusion_proof(index, size).unwrap();
            let leaf = all[usize::try_from(index).unwrap()];
            prop_assert!(verify_inclusion(index, size, &leaf, &proof, &root).is_ok());
            let (mut i, mut s, mut p, mut l) = (index, size, proof.clone(), leaf);
            match tamper {
                Tamper::Hash => {
                    if p.is_empty() { l[0] ^= 1 } else { let w = which.index(p.len()); p[w][7] ^= 0x40 }
                }
                Tamper::Index => i = if index + 1 < size { index + 1 } else { index.wrapping_sub(1) },
                // A size one more can keep the same path shape (the size is
                // bound by the signed checkpoint); past twice it cannot.
                Tamper::Size => s = 2 * size + 1,
                Tamper::Drop => { if p.is_empty() { l = leaf_hash(b"x") } else { p.pop(); } }
                Tamper::Add => p.push(root),
            }
            // A changed index in a tree of one leaf has nowhere to go.
            if !(matches!(tamper, Tamper::Index) && size == 1) {
                prop_assert!(verify_inclusion(i, s, &l, &p, &root).is_err());
            }
        }

        #[test]
        fn consistency_proofs_verify_and_tampering_fails(
            second in 1u64..300,
            first_at in any::<prop::sample::Index>(),
            which in any::<prop::sample::Index>(),
            tamper in prop_oneof![Just(Tamper::Hash), Just(Tamper::Index), Just(Tamper::Size), Just(Tamper::Drop), Just(Tamper::Add)],
        ) {
            let t = tree(&leaves(second));
            let first = 1 + first_at.index(usize::try_from(second).unwrap()) as u64;
            let (r1, r2) = (t.root(first).unwrap(), t.root(second).unwrap());
            let proof = t.consistency_proof(first, second).unwrap();
            prop_assert!(verify_consistency(first, second, &proof, &r1, &r2).is_ok());
            let (mut f, mut s, mut p, mut a, b) = (first, second, proof.clone(), r1, r2);
            match tamper {
                Tamper::Hash => {
                    if p.is_empty() { a[3] ^= 1 } else { let w = which.index(p.len()); p[w][0] ^= 1 }
                }
                // `Index` stands for the first size here.
                Tamper::Index => f = if first > 1 { first - 1 } else { first + 1 },
                Tamper::Size => s = 2 * second + 1,
                Tamper::Drop => { if p.is_empty() { a = leaf_hash(b"x") } else { p.pop(); } }
                Tamper::Add => p.push(r2),
            }
            // The tree of one leaf has no other first size to claim.
            if !(matches!(tamper, Tamper::Index) && second == 1) {
                prop_assert!(verify_consistency(f, s, &p, &a, &b).is_err());
            }
        }
    }
}
