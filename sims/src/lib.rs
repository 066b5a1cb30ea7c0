//! Deterministic agent-based simulations of Veil: what the encrypted mempool and the
//! cross-rollup auction do to users, builders and rollups, measured by driving Veil's real
//! sans-IO cores with agents.
//!
//! # What is real and what is modelled
//!
//! | piece | here |
//! |---|---|
//! | mempool | the real [`veil_mempool::pool::Pool`]: admission (`admit_tx`, `admit_bundle` with atomic bundles), the durable prefix, expiry on `on_slot`, `remove_committed`, the fee order builders read, and its [`veil_primitives::CiphertextIndex`] that the auction checks bids against |
//! | auction | the real [`veil_auction::Auction`]: signed bids (ed25519, batch-verified by `submit_bids`), `open_slot`/`close_slot`/`settle`, winner determination, first-price and VCG ([`veil_auction::PaymentRule`]), Veil's marginal-contribution split, fallback blocks, the ledger and [`veil_auction::Outcome::hash`] |
//! | encryption | the fast path keeps each intent beside a placeholder body; [`crypto_check`] repeats a run with real veil-crypto ciphertexts and real share-batch decryption and checks that nothing changes |
//! | rollups | one constant-product pool each ([`amm`]), fee on input, no concentrated liquidity; each with its own reserve and revenue policy in the auction's registry (`rollup_reserves`, `rollup_policies`) |
//! | prices | a reference price (the "CEX") that follows a log-normal random walk per slot |
//! | users | Poisson arrivals per rollup; log-normal notional; a slippage limit against the published pool state; a random priority fee; sometimes an atomic two-rollup bundle (one leg each way) |
//! | builders | [`config::Strategy`]: fee-priority honest; sandwicher; single-rollup back-runner; cross-rollup arbitrageur; plus a shill bidder and a colluding builder–rollup pair ([`config::Adversaries`]) |
//! | the other splits | proportional to standalone bids and equal, computed in [`split_rules`] on the same outcome with veil-auction's exact integer division |
//!
//! # One slot
//!
//! 1. The virtual clock moves to slot `s` (`s · slot_ms`); the reference price takes a step.
//! 2. `Pool::on_slot` expires old transactions; users arrive and are admitted; the prefix is
//!    marked durable.
//! 3. Each builder reads the pool's fee order per rollup. What it can read beyond the public
//!    [`veil_primitives::TxMeta`] depends on the mode ([`config::MempoolMode`]): in plaintext
//!    mode every intent; in encrypted mode only its own transactions. It plans one block per
//!    rollup for each rollup set it bids on (every single rollup, and all rollups together
//!    except the back-runner) and values it: fees, plus sandwich profit simulated on a copy of
//!    the pool, plus arbitrage to the reference price after the block's swaps (or, when the
//!    swaps are unreadable, from the published state) minus the cost of hedging the net
//!    base-token leg outside (legs in one atomic bid offset each other; that is what makes
//!    bids on several rollups worth more than the sum of their parts, together with the
//!    bundles only a multi-rollup bid may include).
//! 4. Sandwich legs are admitted to the pool as the builder's own transactions and named in
//!    its block; arbitrage is a builder-owned plaintext transaction after the ciphertexts, as
//!    the bid format says. Bids are signed and submitted; first-price bids are shaded
//!    (`first_price_shade` of the value), VCG bids are the value (truthful is dominant).
//! 5. `close_slot` picks winners and payments, splits them, builds fallback blocks;
//!    `settle` debits. The simulator then executes each rollup's committed block on its pool:
//!    slippage limits revert swaps, fees go to the winning builder (to the rollup for a
//!    fallback block), losses to sandwiches are measured against the victim's output without
//!    the front-run.
//!
//! # Determinism
//!
//! Every random draw comes from one ChaCha8 stream seeded by the scenario (the real-crypto
//! run uses a second, separate stream, so both paths see the same market). Keys derive from
//! the seed. Nothing iterates a hash map. A run is sequential; rayon only spreads whole runs
//! over cores, and results are collected in input order. Floats are formatted with fixed
//! precision. The audit hash of a run is sha3-256 over its label, every
//! [`veil_auction::Outcome::hash`], its CSV and its metrics JSON: the same seed gives the same
//! hash and byte-identical files (the commonware habit of checking a seeded run by its
//! audit hash).
//!
//! # Design decisions and limits
//!
//! - **The visibility rule is the only difference between the modes.** The same sandwicher
//!   code runs in both; in encrypted mode it cannot read a victim and so never sandwiches.
//!   Blind sandwiches on metadata alone (rollup, fee, gas) are not modelled: their expected
//!   value is negative when the direction is a coin flip and the pool fee is paid twice.
//! - **Adversaries know the sealed book.** The shill and the colluder size their bids from the
//!   other bids of the slot, which a real one only estimates: their effect here is an upper
//!   bound.
//! - **Searchers are myopic**: one slot at a time, no inventory, no learning, no latency race;
//!   first-price shading is a fixed fraction, not an equilibrium strategy.
//! - **One pool per rollup and one pair**; no gas price dynamics beyond the priority fee; the
//!   reference price is exogenous (AMM trades do not move it).
//! - **Fallback blocks and the other splits**: the fallback is passed the users' pending
//!   transactions, not the searchers' unplaced legs. The alternative splits divide each
//!   winner's payment over the rollups it won; they do not change who wins.
//!
//! # Example
//!
//! ```
//! use veil_sims::config::{MempoolMode, RunSpec, Scenario, Adversaries};
//! use veil_auction::PaymentRule;
//!
//! let spec = RunSpec {
//!     scenario: Scenario { slots: 5, ..Scenario::default() },
//!     mode: MempoolMode::Encrypted,
//!     rule: PaymentRule::FirstPrice,
//!     adversaries: Adversaries::default(),
//! };
//! let a = veil_sims::sim::run_one(&spec, || {}).unwrap();
//! let b = veil_sims::sim::run_one(&spec, || {}).unwrap();
//! assert_eq!(a.audit, b.audit);
//! assert_eq!(a.metrics.unconserved_slots, 0);
//! assert_eq!(a.metrics.sandwiches, 0);
//! ```

pub mod amm;
pub mod config;
pub mod crypto;
pub mod crypto_check;
pub mod market;
pub mod metrics;
pub mod plot;
pub mod sim;
pub mod split_rules;
pub mod sweep;
