//! CPU priority: lowering the calling thread's nice value, never raising it.
//!
//! On Linux a nice value belongs to a thread: `setpriority(PRIO_PROCESS, 0, …)` changes the
//! calling thread only, and threads it starts afterwards inherit it. `veil keyper --nice`
//! calls [`lower`] before any worker thread starts (the whole process runs lower); the
//! sequencer's background threads (the receipt issuer, the data API's indexer) and each
//! keyper's validation thread call [`lower_this_thread`] on their own thread (only that
//! thread runs lower, so only on Linux: elsewhere the call would lower the whole process).

#[cfg(unix)]
use anyhow::Context;

/// Sets the calling thread's nice value to `nice` unless it already runs at a lower priority
/// (a higher nice value).
///
/// # Errors
/// If the priority cannot be read or set, or on a system without nice values.
#[cfg(unix)]
pub fn lower(nice: i32) -> anyhow::Result<()> {
    let now = rustix::process::getpriority_process(None).context("read the CPU priority")?;
    if now >= nice {
        return Ok(());
    }
    rustix::process::setpriority_process(None, nice)
        .with_context(|| format!("lower the CPU priority to nice {nice}"))
}

/// See the Unix version.
///
/// # Errors
/// Always: no nice values here.
#[cfg(not(unix))]
pub fn lower(_nice: i32) -> anyhow::Result<()> {
    anyhow::bail!("CPU priorities (nice values) need a Unix system")
}

/// Lowers the calling thread's CPU priority to `nice` where the OS gives threads their own
/// (Linux); does nothing elsewhere, where it would lower the whole process. A failure is
/// logged at debug level with `what`, the thread's name: the thread then runs at its
/// priority, which is slower for others but not wrong.
pub fn lower_this_thread(nice: i32, what: &str) {
    if cfg!(target_os = "linux") {
        if let Err(e) = lower(nice) {
            tracing::debug!(error = %format!("{e:#}"), nice, what, "thread left at its priority");
        }
    }
}
