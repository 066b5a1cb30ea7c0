//! Veil's cross-rollup slot auction: the market in which builders buy the right to build one
//! slot for a set of rollups, and in which that money flows back to the rollups under the
//! revenue policies they set.
//!
//! This crate is a sans-IO library. It reads no clock, draws no randomness, does no I/O and
//! stores nothing: the node passes the time in (`now` as a slot or a millisecond timestamp)
//! and persists the records it gets back ([`Outcome`], [`LedgerEntry`]). The same code runs
//! in the sequencer, the devnet and the simulations.
//!
//! # Architecture
//!
//! | module | role |
//! |---|---|
//! | [`registry`] | rollups (admin-signed terms, scheduled at slot boundaries) and builders (collateral, unsettled payments, delayed withdrawals) |
//! | [`deposit`] | bridge-signed deposit notices, credited to collateral once per settlement-layer deposit id |
//! | [`bid`] | the signed bid ([`veil_primitives::Signed`], domain `veil/bid/v1`), its canonical encoding, the stateless checks against the [`CiphertextIndex`] the mempool implements |
//! | [`book`] | one slot's live bids: replacement by sequence number, the per-builder cap |
//! | [`wdp`] | winner determination (weighted set packing) |
//! | [`payment`] | closing a slot, as a pipeline: book, allocate, price (one type per rule), split, fallback blocks, record |
//! | [`split`] | exact integer division of payments over rollups and buckets |
//! | [`outcome`] | the outcome record, ledger entries, the stable hash |
//! | [`market`] | [`Auction`], the state machine tying it together |
//!
//! # Mechanism
//!
//! For each slot `s`, [`Auction::open_slot`] freezes the rollup terms in force (changes only
//! ever take effect after every opened slot, so an open auction never sees its terms move).
//! Builders then submit [`SignedBid`]s: an amount for a set of rollups with, per rollup, an
//! ordered list of ciphertext ids and optional plaintext transactions. Each bid is checked
//! against every row of DESIGN.md's "Bad input" table and refused with a typed
//! [`AuctionError`] otherwise; refusals never touch the builder's other bids. A higher sequence
//! number for the same (builder, slot, rollup set) replaces the held bid. Nothing can be
//! replaced or cancelled after the deadline.
//!
//! At the deadline [`Auction::close_slot`] picks winners, computes payments, splits them,
//! builds fee-ordered fallback blocks for unsold rollups and locks the payments against the
//! winners' collateral; [`Auction::settle`] later debits them and returns the ledger entries.
//!
//! After a restart, [`Auction::restore_closed`], [`Auction::restore_settled`] and
//! [`Auction::restore_abandoned`] replay each slot's last persisted step onto the genesis
//! state, in slot order, and give back exactly the state of the uninterrupted auction
//! (balances, locked payments, unsettled outcomes; no closed slot opens again); see
//! [`market`].
//!
//! ## Winner determination
//!
//! Choose pairwise disjoint bids maximising the objective, every sold rollup's reserve met
//! (intake refuses a bid below the reserve total of its rollups). This is weighted set
//! packing, NP-hard in general, but the number of rollups per slot is small:
//!
//! - **up to 16 rollups in play**: exact dynamic programming over subsets, fixing the lowest
//!   rollup of each mask so that each partition is counted once. Each mask takes the cheaper of
//!   submask enumeration and a scan of the (sparse) sets that bids actually name; each popcount
//!   layer runs in parallel on rayon ([`wdp`]).
//! - **up to 64**: branch and bound with a per-rollup bound and a node budget; the outcome says
//!   `exact: false` if the budget ran out.
//!
//! Among optimal allocations the one selling more rollups wins, then the one with the
//! lexicographically smallest sorted list of winning bid ids. Both solvers implement this
//! exactly. The table reads the least optimum off its values in one pass over the bids in id
//! order. The search compares tied leaves and settles nodes whose bound only meets the
//! incumbent as an exact-cover problem. A losing bid cannot change the choice.
//!
//! ## Payment rules (configuration: [`PaymentRule`])
//!
//! - **First-price** (default): maximise the total of winning amounts; winners pay their bids.
//! - **VCG**, with each reserve as the rollup's own bid for itself: maximise the surplus over
//!   reserves; a winning builder `i` pays `v_i - (W - W_{-i})`, clamped to lie between the
//!   reserves of its bids and its bid (with exact solves the clamp never binds). Truthful bidding is a dominant strategy for a builder
//!   whose value is additive over its bids, and no builder pays below the reserves.
//!
//! ## Revenue split
//!
//! All bids of one signer are treated as one bidder: the winner's payment `P` is split over
//! the union `U` of the rollups it won.
//!
//! 1. Each rollup `r ∈ U` gets its reserve first.
//! 2. The surplus `P - Σ reserves` is split in proportion to the clipped marginal contribution
//!    `m_r = max(0, W(U) - W(U \ {r}))`, where `W(T)` is the best surplus over reserves of
//!    disjoint bids *of the winning signer* within `T`. Those bids are all of its bids in the
//!    book, losing ones included, except bids excluded for collateral. When every `m_r` is
//!    zero the surplus is split equally.
//! 3. Each rollup's share is split over its policy's buckets (basis points summing to 10,000).
//!    Every bucket appears in the outcome's payouts, zero amounts included; only buckets of
//!    positive amount become ledger entries.
//!
//! Arithmetic is integer, with 256-bit intermediate products, largest-remainder rounding and
//! ties to the lower rollup id or bucket name: payouts sum to the payment exactly, and no
//! rollup gets less than its reserve.
//!
//! ## Why this split resists shill bids
//!
//! A rollup would like a larger share of a bundle it is sold in. Its lever is to make the
//! *other* rollups of the bundle look less valuable: in a split by market-wide marginal
//! contribution, a losing bid the rollup places on itself (directly or through a sock-puppet
//! builder key) raises `W(all without q)` for every other rollup `q` of the winning bundle,
//! shrinking their contributions and growing its own share at no cost, since the shill never
//! wins. Here contributions are measured on the *winner's own bids*, merged into one bidder:
//!
//! - a losing bid from any other key (a shill) changes neither the allocation, ties included,
//!   nor the winner's bids, so under first-price it changes no contribution and no share (a
//!   property test checks this, on books full of ties too). A bid that wins an intermediate
//!   collateral round can still change which bids that round excludes;
//! - a shill from the winner's own key is the winner's own statement of value and costs it the
//!   chance of paying for it; splitting one builder's bids over several of its own sets is
//!   merged back, so the builder cannot tilt the split by how it partitions its bids;
//! - clipping at zero means complementary bids never produce negative shares, and reserves
//!   come first, so no rollup can be pushed below its reserve.
//!
//! ## What an independent re-implementation must match
//!
//! Beyond DESIGN.md, these choices decide outcome bytes ([`payment`] has the details):
//!
//! - **Ties**: the objective first, then more rollups sold, then the smallest sorted list of
//!   winning bid ids. The same rule holds in every solve (allocation, collateral rounds, VCG
//!   counterfactuals).
//! - **Which bids feed `W(T)`**: every bid of the winning signer whose rollups lie in `T`,
//!   winning or losing, valued at its surplus `amount - reserves` under both rules. Bids
//!   excluded for collateral do not count.
//! - **Zero-amount buckets** are listed in [`RollupPayout::buckets`] and absent from the
//!   ledger. A winner's debit is written even when its payment is zero.
//! - **The clip at zero** in `m_r` never binds with exact solves: `W(T)` cannot fall as `T`
//!   grows.
//! - **The VCG clamp** to `[reserves_i, v_i]` is applied to every payment, not only after an
//!   inexact search. With exact solves it never binds.
//!
//! ## Known limits
//!
//! - **VCG is not shill-proof for payments.** A losing bid can raise `W_{-i}` and with it the
//!   winner's VCG payment (the classic seller-shill weakness of VCG); the rollups of that
//!   winner then share a larger surplus. First-price has no such lever.
//! - **Winner-revealed contributions.** The split trusts the winning builder's own bids. A
//!   builder colluding with a rollup can tilt that rollup's share by its other bids; it cannot
//!   take money from reserves, and the payment itself is unchanged.
//! - **Collateral across several winning bids** is enforced at close by dropping the builder's
//!   lightest winning bid and re-solving (bounded rounds), not inside the optimisation.
//! - **Beyond 16 rollups** optimality, and the tie-break, are only as good as the node budget;
//!   the outcome flags it. More than 64 active rollups per slot are refused.
//! - **Fallback blocks** keep bundles whole: a bundle goes in only with every part, each in
//!   its own rollup's block (all its rollups unsold, active and with room), or not at all.
//! - **Batch signature verification** uses the same verification equation family as single
//!   verification in ed25519-dalek, but ed25519 implementations may disagree on crafted edge
//!   cases (small-order components); a bid accepted in a batch is final.
//!
//! # Example
//!
//! ```
//! use std::collections::HashMap;
//! use ed25519_dalek::SigningKey;
//! use veil_auction::*;
//! use veil_primitives::{Amount, ChainId, Eon, PublicKeyBytes, RollupId, Slot, TxId};
//!
//! let chain = ChainId(1);
//! let mut auction = Auction::new(AuctionConfig { chain_id: chain, ..AuctionConfig::default() });
//! let admin = SigningKey::from_bytes(&[1; 32]);
//! let config = RollupConfig {
//!     reserve: Amount(100),
//!     gas_limit: 1_000_000,
//!     policy: RevenuePolicy::standard(8_000, 1_500, 500, public_key(&admin)).unwrap(),
//!     active: true,
//! };
//! let update = RollupUpdate {
//!     chain_id: chain,
//!     rollup: RollupId(7),
//!     nonce: 1,
//!     effective: Slot(1),
//!     change: RollupChange::Register { admin: public_key(&admin), config },
//! };
//! auction.apply_rollup_update(&update.sign(&admin)).unwrap();
//!
//! let builder = SigningKey::from_bytes(&[2; 32]);
//! auction.deposit(public_key(&builder), Amount(10_000)).unwrap();
//! auction.open_slot(Slot(1), 1_000).unwrap();
//!
//! let mut pool: HashMap<TxId, TxMeta> = HashMap::new();
//! let tx = TxId([9; 32]);
//! pool.insert(tx, TxMeta {
//!     chain_id: chain, eon: Eon(1), rollup: RollupId(7), fee_payer: PublicKeyBytes([3; 32]),
//!     gas_limit: 50_000, max_fee: Amount(5), expiry_slot: Slot(10), bundle: None,
//! });
//! let bid = Bid {
//!     chain_id: chain,
//!     slot: Slot(1),
//!     builder: public_key(&builder),
//!     sequence: 1,
//!     amount: Amount(250),
//!     blocks: vec![RollupBlock { rollup: RollupId(7), ciphertexts: vec![tx], plaintext: vec![] }],
//! };
//! auction.submit_bid(bid.sign(&builder), &pool, 500).unwrap();
//!
//! let outcome = auction.close_slot(Slot(1), 1_000, &[]).unwrap();
//! assert_eq!(outcome.winners[0].payment, Amount(250));
//! assert_eq!(outcome.total_payouts(), Amount(250));
//! let ledger = auction.settle(Slot(1)).unwrap();
//! assert_eq!(ledger.len(), 1 + 3); // one debit, three bucket payouts
//! ```

pub mod bid;
pub mod book;
pub mod config;
pub mod deposit;
mod error;
pub mod market;
pub mod metrics;
pub mod outcome;
pub mod payment;
pub mod registry;
pub mod split;
pub mod wdp;

pub use bid::{
    check_bid, Bid, BidContext, BidId, BundleRef, CheckedBid, PlaintextTx, RollupBlock, SignedBid,
    VerifiedBid, MAX_AMOUNT,
};
pub use book::{BidReceipt, SlotBook, StoredBid};
pub use config::{AuctionConfig, PaymentRule};
pub use deposit::{DepositBook, DepositCredit};
pub use error::AuctionError;
pub use market::Auction;
pub use metrics::{AuctionStats, CloseStats};
pub use outcome::{
    BucketPayout, Contribution, FallbackBlock, LedgerEntry, Outcome, RollupPayout, Winner,
    WinningBid,
};
pub use registry::{
    Bucket, BuilderAccount, RevenuePolicy, RollupChange, RollupConfig, RollupState, RollupTerms,
    RollupUpdate, ScheduledTerms, SignedRollupUpdate, SignedWithdrawal, WithdrawalRequest,
};
/// Shared with every crate: the metadata bids are checked against and the index that serves
/// it (the mempool's pool implements it), signatures and keys.
pub use veil_primitives::signed::{public_key, SignatureBytes};
pub use veil_primitives::{CiphertextIndex, TxMeta};
