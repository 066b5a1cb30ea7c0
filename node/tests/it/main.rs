//! The node's integration tests, one binary: the ingress service over real QUIC on 127.0.0.1,
//! the SDK against it, inclusion receipts, and the `veil` binary as real processes.

mod cluster;
mod dev_decrypt;
mod fees;
mod http;
mod ingress;
mod process;
mod receipts;
mod refbuilder;
mod registry;
mod sdk;

/// Test fee payers: payer `n` is the ed25519 key with secret `[n; 32]`. Every ciphertext a
/// test submits is signed by its payer, and every test node funds all 256 at genesis (a
/// sequencer admits a transaction only if its payer's fee account holds its max fee).
pub(crate) mod payers {
    use std::collections::HashMap;
    use std::sync::OnceLock;

    use bytes::Bytes;
    use ed25519_dalek::SigningKey;
    use veil_auction::Auction;
    use veil_crypto::Ciphertext;
    use veil_primitives::signed::public_key;
    use veil_primitives::{Amount, ChainId, PublicKeyBytes};
    use veil_wire::ingress::SignedCiphertext;

    /// What each test payer holds at genesis.
    pub(crate) const FUNDS: Amount = Amount(1_000_000_000_000);

    /// Payer `n`'s secret key.
    pub(crate) fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    /// Payer `n`'s public key, the `fee_payer` of its transactions.
    pub(crate) fn public(n: u8) -> PublicKeyBytes {
        table()[n as usize].1
    }

    fn table() -> &'static Vec<(SigningKey, PublicKeyBytes)> {
        static TABLE: OnceLock<Vec<(SigningKey, PublicKeyBytes)>> = OnceLock::new();
        TABLE.get_or_init(|| {
            (0..=255u8)
                .map(|n| {
                    let k = key(n);
                    let p = public_key(&k);
                    (k, p)
                })
                .collect()
        })
    }

    /// The secret key of the test payer whose public key is `payer`.
    ///
    /// # Panics
    /// If `payer` is not a test payer.
    pub(crate) fn key_of(payer: &PublicKeyBytes) -> SigningKey {
        static BY_PUBLIC: OnceLock<HashMap<PublicKeyBytes, u8>> = OnceLock::new();
        let n = BY_PUBLIC
            .get_or_init(|| table().iter().enumerate().map(|(n, (_, p))| (*p, n as u8)).collect())
            .get(payer)
            .copied()
            .expect("a test payer");
        key(n)
    }

    /// `ct` signed by the fee payer it names.
    pub(crate) fn signed(ct: &Ciphertext) -> SignedCiphertext {
        let key = key_of(&ct.ad().fee_payer);
        SignedCiphertext::sign(Bytes::copy_from_slice(ct.as_bytes()), ct.ad().chain_id, &key)
    }

    /// Arbitrary bytes (a tampered or malformed ciphertext) signed by payer `n` for `chain`.
    pub(crate) fn signed_raw(bytes: Bytes, chain: ChainId, n: u8) -> SignedCiphertext {
        SignedCiphertext::sign(bytes, chain, &key(n))
    }

    /// Funds every test payer at genesis.
    pub(crate) fn fund(auction: &mut Auction) {
        for (_, p) in table() {
            auction.deposit_fee(*p, FUNDS).expect("a valid test payer");
        }
    }
}
