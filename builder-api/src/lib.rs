//! Veil's wire types, HTTP API and client SDK (not built yet).
