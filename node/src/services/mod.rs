//! The node's services: shells that move bytes, timers and permits around the sans-IO cores.
//! Each is started with a `start`/`spawn` function and returns a handle that stops it.

pub mod api;
pub mod bids;
pub mod http;
pub mod indexer;
pub mod ingress;
pub mod keyper;
pub mod keyper_client;
pub mod keyper_server;
pub mod receipts;
pub mod registry_api;
pub mod release_window;
pub mod sequencer;
