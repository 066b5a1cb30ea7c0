//! Which open connection gets which transaction's inclusion receipt.
//!
//! [`ReceiptRoutes`] maps a pending transaction to the connection that submitted it (the last
//! one, for a transaction submitted on several), and each open connection to its bounded
//! receipt queue. It holds no I/O and no clock; the ingress updates it:
//!
//! | event | effect |
//! |---|---|
//! | a connection opens its stream / ends | [`ReceiptRoutes::open`] / [`ReceiptRoutes::close`] (every route of it goes) |
//! | an ack for admitted or resubmitted ids | [`ReceiptRoutes::submitted`] |
//! | ids expire or are evicted from the pool | [`ReceiptRoutes::left_pool`] |
//! | ids are removed as committed (after decryption) | [`ReceiptRoutes::committed`] |
//! | receipts to push | [`ReceiptRoutes::route`] |
//!
//! # Bounded memory
//!
//! A route exists only for a transaction that was pending when it was acked on a connection
//! that is still open, so live routes never outnumber the pool's transactions. Committed
//! transactions are the one subtlety: the sequencer removes them from the pool once they are
//! decrypted, while their receipts are signed off the slot thread and may arrive a little
//! later. Their routes are *retired* rather than dropped, and kept in a FIFO of at most
//! `retired_cap` entries (about that many transactions' worth of slack between decryption
//! and the receipt's push); a retired route goes when its receipt is routed or when it falls
//! off the FIFO. A route whose receipt has already been routed goes at once when its
//! transaction is committed.

use std::collections::{HashMap, HashSet, VecDeque};

use tokio::sync::mpsc;
use veil_primitives::{SignedReceipt, TxId};
use veil_wire::ingress::ServerFrame;

/// The id of a connection, unique for the life of the ingress.
pub(super) type ConnId = u64;

/// A connection's receipt queue: frames its writer sends between answers.
pub(super) type ReceiptQueue = mpsc::Sender<ServerFrame>;

#[derive(Debug)]
struct Conn {
    queue: ReceiptQueue,
    txs: HashSet<TxId>,
}

#[derive(Debug, Clone, Copy)]
struct Route {
    conn: ConnId,
    /// Distinguishes this route from an earlier one of the same transaction in the FIFO.
    generation: u64,
    /// The transaction left the pool as committed; the route waits for its receipt.
    retired: bool,
    /// A receipt was routed for it already.
    routed: bool,
}

/// See the module docs.
#[derive(Debug)]
pub(super) struct ReceiptRoutes {
    conns: HashMap<ConnId, Conn>,
    routes: HashMap<TxId, Route>,
    retired: VecDeque<(TxId, u64)>,
    retired_cap: usize,
    next_generation: u64,
}

/// Receipts for one connection's queue.
pub(super) struct Delivery {
    pub(super) queue: ReceiptQueue,
    pub(super) receipts: Vec<SignedReceipt>,
}

impl ReceiptRoutes {
    pub(super) fn new(retired_cap: usize) -> ReceiptRoutes {
        ReceiptRoutes {
            conns: HashMap::new(),
            routes: HashMap::new(),
            retired: VecDeque::new(),
            retired_cap,
            next_generation: 0,
        }
    }

    /// A connection opened its stream; receipts for it go to `queue`.
    pub(super) fn open(&mut self, conn: ConnId, queue: ReceiptQueue) {
        self.conns.insert(conn, Conn { queue, txs: HashSet::new() });
    }

    /// A connection ended: it and every route to it go.
    pub(super) fn close(&mut self, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else { return };
        for tx in c.txs {
            if self.routes.get(&tx).is_some_and(|r| r.conn == conn) {
                self.routes.remove(&tx);
            }
        }
    }

    /// `conn` was acked for `ids` (each still pending): their receipts go to it from now on.
    pub(super) fn submitted(&mut self, conn: ConnId, ids: impl IntoIterator<Item = TxId>) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        for tx in ids {
            let generation = self.next_generation;
            self.next_generation += 1;
            let route = Route { conn, generation, retired: false, routed: false };
            if let Some(old) = self.routes.insert(tx, route) {
                if old.conn != conn {
                    if let Some(c) = self.conns.get_mut(&old.conn) {
                        c.txs.remove(&tx);
                    }
                }
            }
            if let Some(c) = self.conns.get_mut(&conn) {
                c.txs.insert(tx);
            }
        }
    }

    /// The transactions left the pool without being committed (expired, evicted).
    pub(super) fn left_pool<'a>(&mut self, ids: impl IntoIterator<Item = &'a TxId>) {
        for tx in ids {
            self.remove(tx);
        }
    }

    /// The transactions left the pool as committed: their routes wait (bounded) for the
    /// receipts, unless a receipt was routed already.
    pub(super) fn committed<'a>(&mut self, ids: impl IntoIterator<Item = &'a TxId>) {
        for tx in ids {
            let Some(route) = self.routes.get_mut(tx) else { continue };
            if route.routed {
                self.remove(tx);
                continue;
            }
            route.retired = true;
            self.retired.push_back((*tx, route.generation));
        }
        while self.retired.len() > self.retired_cap {
            let Some((tx, generation)) = self.retired.pop_front() else { break };
            if self.routes.get(&tx).is_some_and(|r| r.retired && r.generation == generation) {
                self.remove(&tx);
            }
        }
    }

    /// Groups `receipts` by the connection to push them to; the rest (no route, or the
    /// connection is gone) come back second.
    pub(super) fn route(
        &mut self,
        receipts: Vec<SignedReceipt>,
    ) -> (Vec<Delivery>, Vec<SignedReceipt>) {
        let mut by_conn: HashMap<ConnId, Vec<SignedReceipt>> = HashMap::new();
        let mut unrouted = Vec::new();
        for r in receipts {
            let tx = r.message.tx;
            let Some(route) = self.routes.get_mut(&tx) else {
                unrouted.push(r);
                continue;
            };
            route.routed = true;
            let (conn, retired) = (route.conn, route.retired);
            if retired {
                self.remove(&tx);
            }
            by_conn.entry(conn).or_default().push(r);
        }
        let deliveries = by_conn
            .into_iter()
            .filter_map(|(conn, receipts)| {
                let queue = self.conns.get(&conn)?.queue.clone();
                Some(Delivery { queue, receipts })
            })
            .collect();
        (deliveries, unrouted)
    }

    fn remove(&mut self, tx: &TxId) {
        if let Some(route) = self.routes.remove(tx) {
            if let Some(c) = self.conns.get_mut(&route.conn) {
                c.txs.remove(tx);
            }
        }
    }

    /// Routes held (live and retired).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.routes.len()
    }
}

#[cfg(test)]
mod tests {
    use veil_primitives::receipt::{CommitmentId, Receipt};
    use veil_primitives::{ChainId, Eon, RollupId, SignatureBytes, Slot};

    use super::*;

    fn id(n: u8) -> TxId {
        TxId([n; 32])
    }

    fn receipt(n: u8) -> SignedReceipt {
        SignedReceipt {
            message: Receipt {
                chain_id: ChainId(1),
                slot: Slot(1),
                eon: Eon(1),
                tx: id(n),
                rollup: RollupId(1),
                position: 0,
                commitment: CommitmentId([0; 32]),
            },
            signature: SignatureBytes([0; 64]),
        }
    }

    fn queue() -> (ReceiptQueue, mpsc::Receiver<ServerFrame>) {
        mpsc::channel(4)
    }

    fn routed_to(routes: &mut ReceiptRoutes, n: u8) -> Option<usize> {
        let (deliveries, _) = routes.route(vec![receipt(n)]);
        deliveries.first().map(|d| d.receipts.len())
    }

    #[test]
    fn receipts_follow_the_last_submitter_and_stop_at_close() {
        let mut routes = ReceiptRoutes::new(8);
        let (q1, _r1) = queue();
        let (q2, _r2) = queue();
        routes.open(1, q1);
        routes.open(2, q2);
        routes.submitted(1, [id(1), id(2)]);
        routes.submitted(2, [id(2)]);
        let (deliveries, unrouted) = routes.route(vec![receipt(1), receipt(2), receipt(3)]);
        assert_eq!(unrouted.len(), 1);
        let mut sizes: Vec<usize> = deliveries.iter().map(|d| d.receipts.len()).collect();
        sizes.sort_unstable();
        assert_eq!(sizes, vec![1, 1]);
        // Closing connection 1 does not take connection 2's route of id 2 with it.
        routes.close(1);
        assert_eq!(routed_to(&mut routes, 1), None);
        assert_eq!(routed_to(&mut routes, 2), Some(1));
        routes.close(2);
        assert_eq!(routes.len(), 0);
        // A closed connection gets no new routes.
        routes.submitted(2, [id(9)]);
        assert_eq!(routes.len(), 0);
    }

    #[test]
    fn routes_leave_with_the_pool_and_retire_bounded() {
        let mut routes = ReceiptRoutes::new(2);
        let (q, _r) = queue();
        routes.open(1, q);
        routes.submitted(1, (1..=6).map(id));
        routes.left_pool(&[id(1)]);
        assert_eq!(routed_to(&mut routes, 1), None);
        // Committed before the receipt came: retired, still routable once.
        routes.committed(&[id(2)]);
        assert_eq!(routed_to(&mut routes, 2), Some(1));
        assert_eq!(routed_to(&mut routes, 2), None);
        // Receipt first, then committed: gone at once.
        assert_eq!(routed_to(&mut routes, 3), Some(1));
        routes.committed(&[id(3)]);
        assert_eq!(routes.len(), 3);
        // The FIFO keeps at most 2 retired routes: the oldest falls off.
        routes.committed(&[id(4), id(5), id(6)]);
        assert_eq!(routes.len(), 2);
        assert_eq!(routed_to(&mut routes, 4), None);
        assert_eq!(routed_to(&mut routes, 6), Some(1));
    }

    #[test]
    fn a_stale_fifo_entry_spares_a_newer_route() {
        let mut routes = ReceiptRoutes::new(1);
        let (q, _r) = queue();
        routes.open(1, q);
        routes.submitted(1, [id(1)]);
        routes.committed(&[id(1)]);
        // Resubmitted (pending again) before its old FIFO entry falls off.
        routes.submitted(1, [id(1)]);
        routes.submitted(1, [id(2)]);
        routes.committed(&[id(2)]);
        assert_eq!(routed_to(&mut routes, 1), Some(1));
    }
}
