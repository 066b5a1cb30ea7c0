//! [`DepositNotice`]: money that arrived on the settlement layer, credited to a Veil account.
//!
//! Veil does not run the settlement layer. A bridge (a watcher of the settlement layer's
//! deposit contract) signs one notice per settlement-layer transfer, and the node credits it
//! only under the bridge key it is configured with. The notice names the transfer
//! ([`DepositNotice::deposit_id`]), which makes crediting idempotent: the same notice again is
//! answered as the first time and never credited twice, and a different notice reusing an id
//! is refused.
//!
//! The notice is shared by every kind of account money can be deposited to
//! ([`AccountKind`]): builder collateral today, user fee accounts later. It lives here so that
//! the auction (collateral) and the mempool (fee accounts) read the same type.
//!
//! Signing bytes (domain `veil/deposit/v1`, see [`crate::signed`]): the bridge key, the
//! deposit id, the account kind (one byte: 0 builder, 1 fee payer), the account, the amount.

use serde::{Deserialize, Serialize};

use crate::encoding::Encoder;
use crate::signed::{Signed, SignedMessage};
use crate::{byte_id, Amount, ChainId, PublicKeyBytes};

byte_id!(
    /// A settlement-layer transfer's id (for example its transaction hash and log index,
    /// hashed): one deposit notice per id, ever.
    DepositId,
    32
);

/// Which kind of account a deposit credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// A builder's collateral (what its bids are checked against).
    Builder,
    /// A user's fee account (what admission reserves `max_fee` against).
    FeePayer,
}

impl AccountKind {
    /// The tag byte in the signing bytes.
    #[must_use]
    pub const fn tag(self) -> u8 {
        match self {
            AccountKind::Builder => 0,
            AccountKind::FeePayer => 1,
        }
    }

    /// The JSON (and CLI) name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            AccountKind::Builder => "builder",
            AccountKind::FeePayer => "fee_payer",
        }
    }
}

/// A bridge's statement that `amount` arrived on the settlement layer for `account`. See the
/// module docs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepositNotice {
    /// The Veil network.
    pub chain_id: ChainId,
    /// The bridge key that signs the notice; must be the node's configured bridge key.
    pub bridge: PublicKeyBytes,
    /// The settlement-layer transfer.
    pub deposit_id: DepositId,
    /// The kind of account credited.
    pub kind: AccountKind,
    /// The account credited (an ed25519 key).
    pub account: PublicKeyBytes,
    /// How much.
    pub amount: Amount,
}

impl SignedMessage for DepositNotice {
    const DOMAIN: &'static str = "veil/deposit/v1";

    fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// Bridge, deposit id, kind tag, account, amount.
    fn encode_body(&self, e: &mut Encoder) {
        e.fixed(&self.bridge.0);
        e.fixed(&self.deposit_id.0);
        e.u8(self.kind.tag());
        e.fixed(&self.account.0);
        e.amount(self.amount);
    }
}

impl DepositNotice {
    /// Signs the notice with the bridge's key.
    #[must_use]
    pub fn sign(self, bridge: &ed25519_dalek::SigningKey) -> SignedDepositNotice {
        Signed::sign(self, bridge)
    }
}

/// A deposit notice with the bridge's signature (domain `veil/deposit/v1`).
pub type SignedDepositNotice = Signed<DepositNotice>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signed::public_key;

    #[test]
    fn notices_sign_round_trip_and_bind_every_field() {
        let bridge = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let notice = DepositNotice {
            chain_id: ChainId(1),
            bridge: public_key(&bridge),
            deposit_id: DepositId([1; 32]),
            kind: AccountKind::Builder,
            account: PublicKeyBytes([2; 32]),
            amount: Amount(1_000),
        };
        let signed = notice.clone().sign(&bridge);
        signed.verify(&public_key(&bridge)).unwrap();
        let json = serde_json::to_string(&signed).unwrap();
        assert!(json.contains("\"kind\":\"builder\"") && json.contains("\"amount\":\"1000\""));
        assert_eq!(serde_json::from_str::<SignedDepositNotice>(&json).unwrap(), signed);
        let mut other = signed.clone();
        other.message.kind = AccountKind::FeePayer;
        assert!(other.verify(&public_key(&bridge)).is_err());
        let mut other = signed;
        other.message.amount = Amount(1_001);
        assert!(other.verify(&public_key(&bridge)).is_err());
    }
}
