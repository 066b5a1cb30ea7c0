//! The `crypto` suite (being built).

use crate::report::Reporter;

/// Runs the crypto suite.
pub fn run(_quick: bool, _reporter: &mut Reporter) -> anyhow::Result<()> {
    anyhow::bail!("the crypto suite is not built yet")
}
