//! The Veil node: the wiring of the sans-IO cores (crypto, mempool, auction) into running
//! services: the sequencer, the keyper, the devnet, storage, configuration and metrics.
//!
//! What runs today is the transaction ingress service ([`services::ingress`]: QUIC around the
//! mempool core and the SQLite store; `veil ingress`) and the user-side commands that talk to
//! it (`veil submit`, `veil loadgen`). Each command is one file in [`commands`]. The sequencer, keypers and the devnet are not built yet; the `veil`
//! binary says so for each command that is not there, and exits non-zero rather than
//! pretending to run.

pub mod commands;
pub mod metrics;
pub mod services;

/// What the `veil devnet` command needs that does not exist yet, printed by the binary.
pub const DEVNET_MISSING: &str = "\
veil devnet is not available yet: it needs the sequencer service (slot clock, auction \
intake and close, commitment signing, share collection and combination, settlement), keyper \
processes and simulated users and builders, and those services are not wired yet. What runs \
today: the transaction ingress (`veil ingress`, `veil submit`, `veil loadgen`, \
`veil dev-committee`) and the performance suites (`cargo run --release -p veil-benches --bin \
veil-perf -- crypto|auction|ingest`); the crypto and auction cores are libraries.";
