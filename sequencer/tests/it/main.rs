//! The keyper release rule end to end with the real crypto: validation, commitment, persist,
//! release, decryption; equivocation (also across a restart), unvalidated ids, forged
//! commitments and the fallback round.

mod slot;

use ed25519_dalek::SigningKey;
use veil_crypto::testing::{rng, TestCommittee};
use veil_crypto::{
    decrypt_block, Ciphertext, DecryptOutcome, KeyperIndex, ResponderSet, SecretKeyShare,
    SignedShareBatch, VerifiedShareBatch,
};
use veil_primitives::{Amount, ErrorCode, RollupId, Slot};
use veil_sequencer::{
    Commitment, CommittedBlock, Finalizer, KeyFinalizer, KeyperConfig, KeyperEvent, KeyperMachine,
    KeyperRecord, SequencerError, SignedCommitment,
};

fn committee() -> TestCommittee {
    TestCommittee::new(4, 1, 11)
}

/// A keyper's identity key (to re-sign a batch a byzantine keyper tampered with).
fn identity_of(identities: &[SigningKey], k: &KeyperMachine) -> SigningKey {
    identities[usize::from(k.index().get()) - 1].clone()
}

fn sequencer() -> KeyFinalizer {
    KeyFinalizer::new(SigningKey::from_bytes(&[42; 32]))
}

/// A copy of keyper `i`'s secret share (the type is deliberately not `Clone`).
fn share(c: &TestCommittee, i: usize) -> SecretKeyShare {
    SecretKeyShare::from_json(&c.shares[i].to_json()).unwrap()
}

fn keyper(c: &TestCommittee, i: usize) -> KeyperMachine {
    KeyperMachine::new(
        c.pks.clone(),
        share(c, i),
        c.identities[i].clone(),
        sequencer().verifier(),
        KeyperConfig::default(),
    )
    .unwrap()
}

fn encrypt(c: &TestCommittee, n: u8) -> Ciphertext {
    c.pks.encrypt(&c.ad(u32::from(n % 2), 10), &[n; 64], &mut rng(u64::from(n))).unwrap()
}

fn commitment(c: &TestCommittee, slot: u64, cts: &[&Ciphertext]) -> Commitment {
    let mut blocks: Vec<CommittedBlock> = Vec::new();
    for ct in cts {
        let rollup = ct.ad().rollup;
        match blocks.iter_mut().find(|b| b.rollup == rollup) {
            Some(b) => b.ciphertexts.push(ct.id()),
            None => blocks.push(CommittedBlock {
                rollup,
                winner: None,
                payment: Amount::ZERO,
                ciphertexts: vec![ct.id()],
            }),
        }
    }
    blocks.sort_by_key(|b| b.rollup);
    Commitment {
        chain_id: c.pks.chain_id(),
        slot: Slot(slot),
        eon: c.pks.eon(),
        blocks,
        outcome_hash: [slot as u8; 32],
    }
}

/// Runs the shell loop: persists everything (recording it), returns the batches sent and the
/// equivocation reports.
fn drive(
    k: &mut KeyperMachine,
    disk: &mut Vec<KeyperRecord>,
) -> (Vec<SignedShareBatch>, Vec<(SignedCommitment, SignedCommitment)>) {
    let (mut sent, mut reports) = (Vec::new(), Vec::new());
    while let Some(event) = k.poll_event() {
        match event {
            KeyperEvent::Persist { token, record } => {
                disk.push(record);
                k.handle_persisted(token);
            }
            KeyperEvent::SendShares(b) => sent.push(b),
            KeyperEvent::Equivocation { first, second } => reports.push((*first, *second)),
        }
    }
    (sent, reports)
}

fn validate(k: &mut KeyperMachine, cts: &[&Ciphertext]) {
    let bodies: Vec<&[u8]> = cts.iter().map(|c| c.as_bytes()).collect();
    assert!(k.handle_ciphertexts(&bodies, &mut rng(5)).iter().all(Result::is_ok));
}

/// The committed ciphertexts in the commitment's decryption order.
fn ordered<'a>(c: &Commitment, cts: &'a [Ciphertext]) -> Vec<&'a Ciphertext> {
    c.ordered_ids().map(|id| cts.iter().find(|ct| ct.id() == *id).unwrap()).collect()
}

#[test]
fn release_after_persist_then_decrypt() {
    let c = committee();
    let cts: Vec<Ciphertext> = (1..=5).map(|n| encrypt(&c, n)).collect();
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    let signed = sequencer().finalize(commitment(&c, 7, &refs)).unwrap();
    let order = ordered(&signed.message, &cts);
    // The default responders of a 4-keyper, t=1 committee are keypers 1 and 2.
    let mut batches: Vec<VerifiedShareBatch> = Vec::new();
    for i in 0..2 {
        let mut k = keyper(&c, i);
        validate(&mut k, &refs);
        k.handle_commitment(signed.clone()).unwrap();
        // Nothing leaves before the release record is durable.
        let first = k.poll_event().unwrap();
        assert!(matches!(
            first,
            KeyperEvent::Persist { record: KeyperRecord::FirstCommitment { .. }, .. }
        ));
        let second = k.poll_event().unwrap();
        let KeyperEvent::Persist { token, record: KeyperRecord::Released { slot: Slot(7) } } =
            second
        else {
            panic!("expected the release record, got {second:?}");
        };
        assert!(k.poll_event().is_none(), "no batch before the release is durable");
        k.handle_persisted(token);
        let Some(KeyperEvent::SendShares(batch)) = k.poll_event() else { panic!("no batch") };
        batches.push(c.pks.verify_share_batch(&batch).unwrap());
    }
    let block = decrypt_block(&c.pks, Slot(7), &order, &batches, &mut rng(9)).unwrap();
    assert!(block.fast_path);
    for (ct, outcome) in order.iter().zip(&block.outcomes) {
        let n = cts.iter().position(|x| x.id() == ct.id()).unwrap() as u8 + 1;
        assert_eq!(outcome, &DecryptOutcome::Plaintext(vec![n; 64]));
    }
}

#[test]
fn a_second_commitment_is_equivocation_also_after_a_restart() {
    let c = committee();
    let cts: Vec<Ciphertext> = (1..=3).map(|n| encrypt(&c, n)).collect();
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    let first = sequencer().finalize(commitment(&c, 3, &refs[..2])).unwrap();
    let second = sequencer().finalize(commitment(&c, 3, &refs[1..])).unwrap();
    let mut disk = Vec::new();
    let mut k = keyper(&c, 0);
    validate(&mut k, &refs);
    k.handle_commitment(first.clone()).unwrap();
    let (sent, _) = drive(&mut k, &mut disk);
    assert_eq!(sent.len(), 1);
    let err = k.handle_commitment(second.clone()).unwrap_err();
    assert!(matches!(err, SequencerError::Equivocation { slot: Slot(3), .. }));
    assert_eq!(err.code(), ErrorCode::Equivocation);
    let (sent, reports) = drive(&mut k, &mut disk);
    assert!(sent.is_empty(), "nothing released for the second commitment");
    assert_eq!(reports, vec![(first.clone(), second.clone())]);

    // Restart: the records on disk rebuild the first commitment per slot.
    let mut k = keyper(&c, 0);
    k.restore(disk.clone());
    validate(&mut k, &refs);
    assert!(matches!(
        k.handle_commitment(second.clone()),
        Err(SequencerError::Equivocation { .. })
    ));
    // The first one is still honoured: its batch is sent again, nothing new is persisted.
    k.handle_commitment(first).unwrap();
    let before = disk.len();
    let (sent, reports) = drive(&mut k, &mut disk);
    assert_eq!((sent.len(), reports.len(), disk.len()), (1, 1, before));
}

#[test]
fn unvalidated_ids_release_nothing_until_validated() {
    let c = committee();
    let cts: Vec<Ciphertext> = (1..=2).map(|n| encrypt(&c, n)).collect();
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    let signed = sequencer().finalize(commitment(&c, 4, &refs)).unwrap();
    let mut disk = Vec::new();
    let mut k = keyper(&c, 1);
    validate(&mut k, &refs[..1]);
    let err = k.handle_commitment(signed.clone()).unwrap_err();
    assert_eq!(err, SequencerError::UnvalidatedCiphertext(cts[1].id()));
    let (sent, _) = drive(&mut k, &mut disk);
    assert!(sent.is_empty());
    assert_eq!(disk.len(), 1, "the first commitment is recorded even so");
    // Caught up on the feed: the same commitment now releases.
    validate(&mut k, &refs[1..]);
    k.handle_commitment(signed).unwrap();
    let (sent, _) = drive(&mut k, &mut disk);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].message.shares.len(), 2);
}

#[test]
fn forged_and_foreign_commitments_are_refused_and_leave_no_trace() {
    let c = committee();
    let ct = encrypt(&c, 1);
    let mut k = keyper(&c, 0);
    validate(&mut k, &[&ct]);
    let forger = KeyFinalizer::new(SigningKey::from_bytes(&[1; 32]));
    let forged = forger.finalize(commitment(&c, 2, &[&ct])).unwrap();
    assert_eq!(k.handle_commitment(forged).unwrap_err(), SequencerError::BadSignature);
    let mut other_chain = commitment(&c, 2, &[&ct]);
    other_chain.chain_id = veil_primitives::ChainId(99);
    let foreign = sequencer().finalize(other_chain).unwrap();
    assert!(matches!(k.handle_commitment(foreign), Err(SequencerError::WrongChain { .. })));
    assert!(k.commitment(Slot(2)).is_none());
    assert!(k.poll_event().is_none());
    // The genuine commitment for that slot is then released normally.
    k.handle_commitment(sequencer().finalize(commitment(&c, 2, &[&ct])).unwrap()).unwrap();
    let (sent, _) = drive(&mut k, &mut Vec::new());
    assert_eq!(sent.len(), 1);
}

#[test]
fn bad_ciphertexts_are_refused_and_not_held() {
    let c = committee();
    let good = encrypt(&c, 1);
    let mut tampered = encrypt(&c, 2).as_bytes().to_vec();
    *tampered.last_mut().unwrap() ^= 1;
    let mut k = keyper(&c, 0);
    let results = k.handle_ciphertexts(&[good.as_bytes(), &tampered, b"garbage"], &mut rng(3));
    assert_eq!(results[0], Ok(good.id()));
    assert!(results[1].is_err() && results[2].is_err());
    assert!(k.holds(&good.id()));
    assert_eq!(k.stats().validated, 1);
    assert_eq!(k.stats().invalid, 2);
}

/// A shell may validate on another thread: `FeedValidator::validate` there, then
/// `KeyperMachine::accept`, holds, counts and releases exactly what `handle_ciphertexts` does,
/// and ids the skip rule names cost no check.
#[test]
fn validation_on_another_thread_then_accept_matches_the_one_step_path() {
    let c = committee();
    let cts: Vec<Ciphertext> = (1..=4).map(|n| encrypt(&c, n)).collect();
    let mut tampered = encrypt(&c, 9).as_bytes().to_vec();
    *tampered.last_mut().unwrap() ^= 1;
    let mut bodies: Vec<Vec<u8>> = cts.iter().map(|ct| ct.as_bytes().to_vec()).collect();
    bodies.push(tampered);
    let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();

    let mut one_step = keyper(&c, 0);
    let expected = one_step.handle_ciphertexts(&refs, &mut rng(3));

    let mut split = keyper(&c, 0);
    let validator = split.validator();
    let owned = bodies.clone();
    let run = std::thread::spawn(move || {
        let refs: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        validator.validate(&refs, |ids| vec![false; ids.len()], &mut rng(3))
    })
    .join()
    .unwrap();
    assert_eq!(split.accept(run), expected);
    assert_eq!(split.stats(), one_step.stats());
    assert_eq!((split.stats().validated, split.stats().invalid), (4, 1));

    // A held id is skipped: reported valid, not checked, not counted again.
    let skipped = split.validator().validate(
        &refs[..1],
        |ids| ids.iter().map(|id| *id == cts[0].id()).collect(),
        &mut rng(4),
    );
    assert_eq!(split.accept(skipped), vec![Ok(cts[0].id())]);
    assert_eq!(split.stats().validated, 4);

    let ct_refs: Vec<&Ciphertext> = cts.iter().collect();
    let signed = sequencer().finalize(commitment(&c, 3, &ct_refs)).unwrap();
    one_step.handle_commitment(signed.clone()).unwrap();
    split.handle_commitment(signed).unwrap();
    let (a, _) = drive(&mut one_step, &mut Vec::new());
    let (b, _) = drive(&mut split, &mut Vec::new());
    assert_eq!(a, b, "the same signed batch");
    assert_eq!(a.len(), 1);
}

#[test]
fn the_validated_set_is_bounded() {
    let c = committee();
    let cts: Vec<Ciphertext> = (1..=4).map(|n| encrypt(&c, n)).collect();
    let mut k = KeyperMachine::new(
        c.pks.clone(),
        share(&c, 0),
        c.identities[0].clone(),
        sequencer().verifier(),
        KeyperConfig { max_validated: std::num::NonZeroUsize::new(2).unwrap() },
    )
    .unwrap();
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    validate(&mut k, &refs);
    assert!(!k.holds(&cts[0].id()) && !k.holds(&cts[1].id()));
    assert!(k.holds(&cts[2].id()) && k.holds(&cts[3].id()));
    assert_eq!(k.stats().dropped, 2);
}

#[test]
fn fallback_round_rescales_for_another_responder_set() {
    let c = committee();
    let cts: Vec<Ciphertext> = (1..=3).map(|n| encrypt(&c, n)).collect();
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    let signed = sequencer().finalize(commitment(&c, 9, &refs)).unwrap();
    let order = ordered(&signed.message, &cts);
    let k1 = KeyperIndex::new(1).unwrap();
    let k3 = KeyperIndex::new(3).unwrap();
    let set = ResponderSet::new(&c.pks, vec![k1, k3]).unwrap();
    let mut batches = Vec::new();
    for i in [0usize, 2] {
        let mut k = keyper(&c, i);
        validate(&mut k, &refs);
        assert_eq!(
            k.handle_rescale(Slot(9), set.clone()).unwrap_err(),
            SequencerError::NotReleased(Slot(9))
        );
        k.handle_commitment(signed.clone()).unwrap();
        drive(&mut k, &mut Vec::new());
        k.handle_rescale(Slot(9), set.clone()).unwrap();
        let (sent, _) = drive(&mut k, &mut Vec::new());
        assert_eq!(sent[0].message.scaled_for.as_ref(), Some(&set));
        batches.push(c.pks.verify_share_batch(&sent[0]).unwrap());
    }
    let block = decrypt_block(&c.pks, Slot(9), &order, &batches, &mut rng(4)).unwrap();
    assert!(block.fast_path);
    assert!(block.outcomes.iter().all(|o| matches!(o, DecryptOutcome::Plaintext(_))));
    // A set that leaves this keyper out is refused.
    let mut k2 = keyper(&c, 1);
    assert!(matches!(k2.handle_rescale(Slot(9), set), Err(SequencerError::InvalidResponders(_))));
}

#[test]
fn commitment_json_and_signing_bytes_are_stable() {
    let c = committee();
    let ct = encrypt(&c, 1);
    let commitment = commitment(&c, 1, &[&ct]);
    let json = serde_json::to_string(&commitment).unwrap();
    assert!(json.contains("\"outcome_hash\":\"0x0101"));
    assert_eq!(serde_json::from_str::<Commitment>(&json).unwrap(), commitment);
    use veil_primitives::SignedMessage;
    let bytes = commitment.signing_bytes();
    assert!(bytes.starts_with(&[0, 0, 0, 18]));
    assert_eq!(&bytes[4..22], b"veil/commitment/v1");
    let mut other = commitment.clone();
    other.blocks[0].rollup = RollupId(5);
    assert_ne!(other.id(), commitment.id());
}

#[test]
fn the_commitment_follows_the_auction_outcome() {
    use std::collections::HashMap;
    use veil_auction::{public_key, Auction, AuctionConfig, Bid, RollupBlock};
    use veil_primitives::{TxId, TxMeta};

    let c = committee();
    let chain = c.pks.chain_id();
    let mut auction = Auction::new(AuctionConfig { chain_id: chain, ..AuctionConfig::default() });
    register_rollups(&mut auction, &[(0, 10), (1, 100), (2, 50)], Slot(1));
    let builder = SigningKey::from_bytes(&[2; 32]);
    auction.deposit(public_key(&builder), Amount(10_000)).unwrap();
    auction.open_slot(Slot(1), 1_000).unwrap();
    let cts: Vec<Ciphertext> = (1..=4).map(|n| encrypt(&c, n)).collect();
    let pool: HashMap<TxId, TxMeta> = cts.iter().map(|ct| (ct.id(), *ct.ad())).collect();
    // The builder buys rollup 1 only; rollup 0 gets a fallback block, rollup 2 stays empty.
    let mine: Vec<TxId> =
        cts.iter().filter(|ct| ct.ad().rollup == RollupId(1)).map(Ciphertext::id).collect();
    let bid = Bid {
        chain_id: chain,
        slot: Slot(1),
        builder: public_key(&builder),
        sequence: 1,
        amount: Amount(300),
        blocks: vec![RollupBlock {
            rollup: RollupId(1),
            ciphertexts: mine.clone(),
            plaintext: vec![],
        }],
    };
    auction.submit_bid(bid.sign(&builder), &pool, 500).unwrap();
    let pending: Vec<(TxId, TxMeta)> = pool.iter().map(|(id, m)| (*id, *m)).collect();
    let outcome = auction.close_slot(Slot(1), 1_000, &pending).unwrap();
    let commitment = Commitment::from_outcome(&outcome, c.pks.eon());
    assert_eq!(commitment.slot, Slot(1));
    assert_eq!(commitment.outcome_hash, outcome.hash());
    let rollups: Vec<RollupId> = commitment.blocks.iter().map(|b| b.rollup).collect();
    assert_eq!(rollups, vec![RollupId(0), RollupId(1)], "sorted; the empty rollup 2 left out");
    let sold = &commitment.blocks[1];
    assert_eq!(sold.winner, Some(public_key(&builder)));
    assert_eq!(sold.payment, Amount(300));
    assert_eq!(sold.ciphertexts, mine);
    let fallback = &commitment.blocks[0];
    assert_eq!((fallback.winner, fallback.payment), (None, Amount::ZERO));
    assert_eq!(fallback.ciphertexts.len(), 2);
    assert_eq!(commitment.len(), 4);
}

/// Registers rollups `(id, reserve)` with a standard policy, effective from `effective`.
fn register_rollups(auction: &mut veil_auction::Auction, rollups: &[(u32, u128)], effective: Slot) {
    use veil_auction::{public_key, RevenuePolicy, RollupChange, RollupConfig, RollupUpdate};
    let admin = SigningKey::from_bytes(&[1; 32]);
    for &(rollup, reserve) in rollups {
        let config = RollupConfig {
            reserve: Amount(reserve),
            gas_limit: 1_000_000,
            policy: RevenuePolicy::standard(8_000, 1_500, 500, public_key(&admin)).unwrap(),
            active: true,
        };
        let update = RollupUpdate {
            chain_id: auction.config().chain_id,
            rollup: RollupId(rollup),
            nonce: 1,
            effective,
            change: RollupChange::Register { admin: public_key(&admin), config },
        };
        auction.apply_rollup_update(&update.sign(&admin)).unwrap();
    }
}
