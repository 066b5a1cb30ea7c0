//! The node's services: async shells that move bytes, timers and permits around the sans-IO
//! cores. Each is started with a `start`/`spawn` function and returns a handle with a graceful
//! `shutdown`.

pub mod ingress;
