//! Deterministic agent-based simulations of Veil that drive the real crates (not built yet).
