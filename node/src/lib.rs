//! The Veil node: the wiring of the sans-IO cores (crypto, mempool, auction) into running
//! services: the sequencer, the keyper, the devnet, storage, configuration and metrics.
//!
//! What runs today is the transaction ingress (`veil ingress`: QUIC, the encrypted mempool,
//! durable storage) and the user-side commands that talk to it (`veil submit`,
//! `veil loadgen`). The sequencer, keypers and the devnet are not built yet; the `veil`
//! binary says so for each command that is not there, and exits non-zero rather than
//! pretending to run.

pub mod commands;

/// What the `veil devnet` command needs that does not exist yet, printed by the binary.
pub const DEVNET_MISSING: &str = "\
veil devnet is not available yet: the devnet wires the sequencer (ingress, mempool, slot \
clock, auction, commitment signing, combination), in-process keypers and simulated users and \
builders, and those services have not been built. What exists today: the threshold-encryption \
core (veil-crypto) and its benchmarks (`cargo run --release -p veil-benches --bin veil-perf -- crypto`).";
