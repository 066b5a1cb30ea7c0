//! Veil's threshold-encryption core (being built).
