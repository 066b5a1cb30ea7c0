//! The slot machine driven in-process with real keyper machines and the real crypto and
//! auction: a full slot, a byzantine keyper, silent keypers, in-flight ciphertexts, a bundle
//! with an undecryptable part, and a restart after the commitment was signed.

use std::collections::HashMap;

use blstrs::G1Projective;
use ed25519_dalek::SigningKey;
use group::Group;
use veil_auction::{public_key, Auction, AuctionConfig, Bid, LedgerEntry, RollupBlock};
use veil_crypto::testing::{prove_arbitrary, rng, TestCommittee};
use veil_crypto::{Ciphertext, SignedShareBatch};
use veil_primitives::{
    Amount, BundleId, BundleRef, CiphertextIndex, ErrorCode, RollupId, Signed, Slot, TxId, TxMeta,
};
use veil_sequencer::slot::{PoolView, Publication, SlotClock, SlotEvent, SlotRecord, TxResult};
use veil_sequencer::{
    Finalizer, KeyFinalizer, KeyperEvent, KeyperMachine, KeyperRequest, SlotMachine, SlotState,
};

use crate::{committee, keyper, sequencer};

#[derive(Default)]
struct TestPool(HashMap<TxId, (TxMeta, Vec<u8>)>);

impl TestPool {
    fn add(&mut self, ct: &Ciphertext) {
        self.0.insert(ct.id(), (*ct.ad(), ct.as_bytes().to_vec()));
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
}

fn builder() -> SigningKey {
    SigningKey::from_bytes(&[2; 32])
}

fn net(c: &TestCommittee, behaviours: [Behaviour; 4]) -> Net {
    let chain = c.pks.chain_id();
    let mut auction = Auction::new(AuctionConfig { chain_id: chain, ..AuctionConfig::default() });
    crate::register_rollups(&mut auction, &[(0, 10), (1, 10), (2, 10)], Slot(0));
    auction.deposit(public_key(&builder()), Amount(10_000)).unwrap();
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
        while let Some(event) = self.machine.poll_event() {
            match event {
                SlotEvent::Persist { token, record } => {
                    self.disk.push(record);
                    self.machine.handle_persisted(token, now_ms);
                }
                SlotEvent::Sign(c) => {
                    self.signs += 1;
                    let signed = self.finalizer.finalize(c).unwrap();
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
                                        && b.message.entries.len() > 1
                                    {
                                        let mut m = b.message.clone();
                                        let first = m.entries[0].share;
                                        m.entries[0].share = m.entries[1].share;
                                        m.entries[1].share = first;
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
    }

    fn tick(&mut self, now_ms: u64, pool: &TestPool) {
        self.machine.handle_timeout(now_ms, pool, &mut rng(4)).unwrap();
        self.run(now_ms);
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
    Bid {
        chain_id: c.pks.chain_id(),
        slot: Slot(slot),
        builder: public_key(&builder()),
        sequence: 1,
        amount: Amount(amount),
        blocks,
    }
    .sign(&builder())
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
    machine.restore(net.disk.clone(), &pool);
    assert_eq!(machine.state(Slot(0)), Some(SlotState::Committed));
    let mut resent = None;
    while let Some(e) = machine.poll_event() {
        match e {
            SlotEvent::SendToKeypers(KeyperRequest::Commitment(s)) => resent = Some(s),
            SlotEvent::Sign(_) => panic!("a restored slot is never decided or signed again"),
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
