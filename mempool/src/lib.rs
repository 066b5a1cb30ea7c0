//! Veil's encrypted mempool (design note in progress).

pub mod client;
pub mod error;
pub mod ingress;
pub mod metrics;
pub mod pool;
pub mod store;
pub mod tls;
pub mod validate;
pub mod wire;
