//! Restore after a restart: replaying each slot's last persisted step onto the genesis state
//! gives exactly the uninterrupted auction, at every cut point, and inconsistent records are
//! refused with typed errors.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use veil_auction::{
    public_key, Auction, AuctionError, Bid, LedgerEntry, Outcome, PaymentRule, RollupChange,
    RollupUpdate, SignedBid, TxMeta,
};
use veil_primitives::{Amount, ChainId, PublicKeyBytes, RollupId, Slot, TxId};

use crate::{bid, genesis, key, rollup_config, CHAIN};

/// The builders of [`genesis`], with their deposit.
const BUILDERS: std::ops::Range<u8> = 10..14;
const DEPOSIT: u128 = 10_000;

/// What becomes of a closed slot's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Settle,
    Abandon,
    /// Still unsettled at the end of the run.
    Pending,
}

/// One slot of a run: bids as (builder, rollup mask over 0..4, amount over the reserves), the
/// fate of its outcome and how many slots after its close that fate comes.
#[derive(Debug, Clone)]
struct SlotPlan {
    bids: Vec<(u8, u8, u128)>,
    fate: Fate,
    delay: usize,
}

fn slot_plan() -> impl Strategy<Value = SlotPlan> {
    (
        proptest::collection::vec((BUILDERS, 1u8..16, 0u128..6_000), 0..6),
        prop_oneof![Just(Fate::Settle), Just(Fate::Abandon), Just(Fate::Pending)],
        0usize..3,
    )
        .prop_map(|(bids, fate, delay)| SlotPlan { bids, fate, delay })
}

/// One input of the uninterrupted run.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// Open slot `i + 1`, submit its bids, close it.
    Close(usize),
    Settle(Slot),
    Abandon(Slot),
}

/// The closes in slot order, each slot's fate `delay` slots after its close (never, if that
/// is past the last slot).
fn ops(plan: &[SlotPlan]) -> Vec<Op> {
    let mut out = Vec::new();
    for i in 0..plan.len() {
        out.push(Op::Close(i));
        for (j, p) in plan.iter().enumerate().take(i + 1) {
            if j + p.delay == i {
                match p.fate {
                    Fate::Settle => out.push(Op::Settle(slot_of(j))),
                    Fate::Abandon => out.push(Op::Abandon(slot_of(j))),
                    Fate::Pending => {}
                }
            }
        }
    }
    out
}

fn slot_of(i: usize) -> Slot {
    Slot(i as u64 + 1)
}

fn deadline(slot: Slot) -> u64 {
    slot.0 * 1_000
}

/// What the node persists per slot, as the sequencer does: the outcome at close, then how the
/// slot ended.
#[derive(Debug, Clone)]
enum Record {
    Closed(Box<Outcome>),
    Settled(Slot),
    Abandoned(Slot),
}

/// What an input returned, to compare runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Observed {
    Closed { verdicts: Vec<Result<(), AuctionError>>, outcome: Outcome },
    Settled(Vec<LedgerEntry>),
    Abandoned(Outcome),
}

/// Every builder's account and the unsettled outcomes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    /// Per builder: balance, unsettled, available, pending withdrawals.
    accounts: Vec<(Amount, Amount, Amount, Amount)>,
    unsettled: Vec<Outcome>,
    earliest_effective: Slot,
}

fn state(a: &Auction) -> State {
    State {
        accounts: BUILDERS
            .map(|b| {
                let acc = a.builder(&public_key(&key(b))).unwrap();
                (acc.balance(), acc.unsettled(), acc.available(), acc.pending_withdrawals())
            })
            .collect(),
        unsettled: a.unsettled_outcomes().cloned().collect(),
        earliest_effective: a.earliest_effective_slot(),
    }
}

/// The signed bids of every slot, signed once.
fn signed_bids(plan: &[SlotPlan]) -> Vec<Vec<SignedBid>> {
    plan.iter()
        .enumerate()
        .map(|(i, p)| {
            p.bids
                .iter()
                .map(|&(b, mask, extra)| {
                    let rollups: Vec<u32> = (0..4).filter(|r| mask >> r & 1 == 1).collect();
                    let amount = 100 * rollups.len() as u128 + extra;
                    Bid { slot: slot_of(i), ..bid(b, &rollups, amount, 1) }.sign(&key(b))
                })
                .collect()
        })
        .collect()
}

/// Applies one input; returns the record the node would persist and what the input returned.
fn apply(
    a: &mut Auction,
    pool: &HashMap<TxId, TxMeta>,
    bids: &[Vec<SignedBid>],
    op: Op,
) -> (Record, Observed) {
    match op {
        Op::Close(i) => {
            let slot = slot_of(i);
            a.open_slot(slot, deadline(slot)).unwrap();
            let verdicts = bids[i]
                .iter()
                .map(|b| a.submit_bid(b.clone(), pool, deadline(slot) - 1).map(|_| ()))
                .collect();
            let outcome = a.close_slot(slot, deadline(slot), &[]).unwrap();
            (Record::Closed(Box::new(outcome.clone())), Observed::Closed { verdicts, outcome })
        }
        Op::Settle(slot) => (Record::Settled(slot), Observed::Settled(a.settle(slot).unwrap())),
        Op::Abandon(slot) => {
            (Record::Abandoned(slot), Observed::Abandoned(a.abandon(slot).unwrap()))
        }
    }
}

/// The genesis auction with every slot's last persisted step restored, in slot order.
fn replay(rule: PaymentRule, log: &[Record]) -> Auction {
    let (mut a, _) = genesis(rule);
    let mut outcomes: BTreeMap<Slot, &Outcome> = BTreeMap::new();
    let mut latest: BTreeMap<Slot, &Record> = BTreeMap::new();
    for r in log {
        let slot = match r {
            Record::Closed(o) => {
                outcomes.insert(o.slot, o);
                o.slot
            }
            Record::Settled(s) | Record::Abandoned(s) => *s,
        };
        latest.insert(slot, r);
    }
    for (slot, r) in latest {
        match r {
            Record::Closed(o) => a.restore_closed((**o).clone()).unwrap(),
            Record::Settled(_) => a.restore_settled(outcomes[&slot]).unwrap(),
            Record::Abandoned(_) => a.restore_abandoned(slot).unwrap(),
        }
    }
    a
}

/// Ciphertexts that do not expire during a run.
fn long_lived(mut pool: HashMap<TxId, TxMeta>) -> HashMap<TxId, TxMeta> {
    for m in pool.values_mut() {
        m.expiry_slot = Slot(1_000);
    }
    pool
}

/// Balances are the deposits minus the settled debits, to the unit, and the settled payouts
/// equal the settled debits.
fn check_money(a: &Auction, observed: &[Observed]) {
    let mut debits: BTreeMap<PublicKeyBytes, u128> = BTreeMap::new();
    let mut payouts = 0u128;
    for o in observed {
        if let Observed::Settled(ledger) = o {
            for e in ledger {
                match e {
                    LedgerEntry::Debit { builder, amount, .. } => {
                        *debits.entry(*builder).or_default() += amount.0;
                    }
                    LedgerEntry::Payout { amount, .. } => payouts += amount.0,
                    _ => {}
                }
            }
        }
    }
    assert_eq!(payouts, debits.values().sum::<u128>(), "payouts equal debits");
    for b in BUILDERS {
        let pk = public_key(&key(b));
        let debited = debits.get(&pk).copied().unwrap_or(0);
        assert_eq!(a.builder(&pk).unwrap().balance().0, DEPOSIT - debited);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// At every cut point of a random run of closes, settlements and abandons, the genesis
    /// auction plus the records written so far equals the uninterrupted auction, and both
    /// then answer every later input alike.
    #[test]
    fn replay_from_records_equals_the_uninterrupted_auction_at_every_cut(
        plan in proptest::collection::vec(slot_plan(), 1..8),
        vcg in any::<bool>(),
    ) {
        let rule = if vcg { PaymentRule::Vcg } else { PaymentRule::FirstPrice };
        let (mut live, pool) = genesis(rule);
        let pool = long_lived(pool);
        let bids = signed_bids(&plan);
        let ops = ops(&plan);
        let mut log = Vec::new();
        let mut observed = Vec::new();
        let mut states = vec![state(&live)];
        for &op in &ops {
            let (record, seen) = apply(&mut live, &pool, &bids, op);
            log.push(record);
            observed.push(seen);
            states.push(state(&live));
        }
        check_money(&live, &observed);
        for cut in 0..=ops.len() {
            let mut restored = replay(rule, &log[..cut]);
            prop_assert_eq!(&state(&restored), &states[cut], "state differs at cut {}", cut);
            for (k, &op) in ops.iter().enumerate().skip(cut) {
                let (_, seen) = apply(&mut restored, &pool, &bids, op);
                prop_assert_eq!(&seen, &observed[k], "input {} answered differently after cut {}", k, cut);
                prop_assert_eq!(&state(&restored), &states[k + 1]);
            }
        }
    }
}

/// Slot 1 closed with builder 10 winning 9,000 on rollup 0, and the genesis auction.
fn big_win() -> (Outcome, Auction) {
    let (mut a, pool) = genesis(PaymentRule::FirstPrice);
    a.open_slot(Slot(1), 1_000).unwrap();
    a.submit_bid(bid(10, &[0], 9_000, 1).sign(&key(10)), &pool, 10).unwrap();
    let outcome = a.close_slot(Slot(1), 1_000, &[]).unwrap();
    assert_eq!(outcome.winners[0].payment, Amount(9_000));
    (outcome, genesis(PaymentRule::FirstPrice).0)
}

fn at_slot(o: &Outcome, slot: u64) -> Outcome {
    Outcome { slot: Slot(slot), ..o.clone() }
}

#[test]
fn a_restored_closed_slot_settles_or_abandons_as_before_the_restart() {
    let (outcome, mut a) = big_win();
    let pk = public_key(&key(10));
    a.restore_closed(outcome.clone()).unwrap();
    let acc = a.builder(&pk).unwrap();
    assert_eq!(
        (acc.balance(), acc.unsettled(), acc.available()),
        (Amount(10_000), Amount(9_000), Amount(1_000))
    );
    assert_eq!(a.unsettled_outcomes().collect::<Vec<_>>(), vec![&outcome]);
    assert_eq!(a.settle(Slot(1)).unwrap(), outcome.ledger);
    let acc = a.builder(&pk).unwrap();
    assert_eq!(
        (acc.balance(), acc.unsettled(), acc.available()),
        (Amount(1_000), Amount(0), Amount(1_000))
    );

    let (outcome, mut a) = big_win();
    a.restore_closed(outcome.clone()).unwrap();
    assert_eq!(a.abandon(Slot(1)).unwrap(), outcome);
    assert_eq!(a.builder(&pk).unwrap().available(), Amount(10_000));
    assert_eq!(a.unsettled_outcomes().count(), 0);
}

#[test]
fn restored_slots_are_never_opened_again_nor_reconfigured() {
    let (outcome, mut a) = big_win();
    a.restore_settled(&outcome).unwrap();
    a.restore_abandoned(Slot(3)).unwrap();
    assert_eq!(a.earliest_effective_slot(), Slot(4));
    assert_eq!(
        a.open_slot(Slot(3), 3_000),
        Err(AuctionError::SlotOutOfOrder { slot: Slot(3), last: Slot(3) })
    );
    let admin = key(1);
    let update = RollupUpdate {
        chain_id: CHAIN,
        rollup: RollupId(0),
        nonce: 2,
        effective: Slot(3),
        change: RollupChange::Configure(rollup_config(500, 1_000_000)),
    };
    assert_eq!(
        a.apply_rollup_update(&update.clone().sign(&admin)),
        Err(AuctionError::EffectiveSlotTooEarly { effective: Slot(3), earliest: Slot(4) })
    );
    a.apply_rollup_update(&RollupUpdate { effective: Slot(4), ..update }.sign(&admin)).unwrap();
    a.open_slot(Slot(4), 4_000).unwrap();
    assert_eq!(a.book(Slot(4)).unwrap().terms()[&RollupId(0)].reserve, Amount(500));
}

#[test]
fn restore_refuses_records_that_do_not_fit_and_changes_nothing() {
    let (outcome, mut a) = big_win();
    let pk = public_key(&key(10));
    let before = state(&a);

    let mut foreign = outcome.clone();
    foreign.chain_id = ChainId(99);
    assert_eq!(
        a.restore_closed(foreign.clone()),
        Err(AuctionError::WrongChain { expected: CHAIN, got: ChainId(99) })
    );
    assert_eq!(
        a.restore_settled(&foreign),
        Err(AuctionError::WrongChain { expected: CHAIN, got: ChainId(99) })
    );

    let mut stranger = outcome.clone();
    let unknown = public_key(&key(20));
    stranger.winners[0].builder = unknown;
    assert_eq!(a.restore_closed(stranger.clone()), Err(AuctionError::UnknownBuilder(unknown)));
    assert_eq!(a.restore_settled(&stranger), Err(AuctionError::UnknownBuilder(unknown)));
    assert_eq!(state(&a), before);

    // 9,000 debited at slot 1 leaves 1,000: a second 9,000 payment does not fit.
    a.restore_settled(&outcome).unwrap();
    let after_one = state(&a);
    let short = Err(AuctionError::InsufficientCollateral {
        available: Amount(1_000),
        required: Amount(9_000),
    });
    assert_eq!(a.restore_closed(at_slot(&outcome, 2)), short);
    assert_eq!(a.restore_settled(&at_slot(&outcome, 2)), short);
    assert_eq!(state(&a), after_one, "a refused restore changes nothing");
    assert_eq!(a.builder(&pk).unwrap().balance(), Amount(1_000));

    // Twice, or out of order.
    assert_eq!(
        a.restore_closed(outcome.clone()),
        Err(AuctionError::SlotOutOfOrder { slot: Slot(1), last: Slot(1) })
    );
    assert_eq!(
        a.restore_settled(&outcome),
        Err(AuctionError::SlotOutOfOrder { slot: Slot(1), last: Slot(1) })
    );
    assert_eq!(
        a.restore_abandoned(Slot(1)),
        Err(AuctionError::SlotOutOfOrder { slot: Slot(1), last: Slot(1) })
    );
    assert_eq!(state(&a), after_one);
    assert_eq!(
        AuctionError::SlotOutOfOrder { slot: Slot(1), last: Slot(1) }.code().name(),
        "SLOT_OUT_OF_ORDER"
    );
}
