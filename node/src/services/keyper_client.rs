//! The keyper's end of the keyper protocol: dials the sequencer, authenticates both ways,
//! and moves frames between the link and the keyper thread ([`super::keyper`]).
//!
//! The link reconnects with a capped exponential backoff whenever it drops (the sequencer
//! restarted, the network blinked) and resumes the feed where it stopped; after a restart of
//! the keyper itself it asks for everything pending. The sequencer's welcome must be signed by
//! the sequencer key the keyper was configured with, over this connection's TLS exporter:
//! a server without that key learns nothing but the hello, which holds no secret.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bytes::BytesMut;
use ed25519_dalek::SigningKey;
use tokio::sync::mpsc::UnboundedReceiver;
use veil_crypto::KeyperIndex;
use veil_primitives::signed::Signed;
use veil_primitives::{ChainId, Eon, PublicKeyBytes, TxId};
use veil_sequencer::slot::KeyperRequest;
use veil_wire::frame::FrameDecoder;
use veil_wire::keyper::{
    binding, Fetch, Hello, KeyperFrame, SequencerFrame, ALPN, MAX_FETCH_IDS, MAX_FRAME_SIZE,
};
use veil_wire::tls;

use super::keyper::{KeyperInput, KeyperOutput};

/// The longest wait between two dials: well under the default release timeout, so that a
/// restarted sequencer has its keypers back before a committed slot times out.
pub const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// Where and as whom a keyper connects.
#[derive(Clone)]
pub struct LinkConfig {
    /// The sequencer's keyper endpoint.
    pub sequencer: SocketAddr,
    /// The sequencer's key (it signs the welcome and the commitments).
    pub sequencer_key: PublicKeyBytes,
    /// The Veil network.
    pub chain_id: ChainId,
    /// The committee's eon.
    pub eon: Eon,
    /// This keyper's index.
    pub keyper: KeyperIndex,
    /// This keyper's identity key (its committee identity).
    pub identity: SigningKey,
}

impl std::fmt::Debug for LinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkConfig")
            .field("sequencer", &self.sequencer)
            .field("keyper", &self.keyper)
            .finish_non_exhaustive()
    }
}

/// Link state others may read.
#[derive(Debug, Default)]
pub struct LinkStatus {
    /// Whether a link is authenticated now.
    pub connected: AtomicBool,
    /// Authenticated links made so far.
    pub connects: AtomicU64,
    /// The feed position the next link resumes from (0: none yet).
    pub resume: AtomicU64,
}

/// Runs the link until `input` (the keyper thread) goes away. Reconnects on every drop.
pub async fn run(
    config: LinkConfig,
    input: mpsc::SyncSender<KeyperInput>,
    mut output: UnboundedReceiver<KeyperOutput>,
    status: Arc<LinkStatus>,
) {
    let mut backoff = Duration::from_millis(50);
    let mut resume: Option<u64> = None;
    loop {
        match connect_once(&config, &input, &mut output, &status, &mut resume).await {
            Ok(Ended::ThreadGone) => return,
            Ok(Ended::Dropped) => backoff = Duration::from_millis(50),
            Err(e) => {
                tracing::debug!(keyper = config.keyper.get(), error = %e, "keyper link failed")
            }
        }
        status.connected.store(false, Ordering::Relaxed);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

enum Ended {
    ThreadGone,
    Dropped,
}

async fn connect_once(
    config: &LinkConfig,
    input: &mpsc::SyncSender<KeyperInput>,
    output: &mut UnboundedReceiver<KeyperOutput>,
    status: &LinkStatus,
    resume: &mut Option<u64>,
) -> anyhow::Result<Ended> {
    let bind: SocketAddr = if config.sequencer.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let mut endpoint = veil_wire::udp::client_endpoint(bind)?;
    let mut client = quinn::ClientConfig::new(tls::client_crypto_channel_bound(ALPN)?);
    client.transport_config(Arc::new(super::keyper_server::link_transport()));
    endpoint.set_default_client_config(client);
    let conn = endpoint.connect(config.sequencer, "veil-sequencer")?.await?;
    let (mut send, mut recv) = conn.open_bi().await?;
    let bound = binding(&conn, config.chain_id)?;
    let hello = Signed::sign(
        Hello {
            chain_id: config.chain_id,
            eon: config.eon,
            keyper: config.keyper,
            binding: bound,
            resume: *resume,
        },
        &config.identity,
    );
    send.write_all(&KeyperFrame::Hello(Box::new(hello)).to_bytes()).await?;

    let mut decoder = FrameDecoder::new(MAX_FRAME_SIZE);
    let first =
        tokio::time::timeout(Duration::from_secs(5), next_frame(&mut recv, &mut decoder)).await??;
    let welcome = match first {
        SequencerFrame::Welcome(w) => w,
        SequencerFrame::Goodbye(g) => anyhow::bail!("refused: code {}: {}", g.code, g.detail),
        other => anyhow::bail!("expected WELCOME, got {other:?}"),
    };
    if welcome.message.binding != bound
        || welcome.message.keyper != config.keyper
        || welcome.message.chain_id != config.chain_id
    {
        anyhow::bail!("welcome not for this connection");
    }
    welcome.verify(&config.sequencer_key)?;
    status.connected.store(true, Ordering::Relaxed);
    status.connects.fetch_add(1, Ordering::Relaxed);
    tracing::info!(keyper = config.keyper.get(), sequencer = %config.sequencer, feed_start = welcome.message.feed_start, "linked to the sequencer");

    let mut next_request = 1u64;
    loop {
        tokio::select! {
            frame = next_frame(&mut recv, &mut decoder) => {
                let frame = match frame {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::info!(keyper = config.keyper.get(), error = %e, "keyper link dropped");
                        return Ok(Ended::Dropped);
                    }
                };
                let item = match frame {
                    SequencerFrame::Ciphertexts(run) => {
                        *resume = Some(run.next);
                        status.resume.store(run.next, Ordering::Relaxed);
                        (!run.bodies.is_empty()).then_some(KeyperInput::Feed(run.bodies))
                    }
                    SequencerFrame::Bodies(b) => {
                        if !b.missing.is_empty() {
                            tracing::warn!(missing = b.missing.len(), "the sequencer lacks committed ciphertexts");
                        }
                        (!b.bodies.is_empty()).then_some(KeyperInput::Feed(b.bodies))
                    }
                    SequencerFrame::Commitment(c) => {
                        tracing::debug!(
                            target: super::keyper::TIMELINE,
                            slot = c.message.slot.0,
                            keyper = config.keyper.get(),
                            "commitment received"
                        );
                        Some(KeyperInput::Request(KeyperRequest::Commitment(*c)))
                    }
                    SequencerFrame::Rescale(r) => Some(KeyperInput::Request(
                        KeyperRequest::Rescale { slot: r.slot, responders: r.responders },
                    )),
                    SequencerFrame::Goodbye(g) => {
                        tracing::warn!(code = g.code, detail = %g.detail, "the sequencer closed the link");
                        return Ok(Ended::Dropped);
                    }
                    SequencerFrame::Pong(_) => None,
                    SequencerFrame::Welcome(_) => anyhow::bail!("a second WELCOME"),
                };
                if let Some(item) = item {
                    if !deliver(input, item).await {
                        return Ok(Ended::ThreadGone);
                    }
                }
            }
            out = output.recv() => {
                let Some(out) = out else { return Ok(Ended::ThreadGone) };
                let mut buf = BytesMut::new();
                match out {
                    KeyperOutput::Shares(batch) => {
                        tracing::debug!(
                            target: super::keyper::TIMELINE,
                            slot = batch.message.slot.0,
                            keyper = config.keyper.get(),
                            "batch written"
                        );
                        KeyperFrame::Shares(batch).encode(&mut buf);
                    }
                    KeyperOutput::Fetch(ids) => {
                        for chunk in ids.chunks(MAX_FETCH_IDS) {
                            let ids: Vec<TxId> = chunk.to_vec();
                            KeyperFrame::Fetch(Fetch { request_id: next_request, ids })
                                .encode(&mut buf);
                            next_request += 1;
                        }
                    }
                }
                // A batch that cannot be written now is not lost: on the next link the
                // sequencer replays the commitment and the keyper sends the batch again.
                if send.write_all(&buf).await.is_err() {
                    return Ok(Ended::Dropped);
                }
            }
        }
    }
}

/// Hands `item` to the keyper thread's bounded queue, waiting while it is full: a keyper
/// that validates slower than the feed arrives pushes back on the QUIC stream rather than
/// buffering without bound. False if the thread is gone.
async fn deliver(input: &mpsc::SyncSender<KeyperInput>, mut item: KeyperInput) -> bool {
    loop {
        match input.try_send(item) {
            Ok(()) => return true,
            Err(mpsc::TrySendError::Full(back)) => {
                item = back;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err(mpsc::TrySendError::Disconnected(_)) => return false,
        }
    }
}

async fn next_frame(
    recv: &mut quinn::RecvStream,
    decoder: &mut FrameDecoder,
) -> anyhow::Result<SequencerFrame> {
    loop {
        if let Some(raw) = decoder.poll_frame() {
            return Ok(SequencerFrame::decode(&raw?)?);
        }
        match recv.read_chunk(256 * 1024, true).await? {
            Some(chunk) => decoder.push(&chunk.bytes),
            None => anyhow::bail!("the sequencer finished the stream"),
        }
    }
}
