//! Committee key material for one eon: the public key set that clients encrypt to and
//! combiners check against, the keypers' secret shares, a trusted dealer, and responder sets
//! with their Lagrange coefficients.
//!
//! The master secret `x` is shared with a degree-`t` polynomial `f` (`f(0) = x`), keyper `i`
//! holding `x_i = f(i)`. Any `t + 1` shares determine `x`; `t` reveal nothing about it.
//!
//! Public parts: `X1 = x·G1` (clients encrypt to it), `X2 = x·G2` (the aggregate check pairs
//! against it) and each keyper's `X2_i = x_i·G2` (the blame path pairs against those). Loading
//! a key set checks that these all belong to one polynomial, so a bad committee file is
//! refused up front rather than found out at decryption time.

use std::fmt;
use std::num::NonZeroU16;

use blstrs::{G1Affine, G2Affine, G2Projective, Scalar};
use ed25519_dalek::VerifyingKey;
use ff::Field;
use group::{prime::PrimeCurveAffine, Curve};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use veil_primitives::{hexbytes, ChainId, Eon, PublicKeyBytes};

use crate::curve;
use crate::error::CryptoError;

/// A keyper's position in the committee, `1..=n`. It is also the point at which the
/// keyper's share of the secret polynomial is evaluated, hence never zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyperIndex(pub NonZeroU16);

impl KeyperIndex {
    /// The index `i`, or `None` for zero.
    #[must_use]
    pub fn new(i: u16) -> Option<KeyperIndex> {
        NonZeroU16::new(i).map(KeyperIndex)
    }

    /// The index as a number.
    #[must_use]
    pub fn get(self) -> u16 {
        self.0.get()
    }

    fn scalar(self) -> Scalar {
        Scalar::from(u64::from(self.get()))
    }
}

impl fmt::Display for KeyperIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The largest committee a key set may describe. Loading validates every share key against
/// the polynomial (O(n·t) work), so the bound keeps a hostile committee file from stalling
/// the loader.
pub const MAX_COMMITTEE: usize = 1024;

/// The public side of one committee member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyperPublic {
    /// The keyper's index.
    pub index: KeyperIndex,
    /// The keyper's ed25519 identity key: it signs share batches and other keyper messages.
    pub identity: VerifyingKey,
    /// `x_i·G2`: checks this keyper's decryption shares on the blame path.
    pub share_key: G2Affine,
}

/// The public key set of a committee for one eon. Clients encrypt to it; keypers and
/// combiners check shares against it.
///
/// Construct it through [`TrustedDealer::deal`], or load it with [`PublicKeySet::from_json`],
/// which validates it: every point strict, `e(X1, G2) = e(G1, X2)`, and every keyper's share
/// key on the single degree-`t` polynomial whose value at zero is `X2`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PublicKeySetFile", into = "PublicKeySetFile")]
pub struct PublicKeySet {
    chain_id: ChainId,
    eon: Eon,
    threshold: u16,
    key_g1: G1Affine,
    key_g2: G2Affine,
    keypers: Vec<KeyperPublic>,
}

impl PublicKeySet {
    /// The chain this committee serves.
    #[must_use]
    pub fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// The eon of this key.
    #[must_use]
    pub fn eon(&self) -> Eon {
        self.eon
    }

    /// `t`: the polynomial degree. Decryption needs `t + 1` keypers; `t` learn nothing.
    #[must_use]
    pub fn threshold(&self) -> usize {
        usize::from(self.threshold)
    }

    /// `t + 1`: how many keypers' shares decrypt a ciphertext.
    #[must_use]
    pub fn shares_needed(&self) -> usize {
        usize::from(self.threshold) + 1
    }

    /// The committee size `n`.
    #[must_use]
    pub fn committee_size(&self) -> usize {
        self.keypers.len()
    }

    /// Every member, ordered by index (`1..=n`).
    #[must_use]
    pub fn keypers(&self) -> &[KeyperPublic] {
        &self.keypers
    }

    /// The member with index `i`.
    pub fn keyper(&self, i: KeyperIndex) -> Result<&KeyperPublic, CryptoError> {
        self.keypers.get(usize::from(i.get()) - 1).ok_or(CryptoError::UnknownKeyper(i))
    }

    pub(crate) fn key_g1(&self) -> &G1Affine {
        &self.key_g1
    }

    pub(crate) fn key_g2(&self) -> &G2Affine {
        &self.key_g2
    }

    /// The default responder set: the first `t + 1` keypers by index. Keypers scale their
    /// shares for it ahead of time unless the deployment names another.
    #[must_use]
    pub fn default_responders(&self) -> ResponderSet {
        let members = self.keypers.iter().take(self.shares_needed()).map(|k| k.index).collect();
        ResponderSet::from_sorted_unchecked(members)
    }

    /// Builds and validates a key set from its parts.
    pub fn new(
        chain_id: ChainId,
        eon: Eon,
        threshold: u16,
        key_g1: G1Affine,
        key_g2: G2Affine,
        keypers: Vec<KeyperPublic>,
    ) -> Result<PublicKeySet, CryptoError> {
        let set = PublicKeySet { chain_id, eon, threshold, key_g1, key_g2, keypers };
        set.validate()?;
        Ok(set)
    }

    fn validate(&self) -> Result<(), CryptoError> {
        let n = self.keypers.len();
        if n == 0 || n > MAX_COMMITTEE {
            return Err(CryptoError::InvalidThreshold("committee size must be 1..=1024"));
        }
        if self.shares_needed() > n {
            return Err(CryptoError::InvalidThreshold("t + 1 exceeds the committee size"));
        }
        for (pos, k) in self.keypers.iter().enumerate() {
            if usize::from(k.index.get()) != pos + 1 {
                return Err(CryptoError::InconsistentKeySet(
                    "keyper indexes must be 1..=n in order",
                ));
            }
        }
        let mut identities: Vec<[u8; 32]> =
            self.keypers.iter().map(|k| k.identity.to_bytes()).collect();
        identities.sort_unstable();
        if identities.windows(2).any(|w| w[0] == w[1]) {
            return Err(CryptoError::InconsistentKeySet("two keypers share an identity key"));
        }
        if bool::from(self.key_g1.is_identity()) || bool::from(self.key_g2.is_identity()) {
            return Err(CryptoError::InconsistentKeySet("committee key is the identity"));
        }
        // The pairing cannot see components outside the prime-order subgroups, so check them
        // here too: a committee key with one would make every ciphertext of the eon
        // undecryptable while its proofs still verify.
        let torsion_free = bool::from(self.key_g1.is_torsion_free())
            && bool::from(self.key_g2.is_torsion_free())
            && self.keypers.iter().all(|k| bool::from(k.share_key.is_torsion_free()));
        if !torsion_free {
            return Err(CryptoError::InconsistentKeySet(
                "a key is outside the prime-order subgroup",
            ));
        }
        if !curve::pairing_eq(
            &self.key_g1,
            &G2Affine::generator(),
            &G1Affine::generator(),
            &self.key_g2,
        ) {
            return Err(CryptoError::InconsistentKeySet("G1 and G2 committee keys differ"));
        }
        // Every share key must lie on the degree-t polynomial through the first t+1 of them,
        // and that polynomial must pass through X2 at zero.
        let base = self.default_responders();
        let lambdas_at = |x: Scalar| base.lagrange_at(x);
        let basis: Vec<G2Projective> =
            self.keypers[..self.shares_needed()].iter().map(|k| k.share_key.into()).collect();
        let interpolate = |coeffs: Vec<Scalar>| -> G2Affine {
            basis.iter().zip(coeffs).map(|(p, c)| p * c).sum::<G2Projective>().to_affine()
        };
        if interpolate(lambdas_at(Scalar::ZERO)) != self.key_g2 {
            return Err(CryptoError::InconsistentKeySet(
                "share keys do not interpolate to the committee key",
            ));
        }
        for k in &self.keypers[self.shares_needed()..] {
            if interpolate(lambdas_at(k.index.scalar())) != k.share_key {
                return Err(CryptoError::InconsistentKeySet(
                    "a share key is off the committee polynomial",
                ));
            }
        }
        Ok(())
    }

    /// Parses and validates a committee file (the JSON written by [`PublicKeySet::to_json`]).
    pub fn from_json(json: &str) -> Result<PublicKeySet, CryptoError> {
        let file: PublicKeySetFile =
            serde_json::from_str(json).map_err(|e| CryptoError::KeyFile(e.to_string()))?;
        file.try_into()
    }

    /// The committee file: JSON with `0x`-hex compressed points.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&PublicKeySetFile::from(self.clone()))
            .expect("plain fields always serialise")
    }
}

impl From<PublicKeySet> for PublicKeySetFile {
    fn from(set: PublicKeySet) -> PublicKeySetFile {
        let s = &set;
        PublicKeySetFile {
            chain_id: s.chain_id,
            eon: s.eon,
            threshold: s.threshold,
            key_g1: s.key_g1.to_compressed(),
            key_g2: s.key_g2.to_compressed(),
            keypers: s
                .keypers
                .iter()
                .map(|k| KeyperPublicFile {
                    index: k.index,
                    identity: PublicKeyBytes(k.identity.to_bytes()),
                    share_key: k.share_key.to_compressed(),
                })
                .collect(),
        }
    }
}

/// The committee file's shape: compressed points as `0x` hex.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicKeySetFile {
    chain_id: ChainId,
    eon: Eon,
    threshold: u16,
    #[serde(with = "hexbytes::serde_fixed")]
    key_g1: [u8; curve::G1_COMPRESSED_LEN],
    #[serde(with = "hexbytes::serde_fixed")]
    key_g2: [u8; curve::G2_COMPRESSED_LEN],
    keypers: Vec<KeyperPublicFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyperPublicFile {
    index: KeyperIndex,
    identity: PublicKeyBytes,
    #[serde(with = "hexbytes::serde_fixed")]
    share_key: [u8; curve::G2_COMPRESSED_LEN],
}

impl TryFrom<PublicKeySetFile> for PublicKeySet {
    type Error = CryptoError;

    fn try_from(file: PublicKeySetFile) -> Result<PublicKeySet, CryptoError> {
        let keypers = file
            .keypers
            .into_iter()
            .map(|k| {
                Ok(KeyperPublic {
                    index: k.index,
                    identity: VerifyingKey::from_bytes(&k.identity.0)
                        .map_err(|_| CryptoError::BadPoint("keyper identity key"))?,
                    share_key: curve::decode_compressed_strict::<G2Affine>(
                        &k.share_key,
                        "keyper share key",
                    )?,
                })
            })
            .collect::<Result<Vec<_>, CryptoError>>()?;
        PublicKeySet::new(
            file.chain_id,
            file.eon,
            file.threshold,
            curve::decode_compressed_strict::<G1Affine>(&file.key_g1, "committee key (G1)")?,
            curve::decode_compressed_strict::<G2Affine>(&file.key_g2, "committee key (G2)")?,
            keypers,
        )
    }
}

/// One keyper's secret share `x_i` of the committee key. Zeroized when dropped; `Debug`
/// does not print it.
pub struct SecretKeyShare {
    chain_id: ChainId,
    eon: Eon,
    index: KeyperIndex,
    secret: Scalar,
}

impl SecretKeyShare {
    /// The keyper this share belongs to.
    #[must_use]
    pub fn index(&self) -> KeyperIndex {
        self.index
    }

    /// The eon of the key this is a share of.
    #[must_use]
    pub fn eon(&self) -> Eon {
        self.eon
    }

    /// The chain of the committee.
    #[must_use]
    pub fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    pub(crate) fn secret(&self) -> &Scalar {
        &self.secret
    }

    /// Checks that this share matches its public share key in `pks`.
    pub fn check_against(&self, pks: &PublicKeySet) -> Result<(), CryptoError> {
        if self.chain_id != pks.chain_id {
            return Err(CryptoError::WrongChain { expected: pks.chain_id, found: self.chain_id });
        }
        if self.eon != pks.eon {
            return Err(CryptoError::WrongEon { expected: pks.eon, found: self.eon });
        }
        let expected = (G2Affine::generator() * self.secret).to_affine();
        if pks.keyper(self.index)?.share_key != expected {
            return Err(CryptoError::InconsistentKeySet(
                "secret share does not match its share key",
            ));
        }
        Ok(())
    }

    /// The key share file (JSON, secret as `0x` hex). Handle the string as a secret.
    #[must_use]
    pub fn to_json(&self) -> zeroize::Zeroizing<String> {
        let mut secret = self.secret.to_bytes_be();
        let file = SecretKeyShareFile {
            chain_id: self.chain_id,
            eon: self.eon,
            index: self.index,
            secret: zeroize::Zeroizing::new(hexbytes::encode(&secret)),
        };
        zeroize::Zeroize::zeroize(&mut secret);
        zeroize::Zeroizing::new(
            serde_json::to_string_pretty(&file).expect("plain fields always serialise"),
        )
    }

    /// Parses a key share file written by [`SecretKeyShare::to_json`].
    pub fn from_json(json: &str) -> Result<SecretKeyShare, CryptoError> {
        let file: SecretKeyShareFile =
            serde_json::from_str(json).map_err(|e| CryptoError::KeyFile(e.to_string()))?;
        let mut bytes = hexbytes::decode_fixed::<32>(&file.secret)
            .map_err(|e| CryptoError::KeyFile(e.to_string()))?;
        let secret = curve::decode_scalar(&bytes, "secret share");
        zeroize::Zeroize::zeroize(&mut bytes);
        Ok(SecretKeyShare {
            chain_id: file.chain_id,
            eon: file.eon,
            index: file.index,
            secret: secret?,
        })
    }
}

impl Drop for SecretKeyShare {
    fn drop(&mut self) {
        curve::wipe_scalar(&mut self.secret);
    }
}

impl fmt::Debug for SecretKeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKeyShare")
            .field("chain_id", &self.chain_id)
            .field("eon", &self.eon)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretKeyShareFile {
    chain_id: ChainId,
    eon: Eon,
    index: KeyperIndex,
    secret: zeroize::Zeroizing<String>,
}

/// A trusted dealer: samples the secret polynomial, hands out shares, and forgets it.
///
/// Only for tests and quick devnets: whoever runs the dealer knows the master secret. Real
/// deployments run a distributed key generation among the keypers (a separate component) that
/// produces the same [`PublicKeySet`] and [`SecretKeyShare`] types.
#[derive(Debug, Clone, Copy)]
pub struct TrustedDealer;

impl TrustedDealer {
    /// Deals a key for `identities.len()` keypers with threshold `t`: any `t + 1` of them
    /// decrypt. Keyper `i` (1-based) gets `identities[i - 1]` as its identity key.
    pub fn deal<R: RngCore + CryptoRng>(
        chain_id: ChainId,
        eon: Eon,
        threshold: u16,
        identities: &[VerifyingKey],
        rng: &mut R,
    ) -> Result<(PublicKeySet, Vec<SecretKeyShare>), CryptoError> {
        let n = identities.len();
        if n == 0 || n > MAX_COMMITTEE || usize::from(threshold) >= n {
            return Err(CryptoError::InvalidThreshold("need 0 <= t < n <= 1024"));
        }
        let mut coeffs: Vec<Scalar> = (0..=threshold).map(|_| Scalar::random(&mut *rng)).collect();
        let eval = |x: Scalar| coeffs.iter().rev().fold(Scalar::ZERO, |acc, c| acc * x + c);
        let mut shares = Vec::with_capacity(n);
        let mut keypers = Vec::with_capacity(n);
        for (pos, identity) in identities.iter().enumerate() {
            let index = KeyperIndex::new(u16::try_from(pos + 1).expect("n <= u16::MAX"))
                .expect("pos + 1 is non-zero");
            let secret = eval(index.scalar());
            keypers.push(KeyperPublic {
                index,
                identity: *identity,
                share_key: (G2Affine::generator() * secret).to_affine(),
            });
            shares.push(SecretKeyShare { chain_id, eon, index, secret });
        }
        let key_g1 = (G1Affine::generator() * coeffs[0]).to_affine();
        let key_g2 = (G2Affine::generator() * coeffs[0]).to_affine();
        coeffs.iter_mut().for_each(curve::wipe_scalar);
        let pks = PublicKeySet::new(chain_id, eon, threshold, key_g1, key_g2, keypers)?;
        Ok((pks, shares))
    }
}

/// A set of exactly `t + 1` keypers named to answer for a slot. Keypers in the set multiply
/// their shares by their Lagrange coefficient for it before sending, so that the combiner only
/// adds points: the scalar work moves off the critical path onto the keypers, in parallel.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<KeyperIndex>", into = "Vec<KeyperIndex>")]
pub struct ResponderSet {
    members: Vec<KeyperIndex>,
}

impl TryFrom<Vec<KeyperIndex>> for ResponderSet {
    type Error = CryptoError;

    fn try_from(members: Vec<KeyperIndex>) -> Result<Self, Self::Error> {
        if members.is_empty() {
            return Err(CryptoError::InvalidResponderSet("empty"));
        }
        if !members.windows(2).all(|w| w[0] < w[1]) {
            return Err(CryptoError::InvalidResponderSet("members must be sorted and distinct"));
        }
        Ok(ResponderSet { members })
    }
}

impl From<ResponderSet> for Vec<KeyperIndex> {
    fn from(set: ResponderSet) -> Self {
        set.members
    }
}

impl ResponderSet {
    /// A responder set for `pks`: exactly `t + 1` distinct members of the committee.
    pub fn new(
        pks: &PublicKeySet,
        mut members: Vec<KeyperIndex>,
    ) -> Result<ResponderSet, CryptoError> {
        members.sort_unstable();
        members.dedup();
        if members.len() != pks.shares_needed() {
            return Err(CryptoError::InvalidResponderSet(
                "must have exactly t + 1 distinct members",
            ));
        }
        for &m in &members {
            pks.keyper(m)?;
        }
        Ok(ResponderSet { members })
    }

    pub(crate) fn from_sorted_unchecked(members: Vec<KeyperIndex>) -> ResponderSet {
        ResponderSet { members }
    }

    /// The members, ascending.
    #[must_use]
    pub fn members(&self) -> &[KeyperIndex] {
        &self.members
    }

    /// Whether `i` is a member.
    #[must_use]
    pub fn contains(&self, i: KeyperIndex) -> bool {
        self.members.binary_search(&i).is_ok()
    }

    /// Checks the set against a committee: `t + 1` members, all in the committee.
    pub fn check(&self, pks: &PublicKeySet) -> Result<(), CryptoError> {
        if self.members.len() != pks.shares_needed() {
            return Err(CryptoError::InvalidResponderSet(
                "must have exactly t + 1 distinct members",
            ));
        }
        for &m in &self.members {
            pks.keyper(m)?;
        }
        Ok(())
    }

    /// The Lagrange coefficients at zero, one per member in order:
    /// `λ_i = Π_{k≠i} x_k / (x_k − x_i)`. One batched inversion for the whole set.
    #[must_use]
    pub fn lagrange_coefficients(&self) -> Vec<Scalar> {
        self.lagrange_at(Scalar::ZERO)
    }

    /// The Lagrange coefficient of member `i` at zero, or `None` if `i` is not a member.
    #[must_use]
    pub fn lagrange_coefficient(&self, i: KeyperIndex) -> Option<Scalar> {
        let pos = self.members.binary_search(&i).ok()?;
        Some(self.lagrange_coefficients()[pos])
    }

    /// The Lagrange basis evaluated at `x`: `Π_{k≠i} (x − x_k) / (x_i − x_k)`.
    pub(crate) fn lagrange_at(&self, x: Scalar) -> Vec<Scalar> {
        let xs: Vec<Scalar> = self.members.iter().map(|m| m.scalar()).collect();
        let mut nums = Vec::with_capacity(xs.len());
        let mut dens = Vec::with_capacity(xs.len());
        for (i, xi) in xs.iter().enumerate() {
            let mut num = Scalar::ONE;
            let mut den = Scalar::ONE;
            for (k, xk) in xs.iter().enumerate() {
                if i != k {
                    num *= x - xk;
                    den *= *xi - xk;
                }
            }
            nums.push(num);
            dens.push(den);
        }
        batch_invert(&mut dens);
        nums.iter().zip(&dens).map(|(n, d)| n * d).collect()
    }
}

/// Inverts every element in place with one field inversion (Montgomery's trick). Elements
/// must be non-zero; the members of a responder set are distinct, so denominators are.
pub(crate) fn batch_invert(values: &mut [Scalar]) {
    let mut prefix = Vec::with_capacity(values.len());
    let mut acc = Scalar::ONE;
    for v in values.iter() {
        prefix.push(acc);
        acc *= v;
    }
    let mut inv =
        Option::<Scalar>::from(acc.invert()).expect("non-zero product of non-zero values");
    for (v, before) in values.iter_mut().zip(prefix).rev() {
        let next = inv * *v;
        *v = inv * before;
        inv = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestCommittee;

    #[test]
    fn lagrange_reconstructs_the_secret_from_any_set() {
        let c = TestCommittee::new(7, 4, 11);
        let x_g1 = *c.pks.key_g1();
        for members in [vec![1u16, 2, 3, 4, 5], vec![3, 4, 5, 6, 7], vec![1, 3, 5, 6, 7]] {
            let set = ResponderSet::new(
                &c.pks,
                members.iter().map(|&i| KeyperIndex::new(i).unwrap()).collect(),
            )
            .unwrap();
            let lambdas = set.lagrange_coefficients();
            let x: Scalar = set
                .members()
                .iter()
                .zip(&lambdas)
                .map(|(m, l)| c.shares[usize::from(m.get()) - 1].secret * l)
                .sum();
            assert_eq!((G1Affine::generator() * x).to_affine(), x_g1);
        }
    }

    #[test]
    fn batch_inversion_matches_single() {
        let mut v: Vec<Scalar> = (1..20u64).map(Scalar::from).collect();
        let expected: Vec<Scalar> = v.iter().map(|x| x.invert().unwrap()).collect();
        batch_invert(&mut v);
        assert_eq!(v, expected);
    }

    #[test]
    fn key_files_round_trip_and_validate() {
        let c = TestCommittee::new(5, 2, 3);
        let json = c.pks.to_json();
        assert_eq!(PublicKeySet::from_json(&json).unwrap(), c.pks);
        let share_json = c.shares[1].to_json();
        let share = SecretKeyShare::from_json(&share_json).unwrap();
        share.check_against(&c.pks).unwrap();
        // Swapping two share keys breaks the polynomial check.
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let a = v["keypers"][0]["share_key"].clone();
        v["keypers"][0]["share_key"] = v["keypers"][4]["share_key"].clone();
        v["keypers"][4]["share_key"] = a;
        assert!(matches!(
            PublicKeySet::from_json(&v.to_string()),
            Err(CryptoError::InconsistentKeySet(_))
        ));
        // A share from another committee does not check.
        let other = TestCommittee::new(5, 2, 4);
        assert!(other.shares[1].check_against(&c.pks).is_err());
    }

    #[test]
    fn dealer_rejects_bad_parameters() {
        let ids: Vec<VerifyingKey> =
            (1..=3).map(|i| crate::testing::identity(1, i).verifying_key()).collect();
        let mut rng = rand::thread_rng();
        assert!(TrustedDealer::deal(ChainId(1), Eon(0), 3, &ids, &mut rng).is_err());
        assert!(TrustedDealer::deal(ChainId(1), Eon(0), 0, &[], &mut rng).is_err());
        assert!(TrustedDealer::deal(ChainId(1), Eon(0), 2, &ids, &mut rng).is_ok());
    }
}
