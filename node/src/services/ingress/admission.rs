//! The admission task: batches requests, runs the cryptographic check off the reactor, applies
//! the pool's rules under its lock, hands rows to the store, and answers once they are durable.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use veil_mempool::error::Rejection;
use veil_mempool::pool::{Admitted, Candidate, FeedCursor};
use veil_mempool::validate::Submission;
use veil_primitives::{ErrorCode, SignatureBytes, TxId};
use veil_storage::StoredTx;
use veil_wire::ingress::{Ack, ServerFrame};

use super::connection::Request;
use super::departures::Departure;
use super::Shared;
use crate::metrics::IngressStats;

/// Takes what has queued (up to `max_batch`), checks it off the reactor, admits it, and
/// repeats. One batch is checked at a time, on all cores (rayon), while the next accumulates:
/// under light load batches are small and answered quickly; under heavy load they grow, and
/// the batched proof check's fixed cost is spread over more transactions. Checking several
/// small batches at once instead makes them compete for the same two cores and pay that fixed
/// cost each (see the README's "Where the time goes").
pub(super) async fn admission_loop(shared: Arc<Shared>, mut rx: mpsc::Receiver<Request>) {
    let mut batch = Vec::with_capacity(shared.config.max_batch);
    while rx.recv_many(&mut batch, shared.config.max_batch).await > 0 {
        let requests = std::mem::take(&mut batch);
        if let Some((requests, results)) = check_batch(&shared, requests).await {
            admit_batch(&shared, requests, results);
        }
    }
}

/// Decodes and checks a batch off the reactor. Answers the batch itself (and returns `None`)
/// if the check could not run.
async fn check_batch(
    shared: &Arc<Shared>,
    requests: Vec<Request>,
) -> Option<(Vec<Request>, Vec<Result<Candidate, Rejection>>)> {
    let flat: Vec<&Submission> = requests.iter().flat_map(|r| r.parts.iter()).collect();
    // Resubmissions of pending bytes need no check: replaying valid ciphertexts costs a hash,
    // computed here, outside the pool's lock.
    let ids: Vec<TxId> = flat.iter().map(|s| veil_crypto::tx_id(&s.body)).collect();
    let known: Vec<Option<Candidate>> = {
        let pool = shared.pool();
        ids.iter().zip(&flat).map(|(id, s)| pool.resubmission(id, s.payer_signature)).collect()
    };
    let unknown: Vec<Submission> =
        flat.iter().zip(&known).filter(|(_, k)| k.is_none()).map(|(s, _)| (*s).clone()).collect();
    let validator = shared.validator.clone();
    let checked = if unknown.is_empty() {
        Ok(Vec::new())
    } else {
        let gate_shared = shared.clone();
        tokio::task::spawn_blocking(move || {
            // The payer must be funded before its ciphertext costs a proof check.
            let gate = |meta: &veil_primitives::TxMeta| gate_shared.pool().check_funded(meta);
            validator.validate(&unknown, &gate, &mut rand_core::OsRng)
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
    let results = known
        .into_iter()
        .map(|k| match k {
            Some(c) => Ok(c),
            None => checked.next().unwrap_or_else(|| {
                Err(Rejection::new(ErrorCode::InvalidCiphertext, "validator gave no result"))
            }),
        })
        .collect();
    Some((requests, results))
}

fn admit_batch(
    shared: &Arc<Shared>,
    requests: Vec<Request>,
    results: Vec<Result<Candidate, Rejection>>,
) {
    let now = Instant::now();
    let mut results = results.into_iter();
    let mut answers: Vec<(Request, Result<Admitted, Rejection>)> =
        Vec::with_capacity(requests.len());
    let mut rows = Vec::new();
    let mut deletes = Vec::new();
    let receipt;
    let durable_end;
    {
        let mut pool = shared.pool();
        for r in requests {
            let mine: Vec<_> = results.by_ref().take(r.parts.len()).collect();
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
                    rows.push(StoredTx {
                        seq: *seq,
                        candidate: Candidate {
                            id: *v.id,
                            meta: *v.meta,
                            ephemeral_key: *v.ephemeral_key,
                            body: v.body.clone(),
                            payer_signature,
                        },
                    });
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
    let shared = shared.clone();
    tokio::spawn(async move {
        let stored = matches!(receipt.await, Ok(Ok(())));
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
            let mut pool = shared.pool();
            for (_, outcome) in &answers {
                if let Ok(a) = outcome {
                    pool.withdraw(&a.inserted);
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
            IngressStats::inc(&shared.stats.answered);
            r.answer(frame);
        }
    });
}
