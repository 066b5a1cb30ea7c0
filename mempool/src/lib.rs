//! Veil's encrypted mempool (design note in progress).

pub mod error;
pub mod metrics;
pub mod pool;
pub mod wire;
