//! Veil's threshold-encryption core: committee keys, encryption with validity proofs, batched
//! admission checks, keyper decryption shares, and block decryption with one aggregate check.
//!
//! Users encrypt transactions to a committee of `n` keypers so that nobody, builders and the
//! sequencer included, can read them before the block that includes them is committed. After
//! the commitment, any `t + 1` keypers' shares decrypt the block; `t` of them learn nothing.
//! This crate does no I/O and reads no clock: randomness comes in as an argument, and the
//! node, the simulations and the benchmarks drive the same code.
//!
//! # Construction: signed ElGamal in G1 (threshold, hashed, with AEAD)
//!
//! BLS12-381, with the committee key `X1 = x·G1` and `X2 = x·G2`, where `x` is Shamir-shared
//! among the keypers ([`keys`]). To encrypt a payload with associated data `ad`
//! ([`PublicKeySet::encrypt`]):
//!
//! 1. pick random `r`, `k`; compute `U = r·G1`, `K = r·X1`, `A = k·G1` (sent as
//!    `U′ = h⁻¹·U` and `A′ = h⁻¹·A`, see "Admission" below);
//! 2. pad the payload to a size bucket ([`PADDING_BUCKETS`]) and seal it with
//!    ChaCha20-Poly1305 under `sha3-256("veil/v1/payload-key" ‖ K ‖ U′)`, `ad` as AEAD data;
//! 3. prove knowledge of `r`: `c = H(ad, U′, A′, sha3(body))`, `z = k + c·r`.
//!
//! The ciphertext is `(ad, U′, A′, z, body)`. This is the "signed ElGamal" pattern (a Schnorr
//! proof of the encryption randomness; Tsiounis–Yung 1998, Schnorr–Jakobsson 2000) in its
//! hashed-ElGamal/KEM form, as in TDH2 (Shoup–Gennaro 1998) but with a Schnorr proof in place
//! of TDH2's second generator, which keeps the validity check inside G1 and batchable.
//!
//! **Security argument.** The proof is a Fiat–Shamir Schnorr proof of knowledge of `r` whose
//! challenge hashes `ad`, `U`, `A` and the body, so it is a signature on the whole ciphertext
//! under the one-time key `U`. Changing the payload or the associated data changes `c` and
//! invalidates the proof; copying someone's `U` into a new ciphertext requires a proof for
//! `U`, hence knowledge of `r` (forking lemma), which the copier does not have. A valid
//! ciphertext is therefore plaintext-aware: whoever made it knows `r` and hence the payload,
//! so including a copy cannot reveal a victim's payload early (the Shoup–Gennaro argument for
//! CCA security of threshold ElGamal with a proof of knowledge, in the random-oracle model).
//! Confidentiality rests on CDH in G1 (`K = r·x·G1` from `U` and `X1`) with the KDF as a random
//! oracle; the AEAD adds integrity of the body under the derived key. Identical
//! encryption keys cannot repeat (fresh `r`), so a fixed nonce is safe.
//!
//! # Admission: batched validity checks
//!
//! Decoding ([`Ciphertext::from_bytes`]) is strict about the encoding (canonical, points on
//! the curve and not the identity, canonical scalar, a padding bucket as body size) but
//! checks no subgroup: both points are cofactor-cleared, as in Ed25519's cofactored
//! verification (version 2 of the encoding). The ciphertext carries canonical curve points
//! `U′` and `A′`, and the scheme uses `U = h·U′` and `A = h·A′` with `h` G1's effective
//! cofactor, which are in G1 by construction. A secret only ever multiplies `U`, so torsion in
//! `U′` never meets a secret; the challenge hashes both points' bytes, so the encoding cannot
//! be mauled. That saves blst's subgroup check (about 50 µs, two fifths of admission's CPU)
//! per ciphertext at admission and at every keyper. Points are uncompressed on the wire,
//! because decompression costs a square root per point. Proofs are checked many at a time
//! ([`PublicKeySet::verify_batch`]) with one random linear combination,
//! `h·(Σρ_j·A′_j + Σ(ρ_j·c_j)·U′_j) = (Σρ_j·z_j)·G1`, as two Pippenger multi-scalar
//! multiplications (the `A′` side with 128-bit `ρ_j`, half the cost) and one clearing per
//! batch, no pairing and no hash-to-curve. A failing batch is bisected with fresh
//! coefficients, so the bad ciphertexts are named.
//!
//! # Keypers: shares, scaled ahead of time
//!
//! Keyper `i`'s share for `U` is `D = c_i·x_i·U` ([`SecretKeyShare::decryption_shares`]), in
//! parallel over ciphertexts, after clearing `U = h·U′` (63 doublings, about half a subgroup
//! check). The responder set `S` of `t + 1` keypers is named ahead of the
//! slot ([`ResponderSet`]); its members set `c_i = λ_i(S)`, their Lagrange coefficient, so
//! that interpolation in the exponent happens on the keypers, in parallel, before the
//! commitment is known. Shares are released only as a signed [`ShareBatch`] for an explicit
//! list of ciphertext ids (the committed block); the node enforces when.
//!
//! # Combining: optimistic, one aggregate check, blame on failure
//!
//! [`decrypt_block`] adds the responders' shares (`K_j = Σ D_ij`, point additions only), then
//! checks the whole block against `X2` with one equation of two multi-scalar multiplications
//! (64-bit random coefficients, see [`combine`] for why they suffice there) and two
//! pairings, then opens every ciphertext in parallel. On failure it checks each
//! responder's shares with the same coefficients, blames and excludes the wrong ones, and
//! recombines from the others (rescaling shares when the set changes). Shares are only checked
//! to be on the curve when they arrive; subgroup membership is checked lazily, only for
//! ciphertexts that fail to open (see [`combine`] for why this is sound). Fewer than `t + 1`
//! correct keypers give [`CryptoError::NotEnoughShares`] and no plaintext.
//!
//! # Parallelism and side conditions
//!
//! rayon parallelises decoding, challenges, shares, combination and opening; blst's own
//! thread pool is compiled out (`no-threads`). Secret scalars are wiped on drop
//! ([`SecretKeyShare`], encryption randomness). Every signature, challenge, key derivation and
//! batch coefficient is domain-separated (`veil/v1/...`); transaction ids are plain sha3-256 of
//! the canonical bytes, as the protocol defines them.
//!
//! # Known limits
//!
//! - The trusted dealer ([`TrustedDealer`]) knows the master key: tests and devnets only. A
//!   DKG that produces the same [`PublicKeySet`]/[`SecretKeyShare`] types is separate work.
//! - The fee payer in the associated data is bound to the ciphertext but not authenticated
//!   here; authorising payment is the settlement layer's job.
//! - A ciphertext's size reveals its padding bucket.
//!
//! # Example
//!
//! ```
//! use veil_crypto::{decrypt_block, testing::{self, TestCommittee}, DecryptOutcome, ShareBatch};
//! use veil_primitives::Slot;
//!
//! let committee = TestCommittee::new(5, 2, 42); // 5 keypers, any 3 decrypt
//! let mut rng = testing::rng(7);
//! let ct = committee.pks.encrypt(&committee.ad(1, 100), b"swap 1 ETH", &mut rng).unwrap();
//!
//! // Admission: decode strictly and check the proof (in batches in production).
//! let ct = veil_crypto::Ciphertext::from_bytes(ct.as_bytes()).unwrap();
//! assert!(committee.pks.verify_batch(&[&ct], &mut rng).is_empty());
//!
//! // After the commitment: the responders release signed, pre-scaled shares.
//! let responders = committee.pks.default_responders();
//! let batches: Vec<_> = responders
//!     .members()
//!     .iter()
//!     .map(|i| {
//!         let pos = usize::from(i.get()) - 1;
//!         let batch = ShareBatch::create(
//!             &committee.shares[pos],
//!             &committee.identities[pos],
//!             Slot(9),
//!             &[&ct],
//!             Some(&responders),
//!         )
//!         .unwrap();
//!         committee.pks.verify_share_batch(&batch).unwrap()
//!     })
//!     .collect();
//!
//! let block = decrypt_block(&committee.pks, Slot(9), &[&ct], &batches, &mut rng).unwrap();
//! assert_eq!(block.outcomes, vec![DecryptOutcome::Plaintext(b"swap 1 ETH".to_vec())]);
//! assert!(block.blamed.is_empty() && block.fast_path);
//! ```

mod ciphertext;
pub mod combine;
mod curve;
pub mod dev;
mod error;
#[cfg(test)]
mod kat;
pub mod keys;
mod share;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;

pub use ciphertext::{
    tx_id, BundleRef, Ciphertext, TxMeta, CIPHERTEXT_VERSION, MAX_BUNDLE_PARTS, MAX_CIPHERTEXT_LEN,
    MAX_PAYLOAD, PADDING_BUCKETS,
};
pub use combine::{
    decrypt_block, Blame, BlameReason, BlockCombiner, DecryptOutcome, DecryptedBlock,
};
pub use error::CryptoError;
pub use keys::{
    KeyperIndex, KeyperPublic, PublicKeySet, ResponderSet, SecretKeyShare, TrustedDealer,
};
pub use share::{
    BlockDigest, DecryptionShare, ShareBatch, ShareBytes, SignedShareBatch, VerifiedShareBatch,
};

/// Re-exported so that callers can name the identity key types without their own dependency.
pub use ed25519_dalek::{SigningKey, VerifyingKey};
