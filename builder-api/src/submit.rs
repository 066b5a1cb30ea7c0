//! Encrypting, signing as fee payer, and submitting with reconnection and retries.
//!
//! Every ciphertext travels with its fee payer's signature over its id ([`sign`], see
//! `veil_primitives::payer`): the key named as `fee_payer` in the associated data signs, and
//! the ingress refuses a ciphertext whose signature does not verify. The payer's fee account
//! must hold the transaction's `max_fee`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use tokio::sync::Mutex;
use veil_crypto::{BundleRef, Ciphertext, PublicKeySet};
use veil_primitives::receipt::verify_receipt;
use veil_primitives::{BundleId, ChainId, PublicKeyBytes, SignedReceipt, TxId, TxMeta};
use veil_wire::client::{ClientConfig, IngressClient};
use veil_wire::error::ClientError;
use veil_wire::ingress::{Ack, SignedCiphertext};

use crate::error::SdkError;

/// Encrypts `payload` to the committee key `pks` with associated data `ad`.
///
/// # Errors
/// [`SdkError::Crypto`] if `ad` names another chain or eon than `pks`, or the payload is too
/// large.
pub fn encrypt(pks: &PublicKeySet, ad: &TxMeta, payload: &[u8]) -> Result<Ciphertext, SdkError> {
    Ok(pks.encrypt(ad, payload, &mut rand_core::OsRng)?)
}

/// Signs `ct` as its fee payer.
///
/// # Errors
/// [`SdkError::WrongPayer`] if `payer` is not the key `ct` names as its fee payer.
pub fn sign(ct: &Ciphertext, payer: &SigningKey) -> Result<SignedCiphertext, SdkError> {
    let named = ct.ad().fee_payer;
    if veil_primitives::signed::public_key(payer) != named {
        return Err(SdkError::WrongPayer(named));
    }
    let bytes = Bytes::copy_from_slice(ct.as_bytes());
    Ok(SignedCiphertext::sign(bytes, ct.ad().chain_id, payer))
}

/// Encrypts an atomic bundle: one `(associated data, payload)` per rollup. Sets each part's
/// bundle reference (`id`, index, count) and leaves the rest of each `ad` as given.
///
/// # Errors
/// [`SdkError::BadBundle`] for no parts or more than `u16::MAX`; [`SdkError::Crypto`] as in
/// [`encrypt`].
pub fn encrypt_bundle(
    pks: &PublicKeySet,
    id: BundleId,
    parts: &[(TxMeta, &[u8])],
) -> Result<Vec<Ciphertext>, SdkError> {
    let count = u16::try_from(parts.len()).map_err(|_| SdkError::BadBundle("too many parts"))?;
    if count == 0 {
        return Err(SdkError::BadBundle("no parts"));
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, (ad, payload))| {
            let mut ad = *ad;
            ad.bundle = Some(BundleRef { id, index: i as u16, count });
            encrypt(pks, &ad, payload)
        })
        .collect()
}

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in total (at least 1).
    pub attempts: u32,
    /// Wait before the first retry; doubles each time.
    pub initial_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 6,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// A reconnecting, retrying submitter. Share it behind an `Arc`; requests pipeline over one
/// connection.
#[derive(Debug)]
pub struct Submitter {
    config: ClientConfig,
    retry: RetryPolicy,
    client: Mutex<Option<Arc<IngressClient>>>,
}

impl Submitter {
    /// A submitter; it connects on first use.
    #[must_use]
    pub fn new(config: ClientConfig, retry: RetryPolicy) -> Submitter {
        Submitter { config, retry, client: Mutex::new(None) }
    }

    async fn connection(&self) -> Result<Arc<IngressClient>, ClientError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let c = Arc::new(IngressClient::connect(self.config.clone()).await?);
        *slot = Some(c.clone());
        Ok(c)
    }

    async fn drop_connection(&self, broken: &Arc<IngressClient>) {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, broken)) {
            *slot = None;
        }
    }

    /// Signs `ct` as its fee payer `payer` and submits it; returns its id once the server
    /// acknowledged it durably.
    ///
    /// # Errors
    /// [`SdkError::WrongPayer`] before sending if `payer` is not `ct`'s fee payer;
    /// [`SdkError::Rejected`] for a refusal, [`SdkError::Unreachable`] when retries run out,
    /// [`SdkError::WrongIds`] if the ack does not match.
    pub async fn submit(&self, ct: &Ciphertext, payer: &SigningKey) -> Result<TxId, SdkError> {
        self.submit_signed(sign(ct, payer)?).await
    }

    /// Submits a ciphertext its fee payer signed already.
    ///
    /// # Errors
    /// As [`Submitter::submit`].
    pub async fn submit_signed(&self, tx: SignedCiphertext) -> Result<TxId, SdkError> {
        let id = veil_crypto::tx_id(&tx.ciphertext);
        let ack = self
            .with_retry(|c| {
                let tx = tx.clone();
                async move { c.submit(tx).await }
            })
            .await?;
        if ack.ids != [id] {
            return Err(SdkError::WrongIds);
        }
        Ok(id)
    }

    /// Signs every part of an atomic bundle as `payer` (the fee payer of every part) and
    /// submits them; returns their ids once acknowledged.
    ///
    /// # Errors
    /// As [`Submitter::submit`].
    pub async fn submit_bundle(
        &self,
        parts: &[Ciphertext],
        payer: &SigningKey,
    ) -> Result<Vec<TxId>, SdkError> {
        let signed = parts.iter().map(|p| sign(p, payer)).collect::<Result<Vec<_>, _>>()?;
        self.submit_signed_bundle(signed).await
    }

    /// Submits a bundle whose parts their fee payers signed already (parts may have different
    /// payers).
    ///
    /// # Errors
    /// As [`Submitter::submit`].
    pub async fn submit_signed_bundle(
        &self,
        parts: Vec<SignedCiphertext>,
    ) -> Result<Vec<TxId>, SdkError> {
        let ids: Vec<TxId> = parts.iter().map(|p| veil_crypto::tx_id(&p.ciphertext)).collect();
        let ack = self
            .with_retry(|c| {
                let parts = parts.clone();
                async move { c.submit_bundle(parts).await }
            })
            .await?;
        if ack.ids != ids {
            return Err(SdkError::WrongIds);
        }
        Ok(ids)
    }

    /// Asks the ingress what it accepts now (the `Info` frame): the chain, the current slot,
    /// the eons, the minimum fee, every limit and the ciphertext versions it admits
    /// ([`veil_wire::ingress::ServerInfo::accepts_ciphertext_version`] with
    /// `veil_crypto::CIPHERTEXT_VERSION` tells whether this build's ciphertexts are).
    ///
    /// # Errors
    /// [`SdkError::Unreachable`] if no connection can be made.
    pub async fn server_info(&self) -> Result<veil_wire::ingress::ServerInfo, SdkError> {
        let unreachable = |last| SdkError::Unreachable { attempts: 1, last };
        let client = self.connection().await.map_err(unreachable)?;
        client.server_info().await.map_err(unreachable)
    }

    /// Waits up to `timeout` for the inclusion receipt of `tx`, which must have been submitted
    /// through this submitter: the node pushes a receipt only to the connection that
    /// submitted (or last resubmitted) the transaction, so a receipt is lost to this
    /// submitter if that connection broke since. The signature is not checked; see
    /// [`Submitter::wait_verified_receipt`].
    ///
    /// # Errors
    /// [`SdkError::ReceiptTimeout`], or [`SdkError::ReceiptConnectionClosed`] if the
    /// connection is gone.
    pub async fn wait_receipt(
        &self,
        tx: &TxId,
        timeout: Duration,
    ) -> Result<SignedReceipt, SdkError> {
        let client = self.client.lock().await.clone();
        let Some(client) = client else { return Err(SdkError::ReceiptConnectionClosed) };
        match client.wait_receipt(tx, timeout).await {
            Ok(r) => Ok(r),
            Err(ClientError::Timeout) => Err(SdkError::ReceiptTimeout),
            Err(_) => Err(SdkError::ReceiptConnectionClosed),
        }
    }

    /// [`Submitter::wait_receipt`], then checks that the receipt is for `chain_id` and signed
    /// by the sequencer key `sequencer`.
    ///
    /// # Errors
    /// As [`Submitter::wait_receipt`], and [`SdkError::BadReceipt`].
    pub async fn wait_verified_receipt(
        &self,
        tx: &TxId,
        timeout: Duration,
        chain_id: ChainId,
        sequencer: &PublicKeyBytes,
    ) -> Result<SignedReceipt, SdkError> {
        let receipt = self.wait_receipt(tx, timeout).await?;
        verify_receipt(&receipt, chain_id, sequencer)?;
        Ok(receipt)
    }

    async fn with_retry<F, Fut>(&self, mut op: F) -> Result<Ack, SdkError>
    where
        F: FnMut(Arc<IngressClient>) -> Fut,
        Fut: std::future::Future<Output = Result<Ack, ClientError>>,
    {
        let attempts = self.retry.attempts.max(1);
        let mut backoff = self.retry.initial_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match self.connection().await {
                Ok(c) => {
                    let r = op(c.clone()).await;
                    if matches!(&r, Err(e) if !matches!(e, ClientError::Rejected(_))) {
                        self.drop_connection(&c).await;
                    }
                    r
                }
                Err(e) => Err(e),
            };
            let error = match result {
                Ok(ack) => return Ok(ack),
                Err(ClientError::Rejected(r)) => {
                    let retryable = r.reject_code().is_some_and(|c| c.is_retryable());
                    if !retryable || attempt >= attempts {
                        return Err(SdkError::Rejected(r));
                    }
                    ClientError::Rejected(r)
                }
                Err(e) => {
                    if attempt >= attempts {
                        return Err(SdkError::Unreachable { attempts: attempt, last: e });
                    }
                    e
                }
            };
            tracing::debug!(attempt, %error, "submission failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.retry.max_backoff);
        }
    }
}
