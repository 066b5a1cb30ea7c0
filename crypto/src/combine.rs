//! The combiner: from a committed block and the keypers' share batches to plaintexts, with
//! one aggregate check for the whole block and a blame path when it fails.
//!
//! # The fast path
//!
//! When `t + 1` keypers of one responder set `S` sent batches scaled for `S`, each combined key
//! is a plain sum, `K_j = Σ_{i∈S} D_ij` (no scalar multiplication). The whole block is then
//! checked at once against the committee key with 64-bit random `ρ_j` ([`RHO_BITS`]):
//!
//! ```text
//! e(Σ ρ_j·K_j, G2) = e(Σ ρ_j·U_j, X2)
//! ```
//!
//! two multi-scalar multiplications and two pairings (one shared final exponentiation),
//! whatever the block size. Then every ciphertext is opened (KDF + ChaCha20-Poly1305) in
//! parallel. [`BlockCombiner::finish`], on the release path, opens while it checks and keeps
//! no opening unless the check passes.
//!
//! If some `K_j` is wrong, the check passes for at most one value of that `ρ_j` given the
//! others, so with probability at most 2⁻⁶⁴. The coefficients are the sequencer's secret
//! (never sent), fresh for every block, and drawn before the keypers' shares arrive; a
//! keyper whose wrong shares fail the check is blamed with its signed batch as evidence, so
//! each attempt costs an attacker its place. That is the setting in which Ethereum's
//! consensus clients batch-verify BLS signatures with 64-bit random scalars (blst's
//! `verify_multiple_aggregate_signatures` with 64 random bits, after
//! <https://ethresear.ch/t/fast-verification-of-multiple-bls-signatures/5407>). Half the bits
//! halve both multi-scalar multiplications: 9.0 to 4.6 ms each for 1,000 ciphertexts on one
//! core of the 2-core machine of the budgets, on the path from the last batch to the
//! plaintext. The admission check of the proofs (a sender can retry without limit) keeps
//! 128-bit coefficients.
//!
//! # The blame path
//!
//! - A batch for another slot is ignored (a replayed old batch is no evidence against anyone);
//!   a keyper whose only batches for this slot name another block (another digest of the
//!   ordered ids, or another share count) is blamed and set aside.
//! - If the aggregate check fails, every usable keyper is checked on its own with the same
//!   `ρ_j`: `e(Σ ρ_j·D_ij, G2) = e(c_i·Σ ρ_j·U_j, X2_i)`. Those that fail are blamed and
//!   excluded in one round, and the block is combined again from the remaining keypers.
//! - The pairing cannot see components outside the prime-order subgroup, and shares are not
//!   subgroup-checked on arrival (30 µs each would dominate the critical path). A keyper that
//!   adds such a component passes the checks above but makes `K_j` wrong, so the ciphertext
//!   fails to open. Therefore, and only for ciphertexts that fail to open, the combiner checks
//!   `K_j`'s subgroup membership; if it is outside, the shares for that ciphertext are checked
//!   one by one and their senders blamed. A `K_j` inside the subgroup that passed the aggregate
//!   check equals `x·U_j`, so a ciphertext that still fails to open is the sender's fault: it
//!   is reported [`DecryptOutcome::Undecryptable`] and never reordered.
//! - When blamed keypers leave fewer than `t + 1`, decryption stops with
//!   [`CryptoError::NotEnoughShares`] and returns no plaintext at all.
//!
//! Replacing a responder changes every member's Lagrange coefficient, so a combination from a
//! set other than the one the batches were scaled for multiplies each share by
//! `λ_i(S') / c_i` (the slow path: one scalar multiplication per share). A deployment that
//! prefers latency asks the keypers for batches scaled for the new set instead.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use blstrs::{G1Affine, G1Projective, G2Affine, Scalar};
use ff::Field;
use group::{prime::PrimeCurveAffine, Curve, Group};
use rand_core::{CryptoRng, RngCore};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use veil_primitives::{Slot, TxId};

use crate::ciphertext::{batch_coefficients, AssociatedData, Ciphertext};
use crate::curve;
use crate::error::CryptoError;
use crate::keys::{KeyperIndex, PublicKeySet, ResponderSet};
use crate::share::{BlockDigest, VerifiedShareBatch};

/// What happened to one ciphertext of the block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecryptOutcome {
    /// The payload, unpadded.
    Plaintext(Vec<u8>),
    /// The body did not open under the correct key (or its padding is malformed): the
    /// sender's fault. It keeps its place in the block and its fee is charged.
    Undecryptable,
}

/// Why a keyper was blamed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum BlameReason {
    /// Its shares failed the per-keyper pairing check.
    WrongShares,
    /// A share had a component outside the prime-order subgroup.
    ShareOutsideSubgroup {
        /// Position in the block of the first such share found.
        position: usize,
    },
    /// Its batch for this slot names another block (another digest of ordered ids, or
    /// another share count), and it sent no batch for the block.
    MismatchedBatch,
}

/// A keyper blamed during decryption, with the evidence kind. Its batch is signed, so the
/// node can keep the batch as proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Blame {
    /// The keyper.
    pub keyper: KeyperIndex,
    /// What was wrong.
    pub reason: BlameReason,
}

/// The result of decrypting a committed block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecryptedBlock {
    /// One outcome per ciphertext, in the committed order.
    pub outcomes: Vec<DecryptOutcome>,
    /// Keypers whose batches were wrong, in the order they were found.
    pub blamed: Vec<Blame>,
    /// The responder set whose shares decrypted the block.
    pub responders: ResponderSet,
    /// Whether the fast path (all shares pre-scaled for `responders`) was taken.
    pub fast_path: bool,
}

/// Decrypts the committed block `cts` of `slot` from the keypers' verified share batches.
///
/// The ciphertexts must be ones admitted under `pks` (their proofs checked); the batches must
/// have passed [`crate::PublicKeySet::verify_share_batch`]. Randomness (for the batch check coefficients)
/// comes from `rng`. See the module docs for the checks and the blame path.
///
/// Errors: [`CryptoError::NotEnoughShares`] when fewer than `t + 1` keypers remain with
/// correct shares (nothing is decrypted), [`CryptoError::DuplicateCiphertext`] when the block
/// lists one ciphertext twice, [`CryptoError::WrongEon`]/[`CryptoError::WrongChain`] for a
/// ciphertext of another key.
pub fn decrypt_block<R: RngCore + CryptoRng>(
    pks: &PublicKeySet,
    slot: Slot,
    cts: &[&Ciphertext],
    batches: &[VerifiedShareBatch],
    rng: &mut R,
) -> Result<DecryptedBlock, CryptoError> {
    let ids: Vec<TxId> = cts.iter().map(|ct| ct.id()).collect();
    check_block(pks, cts, &ids)?;

    // Batches for other slots are ignored, not blamed: signed batches stay valid forever, so
    // anyone can replay an honest keyper's old one. Among a keyper's batches for this slot,
    // one that lists the block's ids wins; only a keyper with no such batch is blamed.
    let mut usable: BTreeMap<KeyperIndex, &VerifiedShareBatch> = BTreeMap::new();
    let mut mismatched: BTreeSet<KeyperIndex> = BTreeSet::new();
    let digest = BlockDigest::of(&ids);
    for b in batches.iter().filter(|b| b.slot == slot) {
        if b.is_for(&digest, ids.len()) {
            usable.entry(b.keyper).or_insert(b);
        } else {
            mismatched.insert(b.keyper);
        }
    }
    let mut blamed = mismatch_blames(&mismatched, |k| usable.contains_key(k));

    if cts.is_empty() {
        return Ok(DecryptedBlock {
            outcomes: Vec::new(),
            blamed,
            responders: pks.default_responders(),
            fast_path: true,
        });
    }
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let rhos = block_coefficients(&seed, cts.len());
    let u_sum = block_u_sum(&u_primes(cts), &rhos, curve::msm);

    loop {
        if usable.len() < pks.shares_needed() {
            return Err(CryptoError::NotEnoughShares {
                needed: pks.shares_needed(),
                available: usable.len(),
                blamed,
            });
        }
        let (set, fast_path) = choose_responders(pks, &usable);
        let members: Vec<&VerifiedShareBatch> = set.members().iter().map(|m| usable[m]).collect();
        let keys = combine(&set, &members, cts.len());

        if !aggregate_holds(pks, &keys, &rhos, &u_sum, curve::msm) {
            let all: Vec<&VerifiedShareBatch> = usable.values().copied().collect();
            let wrong = blame_wrong_shares(pks, &all, &rhos, &u_sum)?;
            if wrong.is_empty() {
                // Each responder's shares check but their sum does not: impossible unless the
                // arithmetic itself is broken. Refuse rather than guess.
                return Err(CryptoError::InconsistentKeySet(
                    "aggregate check fails but every share checks",
                ));
            }
            for keyper in wrong {
                usable.remove(&keyper);
                blamed.push(Blame { keyper, reason: BlameReason::WrongShares });
            }
            continue;
        }

        let opened: Vec<Option<Vec<u8>>> =
            cts.par_iter().zip(keys.par_iter()).map(|(ct, k)| ct.open(k)).collect();
        let torsion = blame_torsion(&members, &keys, &opened);
        if !torsion.is_empty() {
            for blame in torsion {
                usable.remove(&blame.keyper);
                blamed.push(blame);
            }
            continue;
        }
        return Ok(DecryptedBlock {
            outcomes: outcomes(opened),
            blamed,
            responders: set,
            fast_path,
        });
    }
}

/// The fast path, summed as the batches arrive: a block's combination for one responder set,
/// to which each member's batch is added when it comes, so that when the last one comes
/// only the aggregate check and the openings are left.
///
/// [`decrypt_block`] does all of its work once every batch is in: the random combination of
/// the `U_j`, the `t` additions per ciphertext, then the check and the openings. The sum
/// `Σ ρ_j·U_j` depends only on the block: making the combiner starts it on the rayon pool
/// and returns at once, so that a sequencer can make it when it decides the block, and the
/// multi-scalar multiplication (about 13 ms for 1,000 ciphertexts on the reference machine)
/// runs while the commitment is persisted, signed and sent, not on the thread that receives
/// the batches. `finish` waits for it, or computes it itself if no pool worker has started
/// it yet (so a busy pool cannot stall it). A batch costs one point addition per ciphertext
/// when it is added (about 0.8 ms per 1,000), and `finish` about 15 ms where
/// `decrypt_block` takes 25–30. [`BlockCombiner::retarget`] makes the combiner for another
/// responder set (the fallback round) with the same `ρ_j` and sum. [`BlockCombiner::finish`]
/// returns `None` whenever the fast path cannot conclude (a wrong share, a share outside the
/// subgroup): the caller then runs [`decrypt_block`] on the same batches, which finds and
/// blames the culprits. A combiner never blames anyone for wrong shares.
///
/// The `ρ_j` are drawn when the combiner is made and never leave it; the keypers' batches are
/// fixed before they can learn anything of them, which is all the check's soundness needs.
pub struct BlockCombiner {
    slot: Slot,
    ids: Vec<TxId>,
    digest: BlockDigest,
    target: ResponderSet,
    /// Each member's Lagrange coefficient for `target`, in member order.
    lambdas: Vec<Scalar>,
    /// The block's `ρ_j` and `Σ ρ_j·U_j`, shared by the combiners of every target set.
    check: Arc<BlockCheck>,
    sums: Vec<G1Projective>,
    added: Vec<KeyperIndex>,
    /// Keypers with a batch for this slot that lists the block's ids.
    matched: BTreeSet<KeyperIndex>,
    /// Keypers with a batch for this slot that names another block.
    mismatched: BTreeSet<KeyperIndex>,
}

impl std::fmt::Debug for BlockCombiner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCombiner")
            .field("slot", &self.slot)
            .field("ciphertexts", &self.ids.len())
            .field("target", &self.target)
            .field("added", &self.added)
            .finish_non_exhaustive()
    }
}

impl BlockCombiner {
    /// A combiner for the committed block `cts` of `slot`, for batches scaled for `target`.
    /// Draws the block's `ρ_j` and starts `Σ ρ_j·U_j` (one multi-scalar multiplication over
    /// the block's `U′_j`, [`RHO_BITS`]-bit scalars) on the rayon pool; returns without
    /// waiting.
    ///
    /// # Errors
    /// As [`decrypt_block`]: [`CryptoError::DuplicateCiphertext`], or a ciphertext of another
    /// chain or eon.
    pub fn new<R: RngCore + CryptoRng>(
        pks: &PublicKeySet,
        slot: Slot,
        cts: &[&Ciphertext],
        target: ResponderSet,
        rng: &mut R,
    ) -> Result<BlockCombiner, CryptoError> {
        let ids: Vec<TxId> = cts.iter().map(|ct| ct.id()).collect();
        check_block(pks, cts, &ids)?;
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let rhos = block_coefficients(&seed, cts.len());
        let check = Arc::new(BlockCheck { u_primes: u_primes(cts), rhos, u_sum: OnceLock::new() });
        if !cts.is_empty() {
            let started = Arc::clone(&check);
            rayon::spawn(move || {
                started.u_sum();
            });
        }
        Ok(BlockCombiner::with_check(slot, ids, target, check))
    }

    fn with_check(
        slot: Slot,
        ids: Vec<TxId>,
        target: ResponderSet,
        check: Arc<BlockCheck>,
    ) -> BlockCombiner {
        BlockCombiner {
            slot,
            sums: vec![G1Projective::identity(); ids.len()],
            digest: BlockDigest::of(&ids),
            ids,
            lambdas: target.lagrange_coefficients(),
            target,
            check,
            added: Vec::new(),
            matched: BTreeSet::new(),
            mismatched: BTreeSet::new(),
        }
    }

    /// A combiner for the same block and `ρ_j` (and the same `Σ ρ_j·U_j`, computed once) for
    /// batches scaled for another responder set; no batch added yet.
    #[must_use]
    pub fn retarget(&self, target: ResponderSet) -> BlockCombiner {
        BlockCombiner::with_check(self.slot, self.ids.clone(), target, Arc::clone(&self.check))
    }

    /// The responder set this combiner sums for.
    #[must_use]
    pub fn target(&self) -> &ResponderSet {
        &self.target
    }

    /// Takes note of a verified batch; adds its shares if it is a member's batch for this
    /// block scaled for the target set that was not added yet (one point addition per
    /// ciphertext, about 0.8 µs each, on the calling thread). Returns whether it was added.
    /// Batches for other slots are ignored; one for this slot listing other ids is remembered
    /// for blame, as [`decrypt_block`] does.
    pub fn offer(&mut self, batch: &VerifiedShareBatch) -> bool {
        if batch.slot != self.slot {
            return false;
        }
        if !batch.is_for(&self.digest, self.ids.len()) {
            self.mismatched.insert(batch.keyper);
            return false;
        }
        self.matched.insert(batch.keyper);
        let Some(m) = self.target.members().iter().position(|k| *k == batch.keyper) else {
            return false;
        };
        if batch.scaled_for.as_ref() != Some(&self.target)
            || batch.coefficient != self.lambdas[m]
            || self.added.contains(&batch.keyper)
        {
            return false;
        }
        for (s, d) in self.sums.iter_mut().zip(&batch.shares) {
            *s += d;
        }
        self.added.push(batch.keyper);
        true
    }

    /// Whether every member of the target set has been added.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.added.len() == self.target.members().len()
    }

    /// The block, if the fast path concludes: the combiner is complete, the aggregate check
    /// passes, and every ciphertext that does not open has a combined key inside the
    /// subgroup (so it is its sender's fault). `None` otherwise: run [`decrypt_block`].
    /// `cts` must be the block the combiner was made for.
    #[must_use]
    pub fn finish(&self, pks: &PublicKeySet, cts: &[&Ciphertext]) -> Option<DecryptedBlock> {
        if !self.is_complete() || cts.len() != self.ids.len() {
            return None;
        }
        let blamed = mismatch_blames(&self.mismatched, |k| self.matched.contains(k));
        if cts.is_empty() {
            return Some(DecryptedBlock {
                outcomes: Vec::new(),
                blamed,
                responders: self.target.clone(),
                fast_path: true,
            });
        }
        let keys = curve::batch_to_affine(&self.sums);
        // The check and the openings side by side: the check's multi-scalar multiplication
        // on one thread (Pippenger over the whole block, about 4.6 ms of CPU here; split in
        // two it costs more CPU in all), the openings on the others. Nothing opened is used unless the
        // check passes.
        let (holds, opened) = rayon::join(
            || {
                let u_sum = self.check.u_sum();
                aggregate_holds(pks, &keys, &self.check.rhos, u_sum, curve::msm_serial)
            },
            || -> Vec<Option<Vec<u8>>> {
                cts.par_iter().zip(keys.par_iter()).map(|(ct, k)| ct.open(k)).collect()
            },
        );
        if !holds {
            return None;
        }
        let torsion = opened
            .par_iter()
            .zip(keys.par_iter())
            .any(|(o, k)| o.is_none() && !bool::from(k.is_torsion_free()));
        if torsion {
            return None;
        }
        Some(DecryptedBlock {
            outcomes: outcomes(opened),
            blamed,
            responders: self.target.clone(),
            fast_path: true,
        })
    }
}

/// The blames of keypers whose batches for the slot name another block, unless `matched`
/// says the keyper also sent one for the block.
fn mismatch_blames(
    mismatched: &BTreeSet<KeyperIndex>,
    matched: impl Fn(&KeyperIndex) -> bool,
) -> Vec<Blame> {
    mismatched
        .iter()
        .filter(|keyper| !matched(keyper))
        .map(|keyper| Blame { keyper: *keyper, reason: BlameReason::MismatchedBatch })
        .collect()
}

/// A block's random coefficients `ρ_j` ([`RHO_BITS`] bits, little-endian, concatenated) and the sum
/// `Σ ρ_j·U_j`, computed once by whichever thread asks first.
struct BlockCheck {
    u_primes: Vec<G1Affine>,
    rhos: Vec<u8>,
    u_sum: OnceLock<G1Affine>,
}

impl BlockCheck {
    /// `Σ ρ_j·U_j`: computed on the calling thread if no other has started it, else waited
    /// for.
    fn u_sum(&self) -> &G1Affine {
        self.u_sum.get_or_init(|| block_u_sum(&self.u_primes, &self.rhos, curve::msm_serial))
    }
}

/// The `U′_j` of a block, as sent.
fn u_primes(cts: &[&Ciphertext]) -> Vec<G1Affine> {
    cts.iter().map(|ct| *ct.u_prime()).collect()
}

/// The bits of each random coefficient `ρ_j` of the block checks (the aggregate check and
/// the per-keyper checks of the blame path); the module docs say why 64 suffice.
pub const RHO_BITS: usize = 64;

/// A block's `ρ_j`, [`RHO_BITS`] bits each, little-endian, concatenated: the low bytes of
/// the batch coefficients that `seed` derives.
fn block_coefficients(seed: &[u8; 32], n: usize) -> Vec<u8> {
    batch_coefficients(seed, 0, n)
        .into_iter()
        .flat_map(|rho| rho.into_iter().take(RHO_BITS / 8))
        .collect()
}

/// `Σ ρ_j·U_j` over the block, by `msm`: with `U_j = h·U′_j`, one clearing of the sum (see
/// the ciphertext module).
fn block_u_sum(
    u_primes: &[G1Affine],
    rhos: &[u8],
    msm: fn(&[G1Affine], &[u8], usize) -> G1Projective,
) -> G1Affine {
    curve::clear_cofactor(&msm(u_primes, rhos, RHO_BITS)).to_affine()
}

/// The block's aggregate check: `e(Σ ρ_j·K_j, G2) = e(Σ ρ_j·U_j, X2)`, the sum by `msm`.
fn aggregate_holds(
    pks: &PublicKeySet,
    keys: &[G1Affine],
    rhos: &[u8],
    u_sum: &G1Affine,
    msm: fn(&[G1Affine], &[u8], usize) -> G1Projective,
) -> bool {
    let combined_sum = msm(keys, rhos, RHO_BITS).to_affine();
    curve::pairing_eq(&combined_sum, &G2Affine::generator(), u_sum, pks.key_g2())
}

/// Each opening as an outcome: a body that did not open is the sender's fault.
fn outcomes(opened: Vec<Option<Vec<u8>>>) -> Vec<DecryptOutcome> {
    opened
        .into_iter()
        .map(|o| o.map_or(DecryptOutcome::Undecryptable, DecryptOutcome::Plaintext))
        .collect()
}

fn check_block(pks: &PublicKeySet, cts: &[&Ciphertext], ids: &[TxId]) -> Result<(), CryptoError> {
    for ct in cts {
        ct.ad().check_key(pks.chain_id(), pks.eon())?;
    }
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(CryptoError::DuplicateCiphertext(w[0]));
    }
    Ok(())
}

/// Picks the responder set: a set all of whose members sent batches scaled for it (the fast
/// path), or else the `t + 1` lowest-indexed usable keypers (shares rescaled).
fn choose_responders(
    pks: &PublicKeySet,
    usable: &BTreeMap<KeyperIndex, &VerifiedShareBatch>,
) -> (ResponderSet, bool) {
    for b in usable.values() {
        if let Some(set) = &b.scaled_for {
            let complete = set
                .members()
                .iter()
                .all(|m| usable.get(m).is_some_and(|mb| mb.scaled_for.as_ref() == Some(set)));
            if complete {
                return (set.clone(), true);
            }
        }
    }
    let members = usable.keys().take(pks.shares_needed()).copied().collect();
    (ResponderSet::from_sorted_unchecked(members), false)
}

/// `K_j = Σ_i (λ_i / c_i)·D_ij`, parallel over ciphertexts. On the fast path every factor is
/// one and this is `t` point additions per ciphertext. Otherwise the members whose factor is
/// not one are combined per ciphertext with one small multi-scalar multiplication (cheaper
/// than a scalar multiplication per share), and the rest added.
fn combine(set: &ResponderSet, members: &[&VerifiedShareBatch], n: usize) -> Vec<G1Affine> {
    let lambdas = set.lagrange_coefficients();
    let mut plain: Vec<&[G1Affine]> = Vec::new();
    let mut scaled: Vec<&[G1Affine]> = Vec::new();
    let mut factors: Vec<Scalar> = Vec::new();
    for (b, lambda) in members.iter().zip(&lambdas) {
        if *lambda == b.coefficient {
            plain.push(&b.shares);
        } else {
            let inv = Option::<Scalar>::from(b.coefficient.invert())
                .expect("share coefficients are one or a Lagrange coefficient, never zero");
            scaled.push(&b.shares);
            factors.push(*lambda * inv);
        }
    }
    let factor_bytes = curve::scalars_le(&factors);
    let sums: Vec<G1Projective> = (0..n)
        .into_par_iter()
        .map(|j| {
            let mut acc = if scaled.is_empty() {
                G1Projective::identity()
            } else {
                let points: Vec<G1Affine> = scaled.iter().map(|shares| shares[j]).collect();
                curve::msm(&points, &factor_bytes, 255)
            };
            for shares in &plain {
                acc += &shares[j];
            }
            acc
        })
        .collect();
    curve::batch_to_affine(&sums)
}

/// The keypers whose own shares fail `e(Σ ρ_j·D_ij, G2) = e(c_i·Σ ρ_j·U_j, X2_i)`.
fn blame_wrong_shares(
    pks: &PublicKeySet,
    members: &[&VerifiedShareBatch],
    rhos: &[u8],
    u_sum: &G1Affine,
) -> Result<Vec<KeyperIndex>, CryptoError> {
    let share_keys = members
        .iter()
        .map(|b| pks.keyper(b.keyper).map(|k| k.share_key))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(members
        .par_iter()
        .zip(share_keys.par_iter())
        .filter(|(b, share_key)| {
            let lhs = curve::msm(&b.shares, rhos, RHO_BITS).to_affine();
            let rhs = (u_sum * b.coefficient).to_affine();
            !curve::pairing_eq(&lhs, &G2Affine::generator(), &rhs, share_key)
        })
        .map(|(b, _)| b.keyper)
        .collect())
}

/// For ciphertexts that did not open: if the combined key is outside the subgroup, blame
/// every responder whose share for it is.
fn blame_torsion(
    members: &[&VerifiedShareBatch],
    keys: &[G1Affine],
    opened: &[Option<Vec<u8>>],
) -> Vec<Blame> {
    let mut blamed: Vec<Blame> = Vec::new();
    for (j, _) in opened.iter().enumerate().filter(|(_, o)| o.is_none()) {
        if bool::from(keys[j].is_torsion_free()) {
            continue;
        }
        for b in members {
            if !bool::from(b.shares[j].is_torsion_free())
                && !blamed.iter().any(|x| x.keyper == b.keyper)
            {
                blamed.push(Blame {
                    keyper: b.keyper,
                    reason: BlameReason::ShareOutsideSubgroup { position: j },
                });
            }
        }
    }
    blamed
}
