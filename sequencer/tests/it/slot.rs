//! The slot machine driven in-process with real keyper machines and the real crypto and
//! auction: a full slot, a byzantine keyper, silent keypers, in-flight ciphertexts, a bundle
//! with an undecryptable part, and restarts ("kill -9" right after any record of a slot is
//! durable) checked against the uninterrupted run: the same commitments, the same ledger and
//! the same collateral, to the unit.

use std::collections::HashMap;

use blstrs::G1Projective;
use ed25519_dalek::SigningKey;
use group::Group;
use veil_auction::{
    public_key, Auction, AuctionConfig, AuctionError, Bid, LedgerEntry, Outcome, RollupBlock,
};
use veil_crypto::testing::{prove_arbitrary, rng, TestCommittee};
use veil_crypto::{Ciphertext, ShareBatch, SignedShareBatch};
use veil_primitives::{
    Amount, BundleId, BundleRef, CiphertextIndex, ErrorCode, RollupId, Signed, Slot, TxId, TxMeta,
};
use veil_sequencer::slot::{PoolView, Publication, SlotClock, SlotEvent, SlotRecord, TxResult};
use veil_sequencer::{
    Finalizer, KeyFinalizer, KeyperEvent, KeyperMachine, KeyperRequest, SequencerError,
    SignedCommitment, SlotMachine, SlotState,
};

use crate::{committee, keyper, sequencer};

#[derive(Default)]
struct TestPool(HashMap<TxId, (TxMeta, Vec<u8>)>);

impl TestPool {
    fn add(&mut self, ct: &Ciphertext) {
        self.0.insert(ct.id(), (*ct.ad(), ct.as_bytes().to_vec()));
    }

    /// Drops what was published, as the ingress does once a block is decrypted.
    fn remove_published(&mut self, published: &[Publication]) {
        for p in published {
            if let Publication::Decrypted(s) = p {
                for t in s.blocks.iter().flat_map(|b| &b.txs) {
                    self.0.remove(&t.id);
                }
            }
        }
    }
}

impl CiphertextIndex for TestPool {
    fn lookup(&self, id: &TxId) -> Option<TxMeta> {
        self.0.get(id).map(|(m, _)| *m)
    }
}

impl PoolView for TestPool {
    fn pending(&self) -> Vec<(TxId, TxMeta)> {
        let mut v: Vec<(TxId, TxMeta)> = self.0.iter().map(|(id, (m, _))| (*id, *m)).collect();
        v.sort_by_key(|(id, _)| *id);
        v
    }
    fn body(&self, id: &TxId) -> Option<Vec<u8>> {
        self.0.get(id).map(|(_, b)| b.clone())
    }
}

/// How each keyper behaves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Honest,
    Silent,
    WrongShares,
}

struct Net {
    machine: SlotMachine,
    keypers: Vec<(KeyperMachine, Behaviour)>,
    finalizer: KeyFinalizer,
    identities: Vec<SigningKey>,
    disk: Vec<SlotRecord>,
    published: Vec<Publication>,
    signs: usize,
    /// Every commitment the finalizer signed.
    signed: Vec<SignedCommitment>,
    /// The auction's state just after the machine took the record a run was cut at.
    at_cut: Option<Snapshot>,
}

fn builder() -> SigningKey {
    SigningKey::from_bytes(&[2; 32])
}

fn builder_b() -> SigningKey {
    SigningKey::from_bytes(&[3; 32])
}

/// The auction a node builds at start: rollups 0, 1 and 2 (reserve 10) and the deposits.
fn genesis(c: &TestCommittee, deposits: &[(&SigningKey, u128)]) -> Auction {
    let chain = c.pks.chain_id();
    let mut auction = Auction::new(AuctionConfig { chain_id: chain, ..AuctionConfig::default() });
    crate::register_rollups(&mut auction, &[(0, 10), (1, 10), (2, 10)], Slot(0));
    for (key, amount) in deposits {
        auction.deposit(public_key(key), Amount(*amount)).unwrap();
    }
    auction
}

fn net(c: &TestCommittee, behaviours: [Behaviour; 4]) -> Net {
    net_with(c, behaviours, genesis(c, &[(&builder(), 10_000)]))
}

fn net_with(c: &TestCommittee, behaviours: [Behaviour; 4], auction: Auction) -> Net {
    let clock = SlotClock::new(0);
    let machine = SlotMachine::new(clock, c.pks.clone(), auction, Slot(0));
    let keypers = (0..4).map(|i| (keyper(c, i), behaviours[i])).collect();
    Net {
        machine,
        keypers,
        finalizer: sequencer(),
        identities: c.identities.clone(),
        disk: Vec::new(),
        published: Vec::new(),
        signs: 0,
        signed: Vec::new(),
        at_cut: None,
    }
}

impl Net {
    /// Admits `cts` to a fresh pool and has every keyper validate them.
    fn admit(&mut self, cts: &[&Ciphertext]) -> TestPool {
        let mut pool = TestPool::default();
        for ct in cts {
            pool.add(ct);
        }
        self.validate(cts);
        pool
    }

    fn validate(&mut self, cts: &[&Ciphertext]) {
        let bodies: Vec<&[u8]> = cts.iter().map(|c| c.as_bytes()).collect();
        for (k, _) in &mut self.keypers {
            let _ = k.handle_ciphertexts(&bodies, &mut rng(1));
        }
    }

    /// Runs the shell loop until nothing is left to do.
    fn run(&mut self, now_ms: u64) {
        self.run_cut(now_ms, None, false);
    }

    /// Runs the shell loop. At the first record `cut` names, either crashes (`crash`: the
    /// record is durable, the machine never hears of it; returns true) or notes the auction's
    /// state just after the machine took the record.
    fn run_cut(&mut self, now_ms: u64, cut: Option<(Slot, Cut)>, crash: bool) -> bool {
        while let Some(event) = self.machine.poll_event() {
            match event {
                SlotEvent::Persist { token, record } => {
                    let hit = self.at_cut.is_none()
                        && cut.is_some_and(|(s, k)| record.slot() == s && k.matches(&record));
                    self.disk.push(record);
                    if hit && crash {
                        return true;
                    }
                    self.machine.handle_persisted(token, now_ms);
                    if hit {
                        self.at_cut = Some(snapshot(self.machine.auction()));
                    }
                }
                SlotEvent::Sign(c) => {
                    self.signs += 1;
                    let signed = self.finalizer.finalize(c).unwrap();
                    self.signed.push(signed.clone());
                    self.machine.handle_signed(signed).unwrap();
                }
                SlotEvent::SendToKeypers(request) => {
                    let mut batches: Vec<SignedShareBatch> = Vec::new();
                    for (k, behaviour) in &mut self.keypers {
                        if *behaviour == Behaviour::Silent {
                            continue;
                        }
                        match &request {
                            KeyperRequest::Commitment(signed) => {
                                let _ = k.handle_commitment(signed.clone());
                            }
                            KeyperRequest::Rescale { slot, responders } => {
                                let _ = k.handle_rescale(*slot, responders.clone());
                            }
                        }
                        while let Some(e) = k.poll_event() {
                            match e {
                                KeyperEvent::Persist { token, .. } => k.handle_persisted(token),
                                KeyperEvent::SendShares(mut b) => {
                                    if *behaviour == Behaviour::WrongShares
                                        && b.message.shares.len() > 1
                                    {
                                        let mut m = b.message.clone();
                                        let first = m.shares[0].0;
                                        m.shares[0].0 = m.shares[1].0;
                                        m.shares[1].0 = first;
                                        b = Signed::sign(
                                            m,
                                            &crate::identity_of(&self.identities, k),
                                        );
                                    }
                                    batches.push(b);
                                }
                                KeyperEvent::Equivocation { .. } => panic!("no equivocation"),
                            }
                        }
                    }
                    for b in batches {
                        let _ = self.machine.handle_share_batch(&b, now_ms, &mut rng(3));
                    }
                }
                SlotEvent::Publish(p) => self.published.push(p),
            }
        }
        false
    }

    fn tick(&mut self, now_ms: u64, pool: &TestPool) {
        self.machine.handle_timeout(now_ms, pool, &mut rng(4)).unwrap();
        self.run(now_ms);
    }

    /// "kill -9" and start again: a fresh machine on `auction` (the genesis state) restored
    /// from the records on disk, read back from their JSON as the node reads them.
    fn restart(
        &mut self,
        c: &TestCommittee,
        auction: Auction,
        pool: &TestPool,
    ) -> Result<(), SequencerError> {
        let records = reload(&self.disk);
        let mut machine = SlotMachine::new(SlotClock::new(0), c.pks.clone(), auction, Slot(0));
        machine.restore(records, pool)?;
        self.machine = machine;
        Ok(())
    }

    fn decrypted(&self) -> Vec<&veil_sequencer::PublishedSlot> {
        self.published
            .iter()
            .filter_map(|p| match p {
                Publication::Decrypted(s) => Some(s),
                _ => None,
            })
            .collect()
    }
}

fn encrypt(c: &TestCommittee, rollup: u32, n: u8) -> Ciphertext {
    c.pks.encrypt(&c.ad(rollup, 10), &[n; 32], &mut rng(100 + u64::from(n))).unwrap()
}

fn bid(
    c: &TestCommittee,
    slot: u64,
    blocks: Vec<RollupBlock>,
    amount: u128,
) -> veil_auction::SignedBid {
    bid_by(&builder(), c, slot, blocks, amount)
}

fn bid_by(
    key: &SigningKey,
    c: &TestCommittee,
    slot: u64,
    blocks: Vec<RollupBlock>,
    amount: u128,
) -> veil_auction::SignedBid {
    Bid {
        chain_id: c.pks.chain_id(),
        slot: Slot(slot),
        builder: public_key(key),
        sequence: 1,
        amount: Amount(amount),
        blocks,
    }
    .sign(key)
}

#[test]
fn a_full_slot_commits_releases_decrypts_publishes_and_settles() {
    let c = committee();
    let mut net = net(&c, [Behaviour::Honest; 4]);
    let mut pool = TestPool::default();
    let mine: Vec<Ciphertext> = (1..=3).map(|n| encrypt(&c, 1, n)).collect();
    let other = encrypt(&c, 2, 9);
    for ct in mine.iter().chain([&other]) {
        pool.add(ct);
    }
    let refs: Vec<&Ciphertext> = mine.iter().chain([&other]).collect();
    net.validate(&refs);
    net.tick(0, &pool);
    assert_eq!(net.machine.state(Slot(0)), Some(SlotState::Open));
    let ids: Vec<TxId> = mine.iter().map(Ciphertext::id).collect();
    let blocks =
        vec![RollupBlock { rollup: RollupId(1), ciphertexts: ids.clone(), plaintext: vec![] }];
    net.machine.handle_bid(bid(&c, 0, blocks, 500), &pool, 10).unwrap();
    net.tick(1_000, &pool);
    assert_eq!(net.machine.state(Slot(0)), Some(SlotState::Settled));
    assert_eq!(net.signs, 1);
    let slot = net.decrypted()[0];
    assert_eq!(slot.blocks.len(), 2, "rollup 1 sold, rollup 2 a fallback block");
    let sold = slot.blocks.iter().find(|b| b.rollup == RollupId(1)).unwrap();
    let got: Vec<TxId> = sold.txs.iter().map(|t| t.id).collect();
    assert_eq!(got, ids, "committed order kept");
    for (t, n) in sold.txs.iter().zip(1u8..) {
        assert_eq!(t.result, TxResult::Included(vec![n; 32]));
    }
    let ledger = net
        .published
        .iter()
        .find_map(|p| match p {
            Publication::Settled { ledger, .. } => Some(ledger.clone()),
            _ => None,
        })
        .unwrap();
    let debits: u128 = ledger
        .iter()
        .filter_map(|e| match e {
            LedgerEntry::Debit { amount, .. } => Some(amount.0),
            _ => None,
        })
        .sum();
    let payouts: u128 = ledger
        .iter()
        .filter_map(|e| match e {
            LedgerEntry::Payout { amount, .. } => Some(amount.0),
            _ => None,
        })
        .sum();
    assert_eq!((debits, payouts), (500, 500), "payouts equal the payment, to the unit");
    assert!(!net.machine.is_in_flight(&ids[0]));
}

#[test]
fn a_byzantine_keyper_is_blamed_and_the_slot_still_decrypts() {
    let c = committee();
    // Keyper 2 is in the default responder set {1, 2} and sends wrong shares.
    let mut net =
        net(&c, [Behaviour::Honest, Behaviour::WrongShares, Behaviour::Honest, Behaviour::Honest]);
    let cts: Vec<Ciphertext> = (1..=3).map(|n| encrypt(&c, 0, n)).collect();
    let pool = net.admit(&cts.iter().collect::<Vec<_>>());
    net.tick(0, &pool);
    net.tick(1_000, &pool);
    assert_eq!(net.machine.state(Slot(0)), Some(SlotState::Settled));
    let slot = net.decrypted()[0];
    assert_eq!(slot.blamed.len(), 1);
    assert_eq!(slot.blamed[0].keyper.get(), 2);
    assert!(slot.blocks[0].txs.iter().all(|t| matches!(t.result, TxResult::Included(_))));
    assert_eq!(net.machine.stats().rescales, 1, "the fallback round asked for rescaled batches");
}

#[test]
fn below_the_threshold_nothing_is_revealed_and_everything_is_released() {
    let c = committee();
    let mut net =
        net(&c, [Behaviour::Honest, Behaviour::Silent, Behaviour::Silent, Behaviour::Silent]);
    let cts: Vec<Ciphertext> = (1..=2).map(|n| encrypt(&c, 1, n)).collect();
    let pool = net.admit(&cts.iter().collect::<Vec<_>>());
    net.tick(0, &pool);
    let ids: Vec<TxId> = cts.iter().map(Ciphertext::id).collect();
    let blocks =
        vec![RollupBlock { rollup: RollupId(1), ciphertexts: ids.clone(), plaintext: vec![] }];
    net.machine.handle_bid(bid(&c, 0, blocks, 700), &pool, 10).unwrap();
    net.tick(1_000, &pool);
    assert_eq!(net.machine.state(Slot(0)), Some(SlotState::Committed));
    let locked = net.machine.auction().builder(&public_key(&builder())).unwrap().available();
    assert_eq!(locked, Amount(10_000 - 700));
    // Slot 1 opened meanwhile; a bid naming slot 0's ciphertexts is refused: they are in flight.
    net.tick(2_000, &pool);
    let blocks =
        vec![RollupBlock { rollup: RollupId(1), ciphertexts: ids.clone(), plaintext: vec![] }];
    let err = net.machine.handle_bid(bid(&c, 1, blocks, 700), &pool, 2_010).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownCiphertext);
    // The release deadline passes with one batch of the two needed.
    net.tick(3_000, &pool);
    assert_eq!(net.machine.state(Slot(0)), Some(SlotState::Undecryptable));
    assert!(net.decrypted().iter().all(|s| s.slot != Slot(0)), "nothing of slot 0 revealed");
    assert!(net
        .published
        .iter()
        .any(|p| matches!(p, Publication::Undecryptable { ids: back, .. } if *back == ids)));
    let available = net.machine.auction().builder(&public_key(&builder())).unwrap().available();
    assert_eq!(available, Amount(10_000), "the winner's locked payment is released");
    assert!(!net.machine.is_in_flight(&ids[0]), "the ciphertexts are free for a later slot");
}

#[test]
fn a_bundle_with_an_undecryptable_part_is_dropped_in_every_rollup() {
    let c = committee();
    let mut net = net(&c, [Behaviour::Honest; 4]);
    let mut pool = TestPool::default();
    let id = BundleId([5; 32]);
    let mut a = c.ad(1, 10);
    a.bundle = Some(BundleRef { id, index: 0, count: 2 });
    let good = c.pks.encrypt(&a, b"leg one", &mut rng(7)).unwrap();
    let mut b = c.ad(2, 10);
    b.bundle = Some(BundleRef { id, index: 1, count: 2 });
    // A valid proof over a body that does not open (a sender who knows its randomness).
    let junk =
        prove_arbitrary(&b, &[0xaa; 64 + 16], G1Projective::identity(), &mut rng(8)).unwrap();
    let lone = encrypt(&c, 1, 3);
    for ct in [&good, &junk, &lone] {
        pool.add(ct);
    }
    net.validate(&[&good, &junk, &lone]);
    net.tick(0, &pool);
    net.tick(1_000, &pool);
    let slot = net.decrypted()[0];
    let result = |id: TxId| {
        slot.blocks.iter().flat_map(|b| &b.txs).find(|t| t.id == id).map(|t| t.result.clone())
    };
    assert_eq!(result(junk.id()), Some(TxResult::Failed));
    assert_eq!(result(good.id()), Some(TxResult::DroppedWithBundle(id)));
    assert_eq!(result(lone.id()), Some(TxResult::Included(vec![3; 32])));
}

#[test]
fn a_restart_after_signing_sends_the_same_commitment_and_never_decides_again() {
    let c = committee();
    let mut net = net(&c, [Behaviour::Silent; 4]);
    let mut pool = TestPool::default();
    let ct = encrypt(&c, 1, 1);
    pool.add(&ct);
    net.validate(&[&ct]);
    net.tick(0, &pool);
    net.tick(1_000, &pool);
    let signed = net
        .disk
        .iter()
        .find_map(|r| match r {
            SlotRecord::Signed { signed } => Some(signed.clone()),
            _ => None,
        })
        .unwrap();
    // "kill -9": a new machine from the records on disk.
    let fresh = self::net(&c, [Behaviour::Honest; 4]);
    let mut machine = fresh.machine;
    machine.restore(net.disk.clone(), &pool).unwrap();
    assert_eq!(machine.state(Slot(0)), Some(SlotState::Committed));
    let mut resent = None;
    while let Some(e) = machine.poll_event() {
        match e {
            SlotEvent::SendToKeypers(KeyperRequest::Commitment(s)) => resent = Some(s),
            SlotEvent::Sign(_) => panic!("a restored slot is never decided or signed again"),
            SlotEvent::Persist { .. } => panic!("nothing is written again"),
            _ => {}
        }
    }
    assert_eq!(resent, Some(signed));
    // Slot 0 is not reopened.
    machine.handle_timeout(1_500, &pool, &mut rng(5)).unwrap();
    assert_eq!(machine.state(Slot(0)), Some(SlotState::Committed));
}

#[test]
fn a_silent_keyper_in_the_responder_set_does_not_stall_the_slot() {
    let c = committee();
    // Keyper 2 is in the default responder set {1, 2} and never answers; 1, 3 and 4 do.
    let mut net =
        net(&c, [Behaviour::Honest, Behaviour::Silent, Behaviour::Honest, Behaviour::Honest]);
    let cts: Vec<Ciphertext> = (1..=3).map(|n| encrypt(&c, 0, n)).collect();
    let pool = net.admit(&cts.iter().collect::<Vec<_>>());
    net.tick(0, &pool);
    net.tick(1_000, &pool);
    assert_eq!(net.machine.state(Slot(0)), Some(SlotState::Committed), "waits for the target set");
    // Half the release timeout later it combines from the keypers that did answer.
    net.tick(1_000 + 1_000, &pool);
    assert_eq!(net.machine.state(Slot(0)), Some(SlotState::Settled));
    let slot = net.decrypted()[0];
    assert!(slot.blocks[0].txs.iter().all(|t| matches!(t.result, TxResult::Included(_))));
}

/// A slot's combiner is made when the slot closes, before any batch can arrive (so the
/// machine needs no extra timeout once the slot is committed), and batches that come later
/// are summed into it: the block decrypts on the last one.
#[test]
fn a_slot_makes_its_combiner_when_it_closes_and_decrypts_from_later_batches() {
    let c = committee();
    let mut net = net(&c, [Behaviour::Silent; 4]);
    let cts: Vec<Ciphertext> = (1..=3).map(|n| encrypt(&c, 0, n)).collect();
    let pool = net.admit(&cts.iter().collect::<Vec<_>>());
    net.tick(0, &pool);
    net.tick(1_000, &pool);
    assert_eq!(net.machine.state(Slot(0)), Some(SlotState::Committed));
    assert!(net.machine.poll_timeout() > 1_000, "made at close: nothing due at once");

    let order: Vec<TxId> = net.signed[0].message.ordered_ids().copied().collect();
    let block: Vec<&Ciphertext> =
        order.iter().map(|id| cts.iter().find(|ct| ct.id() == *id).unwrap()).collect();
    let responders = c.pks.default_responders();
    for (n, m) in responders.members().iter().enumerate() {
        assert_eq!(net.machine.state(Slot(0)), Some(SlotState::Committed), "batch {n}");
        let i = usize::from(m.get()) - 1;
        let batch =
            ShareBatch::create(&c.shares[i], &c.identities[i], Slot(0), &block, Some(&responders))
                .unwrap();
        net.machine.handle_share_batch(&batch, 1_002, &mut rng(9)).unwrap();
    }
    net.run(1_002);
    assert_eq!(net.machine.state(Slot(0)), Some(SlotState::Settled));
    let slot = net.decrypted()[0];
    assert!(slot.blamed.is_empty());
    assert!(slot.blocks[0].txs.iter().all(|t| matches!(t.result, TxResult::Included(_))));
}

/// A record of a slot to cut a run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    Decided,
    Signed,
    Decrypted,
    Settled,
}

impl Cut {
    fn matches(self, record: &SlotRecord) -> bool {
        matches!(
            (self, record),
            (Cut::Decided, SlotRecord::Decided { .. })
                | (Cut::Signed, SlotRecord::Signed { .. })
                | (Cut::Decrypted, SlotRecord::Decrypted { .. })
                | (Cut::Settled, SlotRecord::Settled { .. })
        )
    }
}

/// The auction's state as far as money goes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    /// Builders A and B: balance, unsettled, available.
    accounts: Vec<(Amount, Amount, Amount)>,
    /// Hashes of the outcomes awaiting settlement.
    unsettled: Vec<[u8; 32]>,
    earliest_effective: Slot,
}

fn snapshot(a: &Auction) -> Snapshot {
    Snapshot {
        accounts: [builder(), builder_b()]
            .iter()
            .map(|k| {
                let acc = a.builder(&public_key(k)).unwrap();
                (acc.balance(), acc.unsettled(), acc.available())
            })
            .collect(),
        unsettled: a.unsettled_outcomes().map(Outcome::hash).collect(),
        earliest_effective: a.earliest_effective_slot(),
    }
}

/// The records as the node reads them back: through their JSON.
fn reload(disk: &[SlotRecord]) -> Vec<SlotRecord> {
    disk.iter().map(|r| serde_json::from_str(&serde_json::to_string(r).unwrap()).unwrap()).collect()
}

/// Builder A's collateral in the market runs.
const A_DEPOSIT: u128 = 1_000;
/// Builder B's.
const B_DEPOSIT: u128 = 600;

fn market(c: &TestCommittee) -> Auction {
    genesis(c, &[(&builder(), A_DEPOSIT), (&builder_b(), B_DEPOSIT)])
}

/// Each slot's bids: (builder, rollup, ciphertexts, amount). In slot 2, A's bid of 350 is over
/// the 300 it has left once slots 0 and 1 are paid for: it is refused, unless a restart
/// forgot what A paid.
fn market_bids(slot: u64) -> Vec<(SigningKey, u32, u8, u128)> {
    match slot {
        0 => vec![(builder(), 1, 2, 300), (builder_b(), 2, 1, 200)],
        1 => vec![(builder(), 1, 2, 400), (builder_b(), 0, 1, 150)],
        _ => vec![(builder(), 1, 1, 350), (builder(), 2, 1, 250), (builder_b(), 1, 1, 250)],
    }
}

/// What A and B pay in the whole market run.
const MARKET_PAID: (u128, u128) = (300 + 400 + 250, 200 + 150 + 250);

struct MarketRun {
    net: Net,
    pool: TestPool,
    verdicts: Vec<Result<(), AuctionError>>,
    /// Every ciphertext admitted.
    cts: Vec<Ciphertext>,
}

/// Slots 0..slots with the bids of [`market_bids`], each slot's ciphertexts admitted when it
/// opens. With `crash`, the sequencer is killed right after `cut`'s record is durable and
/// restarts at once from the genesis state and its records; otherwise `cut` only marks where
/// to note the state.
fn market_run(c: &TestCommittee, slots: u64, cut: (Slot, Cut), crash: bool) -> MarketRun {
    let mut net = net_with(c, [Behaviour::Honest; 4], market(c));
    let mut pool = TestPool::default();
    let mut verdicts = Vec::new();
    let mut all = Vec::new();
    for slot in 0..slots {
        let start = 2_000 * slot;
        net.tick(start, &pool);
        let mut n = 10 * slot as u8;
        let mut bids = Vec::new();
        for (key, rollup, count, amount) in market_bids(slot) {
            let cts: Vec<Ciphertext> = (0..count)
                .map(|_| {
                    n += 1;
                    encrypt(c, rollup, n)
                })
                .collect();
            for ct in &cts {
                pool.add(ct);
            }
            net.validate(&cts.iter().collect::<Vec<_>>());
            all.extend(cts.iter().cloned());
            let ids = cts.iter().map(Ciphertext::id).collect();
            let blocks =
                vec![RollupBlock { rollup: RollupId(rollup), ciphertexts: ids, plaintext: vec![] }];
            bids.push(bid_by(&key, c, slot, blocks, amount));
        }
        for b in bids {
            verdicts.push(net.machine.handle_bid(b, &pool, start + 10));
        }
        let close = start + 1_000;
        net.machine.handle_timeout(close, &pool, &mut rng(4)).unwrap();
        if net.run_cut(close, Some(cut), crash) {
            net.restart(c, market(c), &pool).unwrap();
            net.at_cut = Some(snapshot(net.machine.auction()));
            net.run(close);
        }
        pool.remove_published(&net.published);
    }
    MarketRun { net, pool, verdicts, cts: all }
}

/// Debits and payouts of every settled record on disk.
fn ledger_totals(disk: &[SlotRecord]) -> (u128, u128) {
    let mut totals = (0, 0);
    for r in disk {
        if let SlotRecord::Settled { ledger, .. } = r {
            for e in ledger {
                match e {
                    LedgerEntry::Debit { amount, .. } => totals.0 += amount.0,
                    LedgerEntry::Payout { amount, .. } => totals.1 += amount.0,
                    _ => {}
                }
            }
        }
    }
    totals
}

/// Kills the sequencer right after `cut`'s record of slot 1 is durable, restarts it, runs on
/// to the end of slot 2, and checks it against the uninterrupted run.
fn restart_matches_the_uninterrupted_run(cut: Cut) -> MarketRun {
    let c = committee();
    let at = (Slot(1), cut);
    let reference = market_run(&c, 3, at, false);
    let crashed = market_run(&c, 3, at, true);
    assert!(crashed.net.at_cut.is_some(), "the run was cut");

    // The restored auction is the uninterrupted one, at the cut and at the end.
    assert_eq!(crashed.net.at_cut, reference.net.at_cut, "state right after the restart");
    assert_eq!(snapshot(crashed.net.machine.auction()), snapshot(reference.net.machine.auction()));
    // (a) One commitment per slot: the same records, the same signed commitments.
    assert_eq!(crashed.net.disk, reference.net.disk, "the same records, in the same order");
    for slot in 0..3 {
        let decided: Vec<&SlotRecord> = crashed
            .net
            .disk
            .iter()
            .filter(|r| matches!(r, SlotRecord::Decided { .. }) && r.slot() == Slot(slot))
            .collect();
        assert_eq!(decided.len(), 1, "slot {slot} decided once");
        let signed: Vec<&SignedCommitment> =
            crashed.net.signed.iter().filter(|s| s.message.slot == Slot(slot)).collect();
        let first = reference.net.signed.iter().find(|s| s.message.slot == Slot(slot)).unwrap();
        assert!(signed.iter().all(|s| *s == first), "slot {slot}: never a different commitment");
    }
    // (b) Money, to the unit: the bid A cannot cover is refused after the restart too.
    assert_eq!(crashed.verdicts, reference.verdicts);
    assert!(matches!(crashed.verdicts[4], Err(AuctionError::InsufficientCollateral { .. })));
    let (a_paid, b_paid) = MARKET_PAID;
    let accounts = &snapshot(crashed.net.machine.auction()).accounts;
    assert_eq!(
        accounts,
        &vec![
            (Amount(A_DEPOSIT - a_paid), Amount(0), Amount(A_DEPOSIT - a_paid)),
            (Amount(B_DEPOSIT - b_paid), Amount(0), Amount(B_DEPOSIT - b_paid)),
        ]
    );
    let totals = ledger_totals(&crashed.net.disk);
    assert_eq!(totals, (a_paid + b_paid, a_paid + b_paid), "payouts equal debits, exactly");
    assert_eq!(totals, ledger_totals(&reference.net.disk));
    for slot in 0..3 {
        assert_eq!(crashed.net.machine.state(Slot(slot)), Some(SlotState::Settled));
    }
    crashed
}

#[test]
fn a_restart_after_the_decided_record_signs_the_same_commitment_and_settles_exactly() {
    let run = restart_matches_the_uninterrupted_run(Cut::Decided);
    // Decided but not signed before the crash: signed once, after the restart, and the same.
    let slot1: Vec<_> = run.net.signed.iter().filter(|s| s.message.slot == Slot(1)).collect();
    assert_eq!(slot1.len(), 1);
}

#[test]
fn a_restart_after_the_signed_record_still_decrypts_with_keyper_batches_and_settles() {
    let run = restart_matches_the_uninterrupted_run(Cut::Signed);
    // (c) The restored committed slot went to the keypers, decrypted and settled.
    let slot1 = run.net.decrypted().into_iter().find(|s| s.slot == Slot(1)).unwrap();
    assert_eq!(slot1.blocks.len(), 2);
    assert!(slot1
        .blocks
        .iter()
        .flat_map(|b| &b.txs)
        .all(|t| matches!(t.result, TxResult::Included(_))));
    assert!(run
        .net
        .published
        .iter()
        .any(|p| matches!(p, Publication::Committed(s) if s.message.slot == Slot(1))));
}

#[test]
fn a_restart_after_the_decrypted_record_settles_exactly_once() {
    let run = restart_matches_the_uninterrupted_run(Cut::Decrypted);
    let settled = run
        .net
        .disk
        .iter()
        .filter(|r| matches!(r, SlotRecord::Settled { .. }) && r.slot() == Slot(1))
        .count();
    assert_eq!(settled, 1);
}

#[test]
fn a_restart_after_the_settled_record_keeps_the_debits() {
    let run = restart_matches_the_uninterrupted_run(Cut::Settled);
    // Right after the restart, slots 0 and 1 are paid for and nothing is pending.
    let at_cut = run.net.at_cut.unwrap();
    assert!(at_cut.unsettled.is_empty());
    assert_eq!(at_cut.accounts[0].0, Amount(A_DEPOSIT - 300 - 400));
    assert_eq!(at_cut.earliest_effective, Slot(2));
}

#[test]
fn a_restored_committed_slot_that_times_out_releases_its_winners_payment() {
    let c = committee();
    let mut run = market_run(&c, 2, (Slot(1), Cut::Signed), true);
    // The run restarted and settled slot 1; do it again with the keypers silent after the
    // restart: cut the records back to the signed one.
    let signed_at = run
        .net
        .disk
        .iter()
        .position(|r| matches!(r, SlotRecord::Signed { .. }) && r.slot() == Slot(1))
        .unwrap();
    run.net.disk.truncate(signed_at + 1);
    for (_, b) in &mut run.net.keypers {
        *b = Behaviour::Silent;
    }
    // The pool as it was at the crash: slot 1's ciphertexts not published yet.
    let SlotRecord::Signed { signed } = &run.net.disk[signed_at] else { unreachable!() };
    let mut pool = TestPool::default();
    for ct in run.cts.iter().filter(|ct| signed.message.ordered_ids().any(|id| *id == ct.id())) {
        pool.add(ct);
    }
    run.net.restart(&c, market(&c), &pool).unwrap();
    let a = public_key(&builder());
    let locked = run.net.machine.auction().builder(&a).unwrap().clone();
    assert_eq!((locked.balance(), locked.unsettled()), (Amount(A_DEPOSIT - 300), Amount(400)));
    run.net.run(3_000);
    assert_eq!(run.net.machine.state(Slot(1)), Some(SlotState::Committed));
    // Past slot 1's release deadline: abandoned, and the auction has its outcome to abandon.
    run.net.tick(5_000, &pool);
    assert_eq!(run.net.machine.state(Slot(1)), Some(SlotState::Undecryptable));
    let acc = run.net.machine.auction().builder(&a).unwrap();
    assert_eq!(
        (acc.balance(), acc.unsettled(), acc.available()),
        (Amount(A_DEPOSIT - 300), Amount(0), Amount(A_DEPOSIT - 300)),
        "the locked payment is released, nothing debited"
    );
    assert_eq!(run.net.machine.auction().unsettled_outcomes().count(), 0);
    assert!(run.net.disk.iter().any(|r| matches!(r, SlotRecord::Undecryptable { slot: Slot(1) })));
}

#[test]
fn restore_refuses_records_that_contradict_each_other() {
    let c = committee();
    let run = market_run(&c, 2, (Slot(1), Cut::Settled), false);
    let disk = reload(&run.net.disk);
    let restore = |records: Vec<SlotRecord>| {
        let mut m = SlotMachine::new(SlotClock::new(0), c.pks.clone(), market(&c), Slot(0));
        m.restore(records, &run.pool)
    };
    restore(disk.clone()).unwrap();

    // The outcome of slot 1 does not hash to its commitment's outcome hash.
    let mut tampered = disk.clone();
    for r in &mut tampered {
        if let SlotRecord::Decided { outcome, .. } = r {
            if outcome.slot == Slot(1) {
                outcome.winners[0].payment = Amount(1);
            }
        }
    }
    let err = restore(tampered).unwrap_err();
    assert!(matches!(err, SequencerError::RecordMismatch { slot: Slot(1), .. }), "{err:?}");
    // A settled ledger that is not the outcome's.
    let mut tampered = disk.clone();
    for r in &mut tampered {
        if let SlotRecord::Settled { ledger, slot: Slot(0), .. } = r {
            ledger.pop();
        }
    }
    assert!(matches!(restore(tampered), Err(SequencerError::RecordMismatch { slot: Slot(0), .. })));
    // A signed commitment that is not the decided one.
    let mut tampered = disk.clone();
    for r in &mut tampered {
        if let SlotRecord::Signed { signed } = r {
            if signed.message.slot == Slot(0) {
                let mut other = signed.message.clone();
                other.blocks.pop();
                *signed = sequencer().finalize(other).unwrap();
            }
        }
    }
    assert!(matches!(restore(tampered), Err(SequencerError::RecordMismatch { slot: Slot(0), .. })));
    // Settled, but the decided record (and with it the outcome) is gone.
    let missing: Vec<SlotRecord> = disk
        .iter()
        .filter(|r| !(matches!(r, SlotRecord::Decided { .. }) && r.slot() == Slot(1)))
        .cloned()
        .collect();
    let err = restore(missing).unwrap_err();
    assert_eq!(err, SequencerError::MissingOutcome(Slot(1)));
    assert_eq!(err.code(), ErrorCode::StorageUnavailable);
}

#[test]
fn restore_refuses_records_that_do_not_fit_the_genesis_auction() {
    let c = committee();
    let run = market_run(&c, 2, (Slot(1), Cut::Settled), false);
    let restore = |auction: Auction| {
        let mut m = SlotMachine::new(SlotClock::new(0), c.pks.clone(), auction, Slot(0));
        m.restore(reload(&run.net.disk), &run.pool)
    };
    // Builder B never deposited in this genesis state.
    let err = restore(genesis(&c, &[(&builder(), A_DEPOSIT)])).unwrap_err();
    assert_eq!(
        err,
        SequencerError::RestoreRefused {
            slot: Slot(0),
            error: AuctionError::UnknownBuilder(public_key(&builder_b()))
        }
    );
    assert_eq!(err.code(), ErrorCode::UnknownBuilder);
    // A has 500: slot 0's 300 restores, slot 1's 400 does not fit the 200 left.
    let err = restore(genesis(&c, &[(&builder(), 500), (&builder_b(), B_DEPOSIT)])).unwrap_err();
    assert_eq!(
        err,
        SequencerError::RestoreRefused {
            slot: Slot(1),
            error: AuctionError::InsufficientCollateral {
                available: Amount(200),
                required: Amount(400)
            }
        }
    );
}

/// The registry changes of a run: a rollup registered and reconfigured after genesis, a
/// bridge deposit, a withdrawal released at a slot boundary, interleaved with slots that
/// lock and settle payments. A fresh machine restored from the records has the same accounts,
/// nonces, admin keys and scheduled terms, and refuses the same messages again.
#[test]
fn registry_changes_survive_a_restart_in_log_order() {
    use veil_auction::{
        RevenuePolicy, RollupChange, RollupConfig, RollupUpdate, WithdrawalRequest,
    };
    use veil_primitives::{AccountKind, DepositId, DepositNotice};
    use veil_sequencer::slot::RegistryChange;

    let c = committee();
    let chain = c.pks.chain_id();
    let bridge = SigningKey::from_bytes(&[0xb7; 32]);
    let admin = SigningKey::from_bytes(&[0xa7; 32]);
    let make_genesis = || {
        let mut auction = Auction::new(AuctionConfig {
            chain_id: chain,
            withdrawal_delay_slots: 2,
            ..AuctionConfig::default()
        });
        crate::register_rollups(&mut auction, &[(0, 10), (1, 10)], Slot(0));
        auction.deposit(public_key(&builder()), Amount(10_000)).unwrap();
        auction.set_bridge_key(Some(public_key(&bridge)));
        auction
    };
    let mut net = net_with(&c, [Behaviour::Honest; 4], make_genesis());
    let cts: Vec<Ciphertext> = (1..=2).map(|n| encrypt(&c, 1, n)).collect();
    let pool = net.admit(&cts.iter().collect::<Vec<_>>());
    net.tick(0, &pool);
    let config = |reserve| RollupConfig {
        reserve: Amount(reserve),
        gas_limit: 500_000,
        policy: RevenuePolicy::standard(10_000, 0, 0, public_key(&admin)).unwrap(),
        active: true,
    };
    let register = RollupUpdate {
        chain_id: chain,
        rollup: RollupId(7),
        nonce: 1,
        effective: Slot(1),
        change: RollupChange::Register { admin: public_key(&admin), config: config(3) },
    }
    .sign(&admin);
    let configure = RollupUpdate {
        chain_id: chain,
        rollup: RollupId(7),
        nonce: 2,
        effective: Slot(5),
        change: RollupChange::Configure(config(9)),
    }
    .sign(&admin);
    let notice = DepositNotice {
        chain_id: chain,
        bridge: public_key(&bridge),
        deposit_id: DepositId([1; 32]),
        kind: AccountKind::Builder,
        account: public_key(&builder_b()),
        amount: Amount(5_000),
    }
    .sign(&bridge);
    let withdraw = WithdrawalRequest {
        chain_id: chain,
        builder: public_key(&builder()),
        amount: Amount(1_000),
        nonce: 1,
    }
    .sign(&builder());
    for change in [
        RegistryChange::RollupUpdate(Box::new(register.clone())),
        RegistryChange::Deposit(Box::new(notice.clone())),
        RegistryChange::Withdrawal(Box::new(withdraw.clone())),
    ] {
        let accepted = net.machine.handle_registry(change, 10).unwrap();
        assert!(!accepted.repeat);
        net.run(10);
    }
    // A builder's bid for slot 0 locks 500; the slot settles.
    let ids: Vec<TxId> = cts.iter().map(Ciphertext::id).collect();
    let blocks = vec![RollupBlock { rollup: RollupId(1), ciphertexts: ids, plaintext: vec![] }];
    net.machine.handle_bid(bid(&c, 0, blocks, 500), &pool, 20).unwrap();
    net.tick(1_000, &pool);
    assert_eq!(net.machine.state(Slot(0)), Some(SlotState::Settled));
    // Slot 1 opens: rollup 7's terms are in force; the configure is for slot 5.
    net.tick(2_000, &pool);
    net.machine
        .handle_registry(RegistryChange::RollupUpdate(Box::new(configure.clone())), 2_010)
        .unwrap();
    net.run(2_010);
    // Slot 2 opens: the withdrawal (at slot 0, delay 2) is released.
    net.tick(4_000, &pool);
    let released: Vec<&SlotRecord> = net
        .disk
        .iter()
        .filter(|r| {
            matches!(
                r,
                SlotRecord::Registry { change: veil_sequencer::RegistryRecord::Released { .. } }
            )
        })
        .collect();
    assert_eq!(released.len(), 1, "released once, at slot 2");
    let account = |a: &Auction, k: &SigningKey| {
        let acc = a.builder(&public_key(k)).unwrap();
        (
            acc.balance(),
            acc.unsettled(),
            acc.available(),
            acc.withdraw_nonce(),
            acc.withdrawals().count(),
        )
    };
    let before = (
        account(net.machine.auction(), &builder()),
        account(net.machine.auction(), &builder_b()),
        net.machine.auction().rollups().state(RollupId(7), Slot(2)),
    );
    assert_eq!(before.0 .0, Amount(10_000 - 500 - 1_000), "paid 500, withdrew 1,000");
    assert_eq!(before.1 .0, Amount(5_000), "credited once");
    let state = before.2.clone().unwrap();
    assert_eq!((state.last_nonce, state.admin), (2, public_key(&admin)));
    assert_eq!(state.current.unwrap().reserve, Amount(3));
    assert_eq!(state.scheduled.len(), 1);

    // "kill -9" and restart from the genesis auction and the records.
    net.restart(&c, make_genesis(), &pool).unwrap();
    let after = (
        account(net.machine.auction(), &builder()),
        account(net.machine.auction(), &builder_b()),
        net.machine.auction().rollups().state(RollupId(7), Slot(2)),
    );
    assert_eq!(after, before);
    // The same messages again: refused as replays, or (the deposit) answered the same.
    let again = |net: &mut Net, change| net.machine.handle_registry(change, 4_010);
    assert_eq!(
        again(&mut net, RegistryChange::RollupUpdate(Box::new(configure))).unwrap_err().code(),
        ErrorCode::StaleNonce
    );
    assert_eq!(
        again(&mut net, RegistryChange::Withdrawal(Box::new(withdraw))).unwrap_err().code(),
        ErrorCode::StaleNonce
    );
    let repeat = again(&mut net, RegistryChange::Deposit(Box::new(notice.clone()))).unwrap();
    assert!(repeat.repeat);
    assert_eq!(
        repeat.entry,
        Some(LedgerEntry::Deposit { builder: public_key(&builder_b()), amount: Amount(5_000) })
    );
    let mut conflict = notice.message.clone();
    conflict.amount = Amount(6_000);
    assert_eq!(
        again(&mut net, RegistryChange::Deposit(Box::new(conflict.sign(&bridge))))
            .unwrap_err()
            .code(),
        ErrorCode::DepositConflict
    );
    assert_eq!(account(net.machine.auction(), &builder_b()).0, Amount(5_000));
}

/// A log whose release record does not match what the restored accounts release is refused.
#[test]
fn restore_refuses_a_release_that_does_not_match() {
    use veil_sequencer::RegistryRecord;
    let c = committee();
    let mut net = net(&c, [Behaviour::Honest; 4]);
    net.disk.push(SlotRecord::Registry {
        change: RegistryRecord::Released {
            at: Slot(3),
            ledger: vec![LedgerEntry::Withdrawal {
                builder: public_key(&builder()),
                amount: Amount(1),
            }],
        },
    });
    let err =
        net.restart(&c, genesis(&c, &[(&builder(), 10_000)]), &TestPool::default()).unwrap_err();
    assert!(matches!(err, SequencerError::RecordMismatch { .. }), "{err}");
}
