//! The node's integration tests, one binary: the ingress service over real QUIC on 127.0.0.1,
//! the SDK against it, inclusion receipts, and the `veil` binary as real processes.

mod cluster;
mod dev_decrypt;
mod http;
mod ingress;
mod process;
mod receipts;
mod refbuilder;
mod registry;
mod sdk;
