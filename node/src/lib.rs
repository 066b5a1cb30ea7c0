//! The Veil node: the wiring of the sans-IO cores (crypto, mempool, auction, sequencer) into
//! running services, and the `veil` commands.
//!
//! | module | what |
//! |---|---|
//! | [`services::ingress`] | QUIC ingress around the mempool core and the SQLite transaction store |
//! | [`services::sequencer`] | the slot machine on its thread, its record log, the finalizer |
//! | [`services::keyper_server`] | the sequencer's end of the QUIC keyper protocol |
//! | [`services::keyper`], [`services::keyper_client`] | one keyper: the keyper machine on its thread, its record log, its link |
//! | [`services::bids`] | the bid intake: the one path of bids to the sequencer thread (HTTP and in-process builders), recording accepted ones |
//! | [`services::indexer`] | tails the slot record log into the data API's index, off the slot thread |
//! | [`services::api`], [`services::http`] | the HTTP API's backend over the services and stores, and its listener |
//! | [`sequencer_node`] | ingress + keyper endpoint + sequencer over one data directory (`veil sequencer`) |
//! | [`config`] | the sequencer's TOML configuration, with flags and environment on top |
//! | [`priority`] | lowering a thread's CPU priority (`veil keyper --nice`, the receipt thread) |
//! | [`devnet`] | a sequencer node with keypers, users and builders around it (`veil devnet`) |
//! | [`commands`] | one file per `veil` command |
//!
//! Every shell follows one rule: a core's `Persist` event is durable (fsync'd) before the core
//! gets its next input.

pub mod commands;
pub mod config;
pub mod devnet;
pub mod metrics;
pub mod priority;
pub mod sequencer_node;
pub mod services;
