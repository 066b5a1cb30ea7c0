//! The Veil node: the wiring of the sans-IO cores (crypto, mempool, auction) into running
//! services: the sequencer, the keyper, the devnet, storage, configuration and metrics.
//!
//! What runs today is the transaction ingress service ([`services::ingress`]: QUIC around the
//! mempool core and the SQLite store; `veil ingress`) and the user-side commands that talk to
//! it (`veil submit`, `veil loadgen`). Each command is one file in [`commands`]. The sequencer, keypers and the devnet are not built yet; the `veil`
//! binary says so for each command that is not there, and exits non-zero rather than
//! pretending to run.

pub mod commands;
pub mod devnet;
pub mod metrics;
pub mod services;
