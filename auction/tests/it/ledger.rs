//! Property test of the collateral ledger: after any sequence of bridge deposits (repeats
//! included), withdrawals, won slots settled or abandoned and releases at slot boundaries,
//! every builder's balance is exactly what its ledger entries add up to, and its available
//! collateral is the balance minus what is locked and pending.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use veil_auction::{
    public_key, Auction, AuctionConfig, Bid, LedgerEntry, RollupBlock, WithdrawalRequest,
};
use veil_primitives::{
    AccountKind, Amount, DepositId, DepositNotice, PublicKeyBytes, RollupId, Slot, TxId, TxMeta,
};

use crate::{key, rollup_config, CHAIN};

#[derive(Debug, Clone)]
enum Op {
    /// Builder, deposit id, amount (a used id with the same amount is a repeat).
    Deposit(u8, u8, u128),
    /// Builder, amount.
    Withdraw(u8, u128),
    /// Builder, bid amount, settle (true) or abandon (false). A slot opens either way.
    Slot(u8, u128, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..2, 0u8..6, 1u128..1_000).prop_map(|(b, id, a)| Op::Deposit(b, id, a)),
        (0u8..2, 1u128..800).prop_map(|(b, a)| Op::Withdraw(b, a)),
        (0u8..2, 0u128..500, any::<bool>()).prop_map(|(b, a, s)| Op::Slot(b, a, s)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn balances_are_the_sum_of_the_ledger(ops in proptest::collection::vec(op(), 1..40)) {
        let bridge = key(0xb7);
        let builders = [key(0x21), key(0x22)];
        let mut auction = Auction::new(AuctionConfig {
            chain_id: CHAIN,
            withdrawal_delay_slots: 2,
            ..AuctionConfig::default()
        });
        auction.set_bridge_key(Some(public_key(&bridge)));
        auction.register_genesis_rollup(RollupId(0), PublicKeyBytes(public_key(&key(1)).0), rollup_config(0, 1_000_000)).unwrap();
        let mut entries: Vec<LedgerEntry> = Vec::new();
        let mut nonces = [0u64; 2];
        let mut slot = 0u64;
        let pool: HashMap<TxId, TxMeta> = HashMap::new();
        for op in ops {
            match op {
                Op::Deposit(b, id, amount) => {
                    let notice = DepositNotice {
                        chain_id: CHAIN,
                        bridge: public_key(&bridge),
                        deposit_id: DepositId([id; 32]),
                        kind: AccountKind::Builder,
                        account: public_key(&builders[usize::from(b)]),
                        amount: Amount(amount),
                    }
                    .sign(&bridge);
                    if let Ok(credit) = auction.credit_deposit(&notice) {
                        if !credit.repeat {
                            entries.push(credit.entry);
                        }
                    }
                }
                Op::Withdraw(b, amount) => {
                    let i = usize::from(b);
                    let request = WithdrawalRequest {
                        chain_id: CHAIN,
                        builder: public_key(&builders[i]),
                        amount: Amount(amount),
                        nonce: nonces[i] + 1,
                    }
                    .sign(&builders[i]);
                    if let Ok(entry) = auction.request_withdrawal(&request, Slot(slot)) {
                        nonces[i] += 1;
                        entries.push(entry);
                    }
                }
                Op::Slot(b, amount, settle) => {
                    entries.extend(auction.release_withdrawals(Slot(slot)));
                    auction.open_slot(Slot(slot), 100).unwrap();
                    let bid = Bid {
                        chain_id: CHAIN,
                        slot: Slot(slot),
                        builder: public_key(&builders[usize::from(b)]),
                        sequence: 1,
                        amount: Amount(amount),
                        blocks: vec![RollupBlock { rollup: RollupId(0), ciphertexts: vec![], plaintext: vec![] }],
                    }
                    .sign(&builders[usize::from(b)]);
                    let _ = auction.submit_bid(bid, &pool, 50);
                    auction.close_slot(Slot(slot), 100, &[]).unwrap();
                    if settle {
                        entries.extend(auction.settle(Slot(slot)).unwrap());
                    } else {
                        auction.abandon(Slot(slot)).unwrap();
                    }
                    slot += 1;
                }
            }
        }
        let mut sums: BTreeMap<PublicKeyBytes, i128> = BTreeMap::new();
        for e in &entries {
            let (who, delta) = match e {
                LedgerEntry::Deposit { builder, amount } => (*builder, amount.0 as i128),
                LedgerEntry::Withdrawal { builder, amount } | LedgerEntry::Debit { builder, amount, .. } => {
                    (*builder, -(amount.0 as i128))
                }
                _ => continue,
            };
            *sums.entry(who).or_default() += delta;
        }
        for b in &builders {
            let pk = public_key(b);
            let Some(account) = auction.builder(&pk) else {
                prop_assert!(!sums.contains_key(&pk));
                continue;
            };
            prop_assert_eq!(account.balance().0 as i128, sums.get(&pk).copied().unwrap_or(0));
            let pending: u128 = account.withdrawals().map(|(_, a)| a.0).sum();
            prop_assert_eq!(
                account.available().0,
                account.balance().0 - account.unsettled().0 - pending
            );
            prop_assert_eq!(account.unsettled(), Amount::ZERO, "every slot settled or abandoned");
        }
    }
}
