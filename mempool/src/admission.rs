//! The admission rules the shell applies around the pool, with time passed in.
//!
//! A submission goes through these steps; the shell only moves bytes, timers and permits
//! between them, and every rule lives here or in [`crate::pool`]:
//!
//! 1. [`TokenBucket::try_take`]: the connection's submission rate ([`ErrorCode::ConnectionQuota`]).
//! 2. [`Pool::precheck`]: the part count and every ciphertext's size, from the frame alone,
//!    before any expensive work.
//! 3. [`Pool::resubmission`]: bytes identical to a pending ciphertext (same
//!    [`veil_crypto::tx_id`]) are that ciphertext, answered without the expensive check.
//! 4. The cryptographic check ([`crate::validate::Validator`]), off the reactor, with
//!    randomness passed in.
//! 5. [`Pool::admit_checked`]: the request's deadline against `now`, the validator's verdicts,
//!    then the pool's own rules (duplicates, bundle shape, chain, eon, expiry, fee, quotas,
//!    capacity and eviction).

use std::time::{Duration, Instant};

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
    /// passed every other check when they were first admitted. A still-pending resubmission
    /// passes unchanged (it will be answered as a duplicate).
    ///
    /// # Errors
    /// [`ErrorCode::InvalidPublicKey`] or [`ErrorCode::BadSignature`].
    pub fn recheck_resubmission(&self, c: Candidate) -> Result<Candidate, Rejection> {
        if self.get(&c.id).is_some() {
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
        let mut p = Pool::new(PoolConfig::new(ChainId(7)), Slot(10), &[Eon(1)]);
        p.admit_tx(c.clone()).unwrap();
        let junk = p.resubmission(&id, SignatureBytes([9; 64])).unwrap();
        assert!(p.recheck_resubmission(junk.clone()).is_ok(), "still pending: a duplicate");
        let _ = p.remove_committed(&[id]);
        let r = p.recheck_resubmission(junk).unwrap_err();
        assert_eq!(r.code, ErrorCode::BadSignature);
        let honest = Candidate { payer_signature: good, ..c };
        assert!(p.recheck_resubmission(honest).is_ok());
    }

    #[test]
    fn deadline_defaults_when_zero() {
        let c = AdmissionConfig::default();
        let t0 = Instant::now();
        assert_eq!(c.deadline(t0, 0), t0 + DEFAULT_DEADLINE);
        assert_eq!(c.deadline(t0, 250), t0 + Duration::from_millis(250));
    }
}
