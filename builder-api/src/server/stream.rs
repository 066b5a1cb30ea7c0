//! The mempool stream: server-sent events over the backend's mempool reads.
//!
//! Each subscriber reads the mempool from its own cursor, a page at a time, and waits on its
//! [`MempoolWatch`] when it has caught up, so it costs nothing while idle and never holds more
//! than one page: a slow reader slows only its own TCP connection, and what it has not read
//! stays in the pool, not in a buffer of the server. Events:
//!
//! - `tx`: a [`MempoolTx`](crate::api::MempoolTx) in JSON; its id is the cursor after it, so a
//!   client that reconnects with `Last-Event-ID` resumes exactly where it stopped.
//! - `skipped`: `{"skipped": n}`: `n` transactions left the pool (included, expired, evicted)
//!   after the subscriber's cursor and before it read them (none for a stream from `0`, which
//!   asks for whatever is pending). It has no id.
//! - `error`: an error body; the stream ends after it.
//!
//! A comment every 15 s keeps idle connections open through proxies.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::response::sse::Event;
use futures_util::Stream;

use super::{ApiBackend, MempoolRead, MempoolWatch};

/// Transactions read per page by a stream.
const STREAM_PAGE: u32 = 256;

/// One open stream, counted against the server's maximum while it lives.
pub(super) struct StreamSlot(Arc<AtomicUsize>);

impl StreamSlot {
    /// Takes a slot if fewer than `max` streams are open.
    pub(super) fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<StreamSlot> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| StreamSlot(open.clone()))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

struct State {
    backend: Arc<dyn ApiBackend>,
    watch: Box<dyn MempoolWatch>,
    read: MempoolRead,
    queue: VecDeque<Event>,
    done: bool,
    _slot: StreamSlot,
}

fn json_event(kind: &str, value: &impl serde::Serialize) -> Event {
    Event::default().event(kind).data(serde_json::to_string(value).expect("API types serialise"))
}

/// The events of one subscriber from `read.cursor` on.
pub(super) fn mempool_events(
    backend: Arc<dyn ApiBackend>,
    mut read: MempoolRead,
    slot: StreamSlot,
) -> impl Stream<Item = Result<Event, Infallible>> {
    read.limit = STREAM_PAGE;
    // The watch is made before the first read: whatever becomes durable after it wakes us.
    let watch = backend.mempool_watch();
    let state = State { backend, watch, read, queue: VecDeque::new(), done: false, _slot: slot };
    futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(event) = st.queue.pop_front() {
                return Some((Ok(event), st));
            }
            if st.done {
                return None;
            }
            let backend = st.backend.clone();
            let read = st.read;
            let page = match tokio::task::spawn_blocking(move || backend.mempool(&read)).await {
                Ok(Ok(page)) => page,
                Ok(Err(e)) => {
                    st.queue.push_back(json_event("error", &e.body()));
                    st.done = true;
                    continue;
                }
                Err(_) => return None,
            };
            if page.skipped > 0 {
                // No id: the page's `tx` events carry the cursors, and one taken from here
                // would resume after transactions the client has not read yet.
                st.queue.push_back(json_event(
                    "skipped",
                    &serde_json::json!({ "skipped": page.skipped }),
                ));
            }
            for tx in &page.txs {
                st.queue.push_back(json_event("tx", tx).id((tx.seq + 1).to_string()));
            }
            st.read.cursor = page.next_cursor;
            if page.caught_up && st.queue.is_empty() && !st.watch.changed().await {
                return None;
            }
        }
    })
}
