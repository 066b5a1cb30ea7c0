//! The real-encryption path: transactions encrypted to a [`DevCommittee`] with veil-crypto,
//! and committed blocks decrypted from the keypers' signed share batches before they execute.
//!
//! The fast path keeps the plaintext intents beside placeholder bodies; this path proves, on a
//! small run, that the fast path's shortcut changes nothing: every committed ciphertext
//! decrypts to exactly the intent the fast path executes (the market checks it and fails
//! otherwise), and the per-slot metrics match.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail};
use veil_crypto::dev::{DevCommittee, SeededRng};
use veil_crypto::{decrypt_block, Ciphertext, DecryptOutcome, ShareBatch};
use veil_primitives::{Slot, TxId, TxMeta};

use crate::amm::Side;
use crate::market::{Intent, CHAIN, EON};

/// A dev committee, its encryption randomness and the ciphertexts it has produced.
pub struct RealCrypto {
    committee: DevCommittee,
    rng: SeededRng,
    cts: BTreeMap<TxId, Ciphertext>,
}

impl RealCrypto {
    /// A committee of `n` keypers of which `t + 1` decrypt, all derived from `seed`.
    ///
    /// # Errors
    /// If veil-crypto refuses the parameters.
    pub fn new(n: u16, t: u16, seed: u64) -> anyhow::Result<RealCrypto> {
        let committee =
            DevCommittee::from_seed(CHAIN, EON, n, t, seed).map_err(|e| anyhow!("{e}"))?;
        Ok(RealCrypto {
            committee,
            rng: veil_crypto::dev::rng(seed ^ 0x5eed),
            cts: BTreeMap::new(),
        })
    }

    /// Encrypts `payload` with `meta` as associated data.
    ///
    /// # Errors
    /// If veil-crypto refuses the metadata or the payload.
    pub fn encrypt(&mut self, meta: &TxMeta, payload: &[u8]) -> anyhow::Result<Ciphertext> {
        self.committee.pks.encrypt(meta, payload, &mut self.rng).map_err(|e| anyhow!("{e}"))
    }

    /// Keeps a ciphertext until its block is decrypted.
    pub fn remember(&mut self, ct: Ciphertext) {
        self.cts.insert(ct.id(), ct);
    }

    /// Decrypts the committed ciphertexts `ids` of `slot` as the keypers and the combiner
    /// would: one signed, pre-scaled share batch per responder, verified, then combined.
    ///
    /// # Errors
    /// If a ciphertext is unknown, a batch fails to verify, or a payload does not decrypt.
    pub fn decrypt(
        &mut self,
        slot: Slot,
        ids: &[TxId],
    ) -> anyhow::Result<BTreeMap<TxId, (u32, Side, f64, f64)>> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let cts: Vec<&Ciphertext> = ids
            .iter()
            .map(|id| self.cts.get(id).ok_or_else(|| anyhow!("no ciphertext {id}")))
            .collect::<anyhow::Result<_>>()?;
        let pks = &self.committee.pks;
        let responders = pks.default_responders();
        let mut batches = Vec::new();
        for i in responders.members() {
            let pos = usize::from(i.get()) - 1;
            let signed = ShareBatch::create(
                &self.committee.shares[pos],
                &self.committee.identities[pos],
                slot,
                &cts,
                Some(&responders),
            )
            .map_err(|e| anyhow!("{e}"))?;
            batches.push(pks.verify_share_batch(&signed).map_err(|e| anyhow!("{e}"))?);
        }
        let block =
            decrypt_block(pks, slot, &cts, &batches, &mut self.rng).map_err(|e| anyhow!("{e}"))?;
        let mut out = BTreeMap::new();
        for (id, o) in ids.iter().zip(block.outcomes) {
            let DecryptOutcome::Plaintext(bytes) = o else {
                bail!("ciphertext {id} did not decrypt");
            };
            let trade =
                Intent::parse_trade(&bytes).ok_or_else(|| anyhow!("bad payload in {id}"))?;
            out.insert(*id, trade);
        }
        for id in ids {
            self.cts.remove(id);
        }
        Ok(out)
    }
}
