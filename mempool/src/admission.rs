//! The admission rules the shell applies around the pool, with time passed in.
//!
//! A submission goes through these steps; the shell only moves bytes, timers and permits
//! between them, and every rule lives here or in [`crate::pool`]:
//!
//! 1. [`TokenBucket::try_take`]: the connection's submission rate ([`ErrorCode::ConnectionQuota`]).
//! 2. [`Pool::precheck`]: the part count and every ciphertext's size, from the frame alone,
//!    before any expensive work.
//! 3. [`Pool::resubmission`]: bytes identical to a pending ciphertext (same
//!    [`veil_crypto::tx_id`]) are that ciphertext, answered without the expensive check. So
//!    are bytes whose id the pool remembers as committed ([`Pool::is_spent`], decoded by
//!    [`replayed`]): a replay of a committed transaction, answered as a duplicate until its
//!    expiry slot passes, whatever its payer's balance is now.
//! 4. The cryptographic check ([`crate::validate::Validator`]), off the reactor, with
//!    randomness passed in.
//! 5. [`Pool::admit_checked`]: the request's deadline against `now`, the validator's verdicts,
//!    then the pool's own rules (duplicates, bundle shape, chain, eon, expiry, fee, quotas,
//!    capacity and eviction).

use std::time::{Duration, Instant};

use veil_crypto::Ciphertext;
use veil_primitives::signed::SignatureError;
use veil_primitives::{ErrorCode, PayerAuthorization, SignatureBytes, TxId};

use crate::error::Rejection;
use crate::pool::{Admitted, Candidate, Pool};

/// Default sustained submissions per second per connection.
pub const DEFAULT_CONNECTION_RATE: f64 = 50_000.0;
/// Default token bucket size per connection.
pub const DEFAULT_CONNECTION_BURST: f64 = 10_000.0;
/// Default admission deadline for requests that carry none.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// The per-connection and per-request admission rules. See the `DEFAULT_*` constants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdmissionConfig {
    /// Sustained submissions (ciphertexts) per second per connection.
    pub connection_rate: f64,
    /// Token bucket size per connection.
    pub connection_burst: f64,
    /// Admission deadline for requests whose `deadline_ms` is 0.
    pub default_deadline: Duration,
}

impl Default for AdmissionConfig {
    fn default() -> AdmissionConfig {
        AdmissionConfig {
            connection_rate: DEFAULT_CONNECTION_RATE,
            connection_burst: DEFAULT_CONNECTION_BURST,
            default_deadline: DEFAULT_DEADLINE,
        }
    }
}

impl AdmissionConfig {
    /// A full token bucket for a new connection.
    #[must_use]
    pub fn connection_bucket(&self) -> TokenBucket {
        TokenBucket::new(self.connection_rate, self.connection_burst)
    }

    /// The instant after which a request received at `received` with `deadline_ms` (0 for the
    /// default) is refused with [`ErrorCode::DeadlineExceeded`] instead of admitted.
    #[must_use]
    pub fn deadline(&self, received: Instant, deadline_ms: u32) -> Instant {
        received
            + if deadline_ms == 0 {
                self.default_deadline
            } else {
                Duration::from_millis(u64::from(deadline_ms))
            }
    }
}

/// A sans-IO token bucket: `rate` tokens per second up to `burst`; time is passed in.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket.
    #[must_use]
    pub fn new(rate: f64, burst: f64) -> TokenBucket {
        TokenBucket { rate, burst, tokens: burst, last: None }
    }

    /// Takes `n` tokens at time `now` if there are enough.
    pub fn try_take(&mut self, now: Instant, n: f64) -> bool {
        if let Some(last) = self.last {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Takes one token per part at `now`, or refuses with [`ErrorCode::ConnectionQuota`].
    ///
    /// # Errors
    /// The rejection to send when the connection is over its rate.
    pub fn admit(&mut self, now: Instant, parts: usize) -> Result<(), Rejection> {
        if self.try_take(now, parts as f64) {
            Ok(())
        } else {
            Err(Rejection::new(ErrorCode::ConnectionQuota, "submission rate exceeded"))
        }
    }
}

/// A submission whose id the pool remembers as committed ([`Pool::is_spent`]), decoded
/// without any check so that [`Pool::admit_checked`] answers it as a duplicate (after
/// [`Pool::recheck_replay`]) without the expensive check. The shell calls it outside the
/// pool's lock. `None` if the bytes do not decode: they are then checked like a new
/// submission.
#[must_use]
pub fn replayed(body: &[u8], payer_signature: SignatureBytes) -> Option<Candidate> {
    Ciphertext::from_bytes(body).ok().map(|ct| crate::validate::candidate(ct, payer_signature))
}

impl Pool {
    /// The checks that need only the frame: the number of parts and each ciphertext's size.
    /// Rejections are counted in [`Pool::stats`].
    ///
    /// # Errors
    /// [`ErrorCode::CiphertextTooLarge`] (with the part, for a bundle) or
    /// [`ErrorCode::BadBundle`].
    pub fn precheck<T: AsRef<[u8]>>(&mut self, parts: &[T], bundle: bool) -> Result<(), Rejection> {
        let config = self.config();
        let max_ct = config.max_ciphertext_size.get();
        let result = if let Some(i) = parts.iter().position(|p| p.as_ref().len() > max_ct) {
            let r = Rejection::new(ErrorCode::CiphertextTooLarge, format!("over {max_ct} bytes"));
            Err(if bundle { r.at_part(i) } else { r })
        } else if parts.is_empty() || parts.len() > config.max_bundle_parts.get() {
            Err(Rejection::new(
                ErrorCode::BadBundle,
                format!("{} parts (1..={} allowed)", parts.len(), config.max_bundle_parts),
            ))
        } else {
            Ok(())
        };
        if let Err(r) = &result {
            self.count_rejection(r.code);
        }
        result
    }

    /// The pending ciphertext whose id is `id`, if any. The shell computes `id` from the
    /// submitted bytes with [`veil_crypto::tx_id`] outside the pool's lock: stored bytes are
    /// canonical and the id is their hash, so a match is a resubmission of exactly those bytes
    /// and needs no cryptographic check (its payer signed it when it was admitted; the new
    /// `payer_signature` is carried along unchecked, and nothing of a duplicate is stored).
    #[must_use]
    pub fn resubmission(&self, id: &TxId, payer_signature: SignatureBytes) -> Option<Candidate> {
        self.get(id).map(|v| v.to_candidate(payer_signature))
    }

    /// A resubmission recognised by [`Pool::resubmission`] skipped the cryptographic check
    /// because its bytes were pending. If they left the pool before the request reached
    /// [`Pool::admit_checked`] (committed, evicted or expired meanwhile), admitting them is a
    /// new admission, so the payer signature it carried unchecked is checked now; the bytes
    /// passed every other check when they were first admitted. A still-pending resubmission,
    /// or one committed since ([`Pool::is_spent`]), passes unchanged (it will be answered as
    /// a duplicate).
    ///
    /// # Errors
    /// [`ErrorCode::InvalidPublicKey`] or [`ErrorCode::BadSignature`].
    pub fn recheck_resubmission(&self, c: Candidate) -> Result<Candidate, Rejection> {
        if self.get(&c.id).is_some() || self.is_spent(&c.id) {
            return Ok(c);
        }
        let auth = PayerAuthorization { chain_id: c.meta.chain_id, tx: c.id };
        match auth.verify(&c.meta.fee_payer, &c.payer_signature) {
            Ok(()) => Ok(c),
            Err(SignatureError::InvalidPublicKey(_)) => Err(Rejection::new(
                ErrorCode::InvalidPublicKey,
                format!("fee payer {} is not a valid ed25519 key", c.meta.fee_payer),
            )),
            Err(_) => Err(Rejection::new(
                ErrorCode::BadSignature,
                "the fee payer's signature over the transaction id does not verify",
            )),
        }
    }

    /// A replay recognised by [`Pool::is_spent`] skipped the cryptographic check ([`replayed`]):
    /// it passes unchanged while its id is remembered (it will be answered as a duplicate).
    /// If the id was forgotten before the request reached [`Pool::admit_checked`] (its expiry
    /// slot passed, or the memory bound forgot it and now refuses its expiry slot), the
    /// committed transaction would be refused as expired, and so is this request: nothing
    /// recognised by an id's prefix alone is ever admitted unchecked.
    ///
    /// # Errors
    /// [`ErrorCode::Expired`].
    pub fn recheck_replay(&self, c: Candidate) -> Result<Candidate, Rejection> {
        if self.is_spent(&c.id) {
            return Ok(c);
        }
        Err(Rejection::new(
            ErrorCode::Expired,
            format!("{} was committed; a replay is now refused as expired", c.id),
        ))
    }

    /// Admits a request whose parts went through the cryptographic check, at time `now`:
    /// refuses it if `deadline` has passed, then if any part was refused by the check (the
    /// rejection names the part, for a bundle), then applies the pool's rules. Every
    /// rejection is counted in [`Pool::stats`].
    ///
    /// # Errors
    /// The [`Rejection`] to answer with; the pool is unchanged then.
    pub fn admit_checked(
        &mut self,
        checked: Vec<Result<Candidate, Rejection>>,
        bundle: bool,
        deadline: Instant,
        now: Instant,
    ) -> Result<Admitted, Rejection> {
        if now > deadline {
            let r = Rejection::new(ErrorCode::DeadlineExceeded, "deadline passed before admission");
            self.count_rejection(r.code);
            return Err(r);
        }
        let parts = checked
            .into_iter()
            .enumerate()
            .map(|(i, res)| res.map_err(|e| if bundle { e.at_part(i) } else { e }))
            .collect::<Result<Vec<_>, _>>();
        match parts {
            Err(e) => {
                self.count_rejection(e.code);
                Err(e)
            }
            Ok(parts) if bundle => self.admit_bundle(parts),
            Ok(mut parts) if parts.len() == 1 => self.admit_tx(parts.remove(0)),
            Ok(_) => {
                let r = Rejection::new(ErrorCode::BadBundle, "a single submission has one part");
                self.count_rejection(r.code);
                Err(r)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_with_time_passed_in() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 5.0);
        assert!(b.admit(t0, 5).is_ok());
        assert_eq!(b.admit(t0, 1).unwrap_err().code, ErrorCode::ConnectionQuota);
        assert!(b.admit(t0 + Duration::from_millis(100), 1).is_ok());
        assert!(b.admit(t0 + Duration::from_secs(100), 5).is_ok(), "refills up to the burst");
        assert!(b.admit(t0 + Duration::from_secs(100), 1).is_err(), "never above the burst");
    }

    /// A resubmission whose original left the pool between recognition and admission has
    /// its carried signature checked: junk under someone else's payer cannot ride on the
    /// original's check.
    #[test]
    fn a_resubmission_whose_original_left_is_checked_again() {
        use crate::pool::{EphemeralKeyDigest, PoolConfig};
        use bytes::Bytes;
        use veil_primitives::{Amount, ChainId, Eon, PublicKeyBytes, RollupId, Slot, TxMeta};
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let body = Bytes::from_static(b"canonical ciphertext bytes");
        let id = veil_crypto::tx_id(&body);
        let meta = TxMeta {
            chain_id: ChainId(7),
            eon: Eon(1),
            rollup: RollupId(1),
            fee_payer: PublicKeyBytes(key.verifying_key().to_bytes()),
            max_fee: Amount(10),
            gas_limit: 21_000,
            expiry_slot: Slot(20),
            bundle: None,
        };
        let good = PayerAuthorization { chain_id: meta.chain_id, tx: id }.sign(&key);
        let c = Candidate {
            id,
            meta,
            ephemeral_key: EphemeralKeyDigest([1; 32]),
            body,
            payer_signature: good,
        };
        let mut config = PoolConfig::new(ChainId(7));
        config.max_txs = std::num::NonZeroUsize::new(1).unwrap();
        let mut p = Pool::new(config, Slot(10), &[Eon(1)]);
        p.admit_tx(c.clone()).unwrap();
        let junk = p.resubmission(&id, SignatureBytes([9; 64])).unwrap();
        assert!(p.recheck_resubmission(junk.clone()).is_ok(), "still pending: a duplicate");
        // Evicted by a transaction paying more.
        let richer = Candidate {
            id: TxId([3; 32]),
            meta: TxMeta { max_fee: Amount(11), ..meta },
            ephemeral_key: EphemeralKeyDigest([2; 32]),
            body: Bytes::from_static(b"other bytes"),
            payer_signature: good,
        };
        assert_eq!(p.admit_tx(richer.clone()).unwrap().evicted.len(), 1);
        let r = p.recheck_resubmission(junk.clone()).unwrap_err();
        assert_eq!(r.code, ErrorCode::BadSignature);
        let honest = Candidate { payer_signature: good, ..c.clone() };
        assert!(p.recheck_resubmission(honest).is_ok());
        // Committed meanwhile instead: a duplicate, never admitted, whatever it carries.
        let mut p = Pool::new(PoolConfig::new(ChainId(7)), Slot(10), &[Eon(1)]);
        p.admit_tx(c).unwrap();
        let junk = p.resubmission(&id, SignatureBytes([9; 64])).unwrap();
        let _ = p.remove_committed(&[id]);
        let again = p.recheck_resubmission(junk).unwrap();
        assert!(p.admit_tx(again).unwrap().duplicate);
    }

    /// A replay of a committed ciphertext is recognised by its id and decoded without the
    /// expensive check, answered as a duplicate (also when its payer could not pay it again),
    /// and refused as expired if the pool forgot the id before admission, never admitted.
    #[test]
    fn a_replay_of_a_committed_ciphertext_skips_the_check_and_is_never_admitted() {
        use crate::pool::PoolConfig;
        use veil_primitives::{Amount, ChainId, Eon, PublicKeyBytes, RollupId, Slot, TxMeta};
        let committee = veil_crypto::dev::DevCommittee::new(1, 0, 3);
        let meta = TxMeta {
            chain_id: ChainId(1),
            eon: Eon(1),
            rollup: RollupId(1),
            fee_payer: PublicKeyBytes([4; 32]),
            max_fee: Amount(10),
            gas_limit: 21_000,
            expiry_slot: Slot(20),
            bundle: None,
        };
        let ct = committee.pks.encrypt(&meta, b"pay once", &mut veil_crypto::dev::rng(1)).unwrap();
        let body = ct.as_bytes().to_vec();
        let id = veil_crypto::tx_id(&body);
        let mut config = PoolConfig::new(ChainId(1));
        config.fee_accounts = true;
        let mut p = Pool::new(config, Slot(10), &[Eon(1)]);
        p.credit_fee(meta.fee_payer, Amount(10));
        let first = replayed(&body, SignatureBytes([0; 64])).unwrap();
        assert_eq!((first.id, first.meta), (id, meta));
        p.admit_tx(first).unwrap();
        let _ = p.remove_committed(&[id]);
        p.settle_fee(&meta.fee_payer, Amount(10), Amount::ZERO);
        assert!(p.resubmission(&id, SignatureBytes([0; 64])).is_none(), "not pending");
        assert!(p.is_spent(&id));
        assert_eq!(
            p.check_funded(&meta).unwrap_err().code,
            ErrorCode::InsufficientBalance,
            "the payer could not pay it again: a check would refuse it"
        );
        let replay = replayed(&body, SignatureBytes([9; 64])).unwrap();
        let t0 = Instant::now();
        let checked = vec![p.recheck_replay(replay.clone())];
        let a = p.admit_checked(checked, false, t0, t0).unwrap();
        assert!(a.duplicate && a.ids == vec![id] && a.inserted.is_empty());
        assert_eq!(p.stats().replays, 1);
        // Forgotten before admission: refused, not admitted unchecked.
        let _ = p.on_slot(Slot(21));
        assert_eq!(p.recheck_replay(replay).unwrap_err().code, ErrorCode::Expired);
        assert!(p.is_empty());
        // Bytes that do not decode are not a replay: they go to the check.
        assert!(replayed(b"not a ciphertext", SignatureBytes([0; 64])).is_none());
    }

    #[test]
    fn deadline_defaults_when_zero() {
        let c = AdmissionConfig::default();
        let t0 = Instant::now();
        assert_eq!(c.deadline(t0, 0), t0 + DEFAULT_DEADLINE);
        assert_eq!(c.deadline(t0, 250), t0 + Duration::from_millis(250));
    }
}
