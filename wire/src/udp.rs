//! The UDP sockets under every Veil QUIC endpoint, with receive and send buffers sized for
//! bursts.
//!
//! Linux gives a UDP socket a 208 KiB receive buffer by default. A QUIC endpoint's driver
//! task drains it only when the runtime schedules it, so a burst that arrives while the
//! process's threads are busy (a keyper validating a feed run, a sequencer combining a block
//! while twelve share batches of about 96 KB land at once) overflows the buffer and the kernel
//! drops datagrams. QUIC recovers them, but only after loss detection: a batch that should
//! take a millisecond on loopback took 45–70 ms, and every keyper link and the sequencer's
//! endpoint counted drops (`/proc/net/udp`, column `drops`) in `veil-perf pipeline`.
//!
//! [`bind`] asks for [`BUFFER_BYTES`] each way. The kernel caps the request at
//! `net.core.rmem_max` / `net.core.wmem_max`; when it gives less than asked, [`bind`] logs a
//! warning naming the sysctl to raise, once per process, and carries on with what it got.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};

/// The receive and send buffer asked for each socket: the share batches of a 16-keyper
/// committee for a 1,000-transaction block (about 1.5 MB) with room to spare. The kernel
/// reserves nothing up front; this is the most a socket may hold.
pub const BUFFER_BYTES: usize = 4 << 20;

static WARNED: AtomicBool = AtomicBool::new(false);

/// A UDP socket bound to `addr` with buffers of [`BUFFER_BYTES`] (or what the kernel allows).
///
/// # Errors
/// If the socket cannot be created or bound.
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // A refused size is not an error: the socket works with the default, only burstier
    // traffic is dropped and recovered more often.
    let _ = socket.set_recv_buffer_size(BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(BUFFER_BYTES);
    let recv = socket.recv_buffer_size().unwrap_or(0);
    // Linux reports twice the size granted (the other half is its bookkeeping).
    if recv < BUFFER_BYTES && !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            asked = BUFFER_BYTES,
            got = recv,
            "the kernel capped this QUIC endpoint's UDP receive buffer; bursts may be dropped \
             and resent (raise net.core.rmem_max to at least the size asked)"
        );
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// A client QUIC endpoint on `bind` (see [`bind`]), with quinn's default endpoint settings.
///
/// # Errors
/// If the socket cannot be bound.
pub fn client_endpoint(bind_addr: SocketAddr) -> std::io::Result<quinn::Endpoint> {
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        bind(bind_addr)?,
        Arc::new(quinn::TokioRuntime),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The socket gets at least the default buffer, and the full ask where the kernel allows
    /// it (`net.core.rmem_max`).
    #[test]
    fn sockets_get_large_buffers_where_the_kernel_allows() {
        let s = bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let got = Socket::from(s).recv_buffer_size().unwrap();
        let max = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok());
        match max {
            // Linux doubles the granted size.
            Some(max) => assert!(got >= BUFFER_BYTES.min(max), "got {got}, rmem_max {max}"),
            None => assert!(got > 0),
        }
    }
}
