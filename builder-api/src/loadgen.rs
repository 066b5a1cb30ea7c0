//! A load generator: many connections, an optional target rate, latency percentiles.
//!
//! The ciphertexts are prepared (encrypted and signed by their fee payers) by the caller
//! before [`run`] (encryption costs far more than admission, and the point is to measure the
//! node), so the timed phase only sends bytes and waits for acks. The fee payers are
//! [`payer_keys`], derived from a public seed: a node that enforces fee accounts must have
//! them funded (genesis `[[fee_payers]]`, or bridge deposit notices).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use rayon::prelude::*;
use sha3::{Digest, Sha3_256};
use tokio::sync::Semaphore;
use veil_crypto::PublicKeySet;
use veil_primitives::{Amount, PublicKeyBytes, RollupId, Slot, TxId, TxMeta};
use veil_wire::client::{ClientConfig, IngressClient};
use veil_wire::error::ClientError;
use veil_wire::ingress::SignedCiphertext;

/// `count` fee-payer keys derived from `seed` (sha3-256 of the seed and the index): anyone
/// who knows the seed can fund them, and sign as them. For load tests and devnets only.
#[must_use]
pub fn payer_keys(seed: u64, count: usize) -> Vec<SigningKey> {
    (0..count.max(1))
        .map(|i| {
            let mut h = Sha3_256::new();
            h.update(b"veil/loadgen-payer");
            h.update(seed.to_be_bytes());
            h.update((i as u64).to_be_bytes());
            SigningKey::from_bytes(&h.finalize().into())
        })
        .collect()
}

/// Encrypts `count` distinct transactions in parallel, spread over `rollups`, each paid and
/// signed by one of `payers` in turn (so that no payer's quota is hit while `count` stays
/// below the quota times the number of payers).
///
/// # Panics
/// If `payers` is empty.
#[must_use]
pub fn prepare_transactions(
    pks: &PublicKeySet,
    count: usize,
    payload_size: usize,
    rollups: u32,
    payers: &[SigningKey],
) -> Vec<SignedCiphertext> {
    assert!(!payers.is_empty(), "at least one fee payer");
    let public: Vec<PublicKeyBytes> =
        payers.iter().map(veil_primitives::signed::public_key).collect();
    (0..count)
        .into_par_iter()
        .map(|i| {
            let payer = i % payers.len();
            let ad = TxMeta {
                chain_id: pks.chain_id(),
                eon: pks.eon(),
                rollup: RollupId(i as u32 % rollups.max(1)),
                fee_payer: public[payer],
                max_fee: Amount(1 + (i as u128 % 1000)),
                gas_limit: 21_000,
                expiry_slot: Slot(5_000),
                bundle: None,
            };
            let mut payload = vec![0u8; payload_size];
            payload[..8.min(payload_size)]
                .copy_from_slice(&(i as u64).to_be_bytes()[..8.min(payload_size)]);
            let ct = pks
                .encrypt(&ad, &payload, &mut rand_core::OsRng)
                .expect("the committee's own chain and eon, payload within bounds");
            crate::submit::sign(&ct, &payers[payer]).expect("signed by the payer it names")
        })
        .collect()
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// How to reach the ingress.
    pub client: ClientConfig,
    /// Concurrent connections.
    pub connections: usize,
    /// Target submissions per second over all connections; `None` sends as fast as the
    /// in-flight window allows (closed loop).
    pub rate: Option<f64>,
    /// Requests in flight per connection.
    pub window: usize,
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Requests sent.
    pub sent: u64,
    /// Acks received (new and duplicate).
    pub acked: u64,
    /// Rejections received.
    pub rejected: u64,
    /// Requests that failed in transport (connection lost, timeout).
    pub failed: u64,
    /// From the first send to the last answer.
    pub elapsed: Duration,
    /// Ack latencies in microseconds, sorted. With a target rate they are measured from the
    /// scheduled send time, so a stalled sender is not hidden (no coordinated omission).
    pub latencies_us: Vec<u64>,
    /// The ids acknowledged, in no particular order.
    pub acked_ids: Vec<TxId>,
}

impl LoadReport {
    /// Acks per second.
    #[must_use]
    pub fn ack_rate(&self) -> f64 {
        self.acked as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p`-th percentile (0..=100) of ack latency, in milliseconds.
    #[must_use]
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * (self.latencies_us.len() - 1) as f64).round() as usize;
        self.latencies_us[rank.min(self.latencies_us.len() - 1)] as f64 / 1000.0
    }
}

#[derive(Default)]
struct Tally {
    acked: u64,
    rejected: u64,
    failed: u64,
    latencies_us: Vec<u64>,
    ids: Vec<TxId>,
}

/// Sends every ciphertext of `txs` once, spread over the connections, and waits for every
/// answer. `progress` counts answers as they arrive (for a progress bar).
///
/// # Errors
/// [`ClientError`] if a connection cannot be established at the start. Failures later count
/// in [`LoadReport::failed`].
pub async fn run(
    config: LoadConfig,
    txs: Vec<SignedCiphertext>,
    progress: Arc<AtomicU64>,
) -> Result<LoadReport, ClientError> {
    let connections = config.connections.max(1);
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(Arc::new(IngressClient::connect(config.client.clone()).await?));
    }
    let total = txs.len();
    let mut per_conn: Vec<Vec<(usize, SignedCiphertext)>> = vec![Vec::new(); connections];
    for (i, tx) in txs.into_iter().enumerate() {
        per_conn[i % connections].push((i, tx));
    }
    let start = Instant::now();
    let rate = config.rate;
    let mut tasks = Vec::new();
    for (client, work) in clients.iter().cloned().zip(per_conn) {
        let window = Arc::new(Semaphore::new(config.window.max(1)));
        let progress = progress.clone();
        tasks.push(tokio::spawn(async move {
            let tally = Arc::new(std::sync::Mutex::new(Tally::default()));
            let mut inflight = Vec::with_capacity(work.len());
            for (i, tx) in work {
                let scheduled = match rate {
                    Some(r) => {
                        let at = start + Duration::from_secs_f64(i as f64 / r);
                        tokio::time::sleep_until(at.into()).await;
                        at
                    }
                    None => Instant::now(),
                };
                let Ok(permit) = window.clone().acquire_owned().await else { break };
                let send_time = if rate.is_some() { scheduled } else { Instant::now() };
                let client = client.clone();
                let tally = tally.clone();
                let progress = progress.clone();
                inflight.push(tokio::spawn(async move {
                    let r = client.submit(tx).await;
                    let latency = send_time.elapsed().as_micros() as u64;
                    drop(permit);
                    let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                    match r {
                        Ok(ack) => {
                            t.acked += 1;
                            t.latencies_us.push(latency);
                            t.ids.extend(ack.ids);
                        }
                        Err(ClientError::Rejected(_)) => t.rejected += 1,
                        Err(_) => t.failed += 1,
                    }
                    progress.fetch_add(1, Ordering::Relaxed);
                }));
            }
            for h in inflight {
                let _ = h.await;
            }
            Arc::try_unwrap(tally)
                .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
                .unwrap_or_default()
        }));
    }
    let mut report = LoadReport { sent: total as u64, ..LoadReport::default() };
    for t in tasks {
        if let Ok(t) = t.await {
            report.acked += t.acked;
            report.rejected += t.rejected;
            report.failed += t.failed;
            report.latencies_us.extend(t.latencies_us);
            report.acked_ids.extend(t.ids);
        }
    }
    report.elapsed = start.elapsed();
    report.latencies_us.sort_unstable();
    for c in clients {
        if let Ok(c) = Arc::try_unwrap(c) {
            c.close().await;
        }
    }
    Ok(report)
}
