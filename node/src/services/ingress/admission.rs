//! The admission task: batches requests, runs the cryptographic check off the reactor, applies
//! the pool's rules under its lock, hands rows to the store, and answers once they are durable.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use quinn::VarInt;
use tokio::sync::mpsc;
use veil_mempool::abuse::{Class, Verdict};
use veil_mempool::admission::replayed;
use veil_mempool::error::Rejection;
use veil_mempool::pool::{Admitted, Candidate, FeedCursor};
use veil_mempool::validate::Submission;
use veil_primitives::{ErrorCode, SignatureBytes, TxId};
use veil_storage::StoredTx;
use veil_wire::ingress::{Ack, ServerFrame};

use super::connection::Request;
use super::departures::Departure;
use super::{Shared, CLOSE_ABUSE};
use crate::metrics::IngressStats;

/// Takes what has queued (up to `max_batch`), checks it off the reactor, admits it, and
/// repeats. One batch is checked at a time, on all cores (rayon), while the next accumulates:
/// under light load batches are small and answered quickly; under heavy load they grow, and
/// the batched proof check's fixed cost is spread over more transactions. Checking several
/// small batches at once instead makes them compete for the same two cores and pay that fixed
/// cost each (see the README's "Where the time goes").
pub(super) async fn admission_loop(shared: Arc<Shared>, mut rx: mpsc::Receiver<Request>) {
    // Held until the owner opens it (a sequencer, once the pool mirrors its ledger).
    if shared.admission_open.subscribe().wait_for(|open| *open).await.is_err() {
        return;
    }
    let mut batch = Vec::with_capacity(shared.config.max_batch);
    while rx.recv_many(&mut batch, shared.config.max_batch).await > 0 {
        let requests = std::mem::take(&mut batch);
        let taken = Instant::now();
        for r in &requests {
            stage(&shared, 0, taken.saturating_duration_since(r.received));
        }
        if let Some((requests, results, origins)) = check_batch(&shared, requests).await {
            for _ in &requests {
                stage(&shared, 1, taken.elapsed());
            }
            admit_batch(&shared, requests, results, &origins);
        }
    }
}

/// Checks of fewer parts than this run on one thread ([`single_thread`]).
const PARALLEL_CHECK_FROM: usize = 64;

/// A rayon pool of one thread: parallel iterators inside it run sequentially, without the
/// fork-joins and the spinning of idle workers that small batches pay for on the global pool.
fn single_thread() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "veil-check".into())
            .build()
            .expect("a one-thread pool")
    })
}

/// Counts one request's time in a stage ([`IngressStats::stage_latency`]).
fn stage(shared: &Shared, stage: usize, took: std::time::Duration) {
    shared.stats.stage_latency[stage].record(took.as_micros() as u64);
}

/// Where a part's candidate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Checked now.
    Checked,
    /// A resubmission of pending bytes, recognised by its id: not checked.
    Pending,
    /// A replay of a committed transaction, recognised by its id and decoded: not checked.
    Spent,
}

/// Decodes and checks a batch off the reactor. Returns the requests, one result per part, and
/// per part where it came from (checked now, or recognised by its id as pending or committed
/// bytes). Answers the batch itself (and returns `None`) if the check could not run.
///
/// The batched proof check is split by the trust class of each request's connection
/// ([`veil_mempool::abuse`]): trusted connections in one batch, untrusted ones in another,
/// each suspect connection alone, so that failing proofs bisect only their sender's batch.
/// Afterwards each failing proof counts against its connection and suspends its payer.
async fn check_batch(
    shared: &Arc<Shared>,
    requests: Vec<Request>,
) -> Option<(Vec<Request>, Vec<Result<Candidate, Rejection>>, Vec<Origin>)> {
    let groups: Vec<(Class, u64)> = {
        let abuse = shared.abuse();
        requests
            .iter()
            .map(|r| match abuse.class(r.conn) {
                Class::Suspect => (Class::Suspect, r.conn),
                other => (other, 0),
            })
            .collect()
    };
    let flat: Vec<&Submission> = requests.iter().flat_map(|r| r.parts.iter()).collect();
    let flat_group: Vec<(Class, u64)> = requests
        .iter()
        .zip(&groups)
        .flat_map(|(r, g)| std::iter::repeat_n(*g, r.parts.len()))
        .collect();
    // Resubmissions of pending bytes need no check: replaying valid ciphertexts costs a hash,
    // computed here, outside the pool's lock. Nor do replays of committed ones (answered as
    // duplicates whatever their payer's balance is now): they cost a decoding, also outside
    // the lock.
    let ids: Vec<TxId> = flat.iter().map(|s| veil_crypto::tx_id(&s.body)).collect();
    let (known, spent): (Vec<Option<Candidate>>, Vec<bool>) = {
        let pool = shared.pool();
        ids.iter()
            .zip(&flat)
            .map(|(id, s)| match pool.resubmission(id, s.payer_signature) {
                Some(c) => (Some(c), false),
                None => (None, pool.is_spent(id)),
            })
            .unzip()
    };
    let known: Vec<Option<(Candidate, Origin)>> = known
        .into_iter()
        .zip(spent)
        .zip(&flat)
        .map(|((k, spent), s)| match k {
            Some(c) => Some((c, Origin::Pending)),
            None if spent => replayed(&s.body, s.payer_signature).map(|c| (c, Origin::Spent)),
            None => None,
        })
        .collect();
    // The submissions to check, by batch: (position in `flat`, submission).
    let mut batches: BTreeMap<(Class, u64), Vec<(usize, Submission)>> = BTreeMap::new();
    for (i, (s, k)) in flat.iter().zip(&known).enumerate() {
        if k.is_none() {
            batches.entry(flat_group[i]).or_default().push((i, (*s).clone()));
        }
    }
    let validator = shared.validator.clone();
    let checked = if batches.is_empty() {
        Ok(Vec::new())
    } else {
        let gate_shared = shared.clone();
        tokio::task::spawn_blocking(move || {
            // A suspended payer, or one that cannot pay, costs no proof check.
            let gate = |meta: &veil_primitives::TxMeta| {
                if gate_shared.abuse().payer_suspended(&meta.fee_payer, Instant::now()) {
                    return Err(Rejection::new(
                        ErrorCode::Suspended,
                        "the fee payer signed a failing proof recently",
                    ));
                }
                gate_shared.pool().check_funded(meta)
            };
            let mut out: Vec<(usize, Result<Candidate, Rejection>)> = Vec::new();
            let total: usize = batches.values().map(Vec::len).sum();
            for batch in batches.into_values() {
                let (positions, subs): (Vec<usize>, Vec<Submission>) = batch.into_iter().unzip();
                let check = || validator.validate(&subs, &gate, &mut rand_core::OsRng);
                // A small batch is checked on this thread alone: spread over all cores its
                // fork-joins cost more CPU than they save (README, "Where the time goes"),
                // and the other core stays with the reactors.
                let results = if total < PARALLEL_CHECK_FROM {
                    single_thread().install(check)
                } else {
                    check()
                };
                out.extend(positions.into_iter().zip(results));
            }
            out.sort_by_key(|(i, _)| *i);
            out.into_iter().map(|(_, r)| r).collect::<Vec<_>>()
        })
        .await
    };
    let Ok(checked) = checked else {
        for r in requests {
            let id = r.request_id;
            r.answer(ServerFrame::reject(id, ErrorCode::ShuttingDown, None, ""));
        }
        return None;
    };
    let mut checked = checked.into_iter();
    let mut origins = vec![Origin::Checked; known.len()];
    let results: Vec<Result<Candidate, Rejection>> = known
        .into_iter()
        .enumerate()
        .map(|(i, k)| match k {
            Some((c, origin)) => {
                origins[i] = origin;
                Ok(c)
            }
            None => checked.next().unwrap_or_else(|| {
                Err(Rejection::new(ErrorCode::InvalidCiphertext, "validator gave no result"))
            }),
        })
        .collect();
    account_proofs(shared, &requests, &results, &origins);
    Some((requests, results, origins))
}

/// Counts each connection's good and failing proofs ([`veil_mempool::abuse::Abuse`]): a failing one suspends its
/// payer and isolates the connection, and closes it once its allowance is spent (a failing
/// proof is never an honest client's mistake).
fn account_proofs(
    shared: &Shared,
    requests: &[Request],
    results: &[Result<Candidate, Rejection>],
    origins: &[Origin],
) {
    let now = Instant::now();
    let mut at = 0;
    let mut to_close = Vec::new();
    {
        let mut abuse = shared.abuse();
        for r in requests {
            let mut good = 0;
            for (j, part) in r.parts.iter().enumerate() {
                if origins[at + j] != Origin::Checked {
                    continue;
                }
                match &results[at + j] {
                    Ok(_) => good += 1,
                    Err(e) if e.code == ErrorCode::BadProof => {
                        // The bytes decoded already (no curve work but on-curve checks): read the payer.
                        let payer = veil_crypto::Ciphertext::from_bytes(&part.body)
                            .ok()
                            .map(|c| c.ad().fee_payer);
                        if abuse.record_bad_proof(r.conn, payer, now) == Verdict::Close {
                            abuse.record_abusive_close(r.ip, now);
                            to_close.push(r.connection.clone());
                        }
                    }
                    Err(_) => {}
                }
            }
            abuse.record_good(r.conn, good);
            at += r.parts.len();
        }
    }
    for c in to_close {
        IngressStats::inc(&shared.stats.abuse_closed);
        c.close(VarInt::from_u32(CLOSE_ABUSE), b"too many ciphertexts with failing proofs");
    }
}

fn admit_batch(
    shared: &Arc<Shared>,
    requests: Vec<Request>,
    results: Vec<Result<Candidate, Rejection>>,
    origins: &[Origin],
) {
    let now = Instant::now();
    let mut results = results.into_iter();
    let mut origins = origins.iter();
    let mut answers: Vec<(Request, Result<Admitted, Rejection>)> =
        Vec::with_capacity(requests.len());
    let mut rows = Vec::new();
    let mut deletes = Vec::new();
    let receipt;
    let durable_end;
    {
        let mut pool = shared.pool();
        for r in requests {
            // A resubmission whose original left the pool since it was recognised is a new
            // admission: its carried signature is checked now. A replay whose committed
            // original was forgotten since is refused as expired.
            let mine: Vec<_> = results
                .by_ref()
                .zip(origins.by_ref())
                .take(r.parts.len())
                .map(|(res, origin)| match origin {
                    Origin::Checked => res,
                    Origin::Pending => res.and_then(|c| pool.recheck_resubmission(c)),
                    Origin::Spent => res.and_then(|c| pool.recheck_replay(c)),
                })
                .collect();
            // The pool keeps no signatures; the rows take them to storage.
            let signatures: Vec<(TxId, SignatureBytes)> =
                mine.iter().flatten().map(|c| (c.id, c.payer_signature)).collect();
            let outcome = pool.admit_checked(mine, r.bundle, r.deadline, now);
            if let Ok(a) = &outcome {
                for seq in &a.inserted {
                    let v = pool.get_seq(*seq).expect("just inserted");
                    let payer_signature = signatures
                        .iter()
                        .find(|(id, _)| id == v.id)
                        .map_or(SignatureBytes([0; 64]), |(_, s)| *s);
                    rows.push(StoredTx { seq: *seq, candidate: v.to_candidate(payer_signature) });
                }
                deletes.extend(a.evicted.iter().map(|(s, _)| *s));
                shared.routes().left_pool(a.evicted.iter().map(|(_, id)| id));
                let mut departures = shared.departures();
                departures.readmitted(&a.ids);
                let slot = pool.current_slot();
                departures.record(a.evicted.iter().map(|(_, id)| id), Departure::Evicted { slot });
            }
            answers.push((r, outcome));
        }
        durable_end = pool.next_seq();
        // Sent under the pool lock, so that storage sees rows in sequence order.
        receipt = shared.store.write(rows, deletes);
    }
    let admitted = Instant::now();
    for _ in &answers {
        stage(shared, 2, admitted.saturating_duration_since(now));
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        let stored = matches!(receipt.await, Ok(Ok(())));
        for _ in &answers {
            stage(&shared, 3, admitted.elapsed());
        }
        if stored {
            let mut pool = shared.pool();
            pool.mark_durable(durable_end);
            // Receipts go to the connection acked last for each id still pending (checked
            // under the pool lock, so that an eviction since admission cannot leave a route
            // behind).
            let mut routes = shared.routes();
            for (r, outcome) in &answers {
                if let Ok(a) = outcome {
                    let pending = a.ids.iter().filter(|id| pool.get(id).is_some()).copied();
                    routes.submitted(r.conn, pending);
                }
            }
            drop(routes);
            drop(pool);
            shared.feed_tx.send_replace(FeedCursor(durable_end.0));
        } else {
            // Nothing of the batch is stored: undo it in memory too, evictions included,
            // in reverse order (a later admission may have evicted what an earlier one
            // inserted).
            let mut pool = shared.pool();
            let mut departures = shared.departures();
            for (_, outcome) in answers.iter().rev() {
                if let Ok(a) = outcome {
                    pool.withdraw(a);
                    departures.readmitted(a.evicted.iter().map(|(_, id)| id));
                }
            }
        }
        for (r, outcome) in answers {
            let id = r.request_id;
            let frame = match outcome {
                Ok(a) if stored => {
                    ServerFrame::Ack(Ack { request_id: id, ids: a.ids, duplicate: a.duplicate })
                }
                Ok(_) => ServerFrame::reject(
                    id,
                    ErrorCode::StorageUnavailable,
                    None,
                    "durable write failed",
                ),
                Err(e) => ServerFrame::reject(id, e.code, e.part, e.detail),
            };
            let took = r.received.elapsed().as_micros() as u64;
            shared.stats.answer_us_total.fetch_add(took, std::sync::atomic::Ordering::Relaxed);
            shared.stats.answer_latency.record(took);
            IngressStats::inc(&shared.stats.answered);
            r.answer(frame);
        }
    });
}
