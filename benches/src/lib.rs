//! Veil's performance suites.
//!
//! Each suite measures Veil's own code and, in the same run, the baseline a user would
//! otherwise reach for, then prints both side by side with the goal from DESIGN.md's
//! "Budgets" table. Machines are noisy, so the ratio (`speedup`) is the figure to compare
//! across runs; the absolute numbers are for the budget.
//!
//! The `veil-perf` binary runs the suites; the criterion benches in `benches/` time the
//! same operations with criterion's statistics.

pub mod api;
pub mod auction;
pub mod crypto;
pub mod fixtures;
pub mod ingest;
pub mod pipeline;
pub mod report;
