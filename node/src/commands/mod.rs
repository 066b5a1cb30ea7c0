//! The `veil` commands, one file each: argument types and thin drivers over the services and
//! the SDK.

pub mod args;
pub mod builder;
pub mod data;
pub mod dev_committee;
pub mod dev_decrypt;
pub mod devnet;
pub mod info;
pub mod ingress;
pub mod keygen;
pub mod keyper;
pub mod loadgen;
pub mod mempool;
pub mod rollup;
pub mod sequencer;
pub mod submit;
pub mod tx;
pub mod user;
