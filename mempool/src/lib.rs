//! Veil's encrypted mempool: a sans-IO admission pool and the QUIC ingress shell (not built yet).
