//! Veil's cross-rollup slot auction (not built yet).
