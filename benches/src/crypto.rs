//! The `crypto` suite: Veil's threshold encryption beside threshold_crypto 0.4, the library
//! the design card names and a user would otherwise reach for.
//!
//! Both sides get the same cores: where Veil parallelises over ciphertexts with rayon, the
//! baseline is run with rayon over ciphertexts too, so the ratio measures the construction
//! and its batching, not the thread count.

use std::time::{Duration, Instant};

use anyhow::ensure;
use rayon::prelude::*;
use veil_crypto::testing;
use veil_crypto::{
    decrypt_block, BlockCombiner, Ciphertext, DecryptOutcome, ShareBatch, VerifiedShareBatch,
};
use veil_primitives::Slot;

use crate::fixtures::{self, payload, N, PAYLOAD, T};
use crate::report::{Better, Figure, Goal, Reporter};

const SUITE: &str = "crypto";
const BLOCK: usize = 1000;

/// Runs the crypto suite: `encrypt_512b`, `admission_verify_batch`, `keyper_shares_1000`,
/// `decrypt_block_1000`, plus two informational figures (share batch verification and the
/// blame path).
pub fn run(quick: bool, reporter: &mut Reporter) -> anyhow::Result<()> {
    let reps = if quick { 3 } else { 9 };
    reporter.note(&format!(
        "crypto suite: n={N}, t={T} ({} shares decrypt), {PAYLOAD} B payloads, {} rayon threads, median of {reps} runs",
        T + 1,
        rayon::current_num_threads()
    ));
    let f = fixtures::Crypto::new(BLOCK);
    let refs: Vec<&Ciphertext> = f.cts.iter().collect();

    encrypt_case(&f, quick, reps, reporter);
    admission_case(&f, quick, reps, reporter)?;
    shares_case(&f, &refs, quick, reps, reporter)?;
    decrypt_case(&f, &refs, quick, reps, reporter)?;
    Ok(())
}

/// Median wall time of `reps` runs of `f`, after one warm-up run.
fn median<T>(reps: usize, mut f: impl FnMut() -> T) -> Duration {
    std::hint::black_box(f());
    let mut times: Vec<Duration> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn encrypt_case(f: &fixtures::Crypto, quick: bool, reps: usize, reporter: &mut Reporter) {
    let c = &f.committee;
    let count = if quick { 100 } else { 400 };
    let mut rng = testing::rng(3);
    let ad = c.ad(1, 100);
    let msg = payload(0);
    let ours = median(reps, || {
        for _ in 0..count {
            std::hint::black_box(c.pks.encrypt(&ad, &msg, &mut rng).expect("valid"));
        }
    });
    let pk = f.baseline_pks.public_key();
    let base = median(reps, || {
        for _ in 0..count / 4 {
            std::hint::black_box(pk.encrypt(&msg));
        }
    });
    reporter.record(Figure {
        suite: SUITE,
        case: "encrypt_512b".into(),
        unit: "us",
        ours: ours.as_secs_f64() * 1e6 / count as f64,
        baseline: Some(base.as_secs_f64() * 1e6 / (count / 4) as f64),
        baseline_name: "threshold_crypto 0.4 PublicKey::encrypt, one thread".into(),
        better: Better::Lower,
        goal: Some(Goal::at_most(300.0)),
        unmet: None,
    });
}

fn admission_case(
    f: &fixtures::Crypto,
    quick: bool,
    reps: usize,
    reporter: &mut Reporter,
) -> anyhow::Result<()> {
    let (c, cts) = (&f.committee, &f.cts);
    let wire: Vec<&[u8]> = cts.iter().map(Ciphertext::as_bytes).collect();
    let mut rng = testing::rng(4);
    let mut bad = 0usize;
    let ours = median(reps, || {
        let decoded: Vec<Ciphertext> = Ciphertext::decode_many(&wire)
            .into_iter()
            .map(|r| r.expect("valid encoding"))
            .collect();
        let refs: Vec<&Ciphertext> = decoded.iter().collect();
        bad += c.pks.verify_batch(&refs, &mut rng).len();
    });
    ensure!(bad == 0, "valid ciphertexts failed the batch check");

    let sample = if quick { 100 } else { 400 };
    let tc_cts = f.baseline_ciphertexts(sample);
    let mut ok = true;
    let base = median(reps.min(3), || {
        ok &= tc_cts.par_iter().all(threshold_crypto::Ciphertext::verify);
    });
    ensure!(ok, "threshold_crypto ciphertexts failed to verify");
    reporter.record(Figure {
        suite: SUITE,
        case: "admission_verify_batch".into(),
        unit: "tx/s",
        ours: cts.len() as f64 / ours.as_secs_f64(),
        baseline: Some(sample as f64 / base.as_secs_f64()),
        baseline_name: "threshold_crypto 0.4 Ciphertext::verify one by one, rayon over ciphertexts"
            .into(),
        better: Better::Higher,
        goal: Some(Goal::at_least(20_000.0)),
        unmet: None,
    });
    reporter.note(&format!(
        "  admission_verify_batch: {} ciphertexts per batch, decoding from bytes included",
        cts.len()
    ));
    Ok(())
}

fn shares_case(
    f: &fixtures::Crypto,
    refs: &[&Ciphertext],
    quick: bool,
    reps: usize,
    reporter: &mut Reporter,
) -> anyhow::Result<()> {
    let c = &f.committee;
    let responders = c.pks.default_responders();
    let ours = median(reps, || {
        ShareBatch::create(&c.shares[0], &c.identities[0], Slot(1), refs, Some(&responders))
            .expect("member")
    });

    let sample = if quick { 100 } else { 250 };
    let tc_cts = f.baseline_ciphertexts(sample);
    let share = f.baseline_sks.secret_key_share(0usize);
    let base = median(reps.min(3), || {
        tc_cts.par_iter().map(|ct| share.decrypt_share(ct).expect("valid")).collect::<Vec<_>>()
    });
    let no_verify = median(reps.min(3), || {
        tc_cts.par_iter().map(|ct| share.decrypt_share_no_verify(ct)).collect::<Vec<_>>()
    });
    let scale = refs.len() as f64 / sample as f64;
    reporter.record(Figure {
        suite: SUITE,
        case: "keyper_shares_1000".into(),
        unit: "ms",
        ours: ms(ours),
        baseline: Some(ms(base) * scale),
        baseline_name: format!(
            "threshold_crypto 0.4 decrypt_share (verifies, then shares), rayon; {sample} measured, scaled to {}",
            refs.len()
        ),
        better: Better::Lower,
        goal: Some(Goal::at_most(50.0)),
        unmet: None,
    });
    reporter.note(&format!(
        "  keyper_shares_1000: ours includes Lagrange pre-scaling and the ed25519-signed batch; \
         threshold_crypto decrypt_share_no_verify would take {:.1} ms",
        ms(no_verify) * scale
    ));
    Ok(())
}

fn decrypt_case(
    f: &fixtures::Crypto,
    refs: &[&Ciphertext],
    quick: bool,
    reps: usize,
    reporter: &mut Reporter,
) -> anyhow::Result<()> {
    let c = &f.committee;
    let slot = Slot(1);
    let signed = f.signed_batches(slot);
    let verify = median(reps, || {
        signed
            .iter()
            .map(|b| c.pks.verify_share_batch(b).expect("valid batch"))
            .collect::<Vec<VerifiedShareBatch>>()
    });
    let batches: Vec<VerifiedShareBatch> =
        signed.iter().map(|b| c.pks.verify_share_batch(b)).collect::<Result<_, _>>()?;
    let mut rng = testing::rng(5);
    let mut all_ok = true;
    let ours = median(reps, || {
        let block = decrypt_block(&c.pks, slot, refs, &batches, &mut rng).expect("enough shares");
        all_ok &= block.fast_path
            && block.blamed.is_empty()
            && block.outcomes.iter().all(|o| matches!(o, DecryptOutcome::Plaintext(_)));
    });
    ensure!(all_ok, "block did not decrypt on the fast path");

    // Baseline: per ciphertext, verify each of the t+1 shares (pairings), then combine.
    let sample = if quick { 4 } else { 16 };
    let tc_cts = f.baseline_ciphertexts(sample);
    let keyper_ids: Vec<usize> = (0..=usize::from(T)).collect();
    let tc_shares: Vec<Vec<(usize, threshold_crypto::DecryptionShare)>> = tc_cts
        .iter()
        .map(|ct| {
            keyper_ids
                .iter()
                .map(|&i| (i, f.baseline_sks.secret_key_share(i).decrypt_share_no_verify(ct)))
                .collect()
        })
        .collect();
    let mut base_ok = true;
    let base = median(reps.min(3), || {
        base_ok &= tc_cts.par_iter().zip(&tc_shares).all(|(ct, shares)| {
            shares
                .iter()
                .all(|(i, s)| f.baseline_pks.public_key_share(*i).verify_decryption_share(s, ct))
                && f.baseline_pks.decrypt(shares.iter().map(|(i, s)| (*i, s)), ct).is_ok()
        });
    });
    ensure!(base_ok, "threshold_crypto baseline failed to decrypt");
    reporter.record(Figure {
        suite: SUITE,
        case: "decrypt_block_1000".into(),
        unit: "ms",
        ours: ms(ours),
        baseline: Some(ms(base) * refs.len() as f64 / sample as f64),
        baseline_name: format!(
            "threshold_crypto 0.4 per ciphertext: verify {} shares + combine + decrypt, rayon; {sample} measured, scaled to {}",
            T + 1,
            refs.len()
        ),
        better: Better::Lower,
        goal: Some(Goal::at_most(25.0)),
        unmet: None,
    });
    // What is left on the release path when the last batch arrives at a sequencer: the
    // combiner (made when the slot closed, its Σρ·U done, every batch summed as it came)
    // only checks and opens.
    let responders = c.pks.default_responders();
    let mut combiner = BlockCombiner::new(&c.pks, slot, refs, responders, &mut rng)?;
    for b in &batches {
        combiner.offer(b);
    }
    ensure!(combiner.finish(&c.pks, refs).is_some(), "the combiner did not conclude");
    let finish = median(reps, || combiner.finish(&c.pks, refs).expect("concludes"));
    reporter.record(Figure {
        suite: SUITE,
        case: "combiner_finish_1000".into(),
        unit: "ms",
        ours: ms(finish),
        baseline: Some(ms(ours)),
        baseline_name: "decrypt_block of the same block and batches (all the work at once)".into(),
        better: Better::Lower,
        goal: None,
        unmet: None,
    });
    reporter.record(Figure {
        suite: SUITE,
        case: "share_batches_verify_1000".into(),
        unit: "ms",
        ours: ms(verify),
        baseline: None,
        baseline_name: format!(
            "{} signed batches: ed25519 + share decoding (before decrypt_block)",
            T + 1
        ),
        better: Better::Lower,
        goal: None,
        unmet: None,
    });

    // The blame path: one responder's batch has a wrong share; it is found, excluded, and the
    // block is recombined from a replacement keyper (shares rescaled for the new set).
    let mut faulty = signed.clone();
    let mut wrong = faulty[0].message.clone();
    wrong.shares[3].0 = wrong.shares[4].0;
    faulty[0] = veil_primitives::Signed::sign(wrong, &c.identities[0]);
    let mut with_spare: Vec<VerifiedShareBatch> =
        faulty.iter().map(|b| c.pks.verify_share_batch(b)).collect::<Result<_, _>>()?;
    let spare = usize::from(T) + 1;
    with_spare.push(c.pks.verify_share_batch(&ShareBatch::create(
        &c.shares[spare],
        &c.identities[spare],
        slot,
        refs,
        None,
    )?)?);
    let mut blamed_ok = true;
    let blame = median(reps.min(3), || {
        let block =
            decrypt_block(&c.pks, slot, refs, &with_spare, &mut rng).expect("enough shares");
        blamed_ok &= block.blamed.len() == 1;
    });
    ensure!(blamed_ok, "the faulty keyper was not blamed");
    reporter.record(Figure {
        suite: SUITE,
        case: "decrypt_block_1000_blame".into(),
        unit: "ms",
        ours: ms(blame),
        baseline: None,
        baseline_name:
            "one wrong share: per-keyper checks, blame, recombine for a new set (12-point MSM per ciphertext)".into(),
        better: Better::Lower,
        goal: None,
        unmet: None,
    });
    Ok(())
}
