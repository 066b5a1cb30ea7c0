//! Rate limits: a token bucket (GCRA, [`governor`]) per client address over every API route,
//! and one per signing key over the signed requests (bids: one token per bid, so a batch of
//! 100 costs 100).
//!
//! Both maps are bounded. Every [`SWEEP_EVERY`] checks, buckets that have refilled (a key
//! that would start fresh anyway) are dropped; a key first seen while [`MAX_TRACKED`] keys
//! are tracked shares one overflow bucket with every other such key, so a flood of new
//! addresses or made-up keys costs a fixed amount of memory and is limited as one client.
//! IPv6 clients are limited per /64 (one host usually holds a whole /64).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use veil_primitives::{ErrorCode, PublicKeyBytes};

use crate::api::ApiError;

/// Keys tracked per map before new ones share the overflow bucket.
pub const MAX_TRACKED: usize = 65_536;

/// Checks between sweeps of refilled buckets.
pub const SWEEP_EVERY: u64 = 4_096;

/// One token bucket's terms: `per_second` tokens refill each second, up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests (or bids) per second.
    pub per_second: u32,
    /// Tokens a quiet client has in hand: the largest burst.
    pub burst: u32,
}

impl RateLimit {
    fn quota(self) -> Option<Quota> {
        let rate = NonZeroU32::new(self.per_second)?;
        let burst = NonZeroU32::new(self.burst.max(self.per_second))?;
        Some(Quota::per_second(rate).allow_burst(burst))
    }
}

/// The server's rate limits; `None` turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests per client address (IPv6: per /64), over every route but `/health`, `/ready`
    /// and `/metrics`.
    pub per_address: Option<RateLimit>,
    /// Signed items (bids) per signing key.
    pub per_key: Option<RateLimit>,
}

/// The default per-address limit: 1,000 requests per second, bursts of 2,000.
pub const DEFAULT_PER_ADDRESS: RateLimit = RateLimit { per_second: 1_000, burst: 2_000 };

/// The default per-key limit: 5,000 bids per second, bursts of 10,000.
pub const DEFAULT_PER_KEY: RateLimit = RateLimit { per_second: 5_000, burst: 10_000 };

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits { per_address: Some(DEFAULT_PER_ADDRESS), per_key: Some(DEFAULT_PER_KEY) }
    }
}

impl RateLimits {
    /// No limits (benchmarks and tests that measure something else).
    #[must_use]
    pub fn off() -> RateLimits {
        RateLimits { per_address: None, per_key: None }
    }
}

/// One bounded keyed limiter.
struct Buckets<K: std::hash::Hash + Eq + Clone> {
    keyed: DefaultKeyedRateLimiter<K>,
    overflow: DefaultDirectRateLimiter,
    checks: AtomicU64,
    what: &'static str,
}

impl<K: std::hash::Hash + Eq + Clone> Buckets<K> {
    fn new(quota: Quota, what: &'static str) -> Buckets<K> {
        Buckets {
            keyed: RateLimiter::keyed(quota),
            overflow: RateLimiter::direct(quota),
            checks: AtomicU64::new(0),
            what,
        }
    }

    fn check(&self, key: &K, tokens: u32) -> Result<(), ApiError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.keyed.retain_recent();
            self.keyed.shrink_to_fit();
        }
        let Some(n) = NonZeroU32::new(tokens) else { return Ok(()) };
        let tracked = self.keyed.len() < MAX_TRACKED;
        let verdict = if tracked {
            self.keyed.check_key_n(key, n)
        } else {
            // An existing key keeps its own bucket; a new one shares the overflow bucket.
            // Reading `len` first and then touching a key is racy by a few keys at most.
            self.overflow.check_n(n)
        };
        match verdict {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(limited(self.what, wait))
            }
            Err(_) => Err(ApiError::new(
                ErrorCode::RateLimited,
                format!("{tokens} items in one request exceed this {}'s whole burst", self.what),
            )),
        }
    }
}

fn limited(what: &str, wait: Duration) -> ApiError {
    ApiError::new(
        ErrorCode::RateLimited,
        format!("rate limit of this {what}: retry in {} ms", wait.as_millis().max(1)),
    )
}

/// The server's limiters; cheap to share.
pub(crate) struct Limiters {
    address: Option<Buckets<IpAddr>>,
    key: Option<Buckets<PublicKeyBytes>>,
}

impl std::fmt::Debug for Limiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiters")
            .field("per_address", &self.address.is_some())
            .field("per_key", &self.key.is_some())
            .finish()
    }
}

impl Limiters {
    pub(crate) fn new(limits: RateLimits) -> Limiters {
        Limiters {
            address: limits
                .per_address
                .and_then(RateLimit::quota)
                .map(|q| Buckets::new(q, "address")),
            key: limits.per_key.and_then(RateLimit::quota).map(|q| Buckets::new(q, "key")),
        }
    }

    /// One request from `addr`.
    pub(crate) fn check_address(&self, addr: IpAddr) -> Result<(), ApiError> {
        match &self.address {
            Some(b) => b.check(&bucket_of(addr), 1),
            None => Ok(()),
        }
    }

    /// `items` signed items from `key`.
    pub(crate) fn check_key(&self, key: &PublicKeyBytes, items: u32) -> Result<(), ApiError> {
        match &self.key {
            Some(b) => b.check(key, items),
            None => Ok(()),
        }
    }
}

/// The address a bucket is kept for: the address itself for IPv4, its /64 for IPv6 (an
/// IPv4-mapped IPv6 address counts as the IPv4 address).
fn bucket_of(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::V6(seg.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusal_per_address_and_per_key() {
        let l = Limiters::new(RateLimits {
            per_address: Some(RateLimit { per_second: 1, burst: 3 }),
            per_key: Some(RateLimit { per_second: 1, burst: 5 }),
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            l.check_address(a).unwrap();
        }
        let e = l.check_address(a).unwrap_err();
        assert_eq!(e.code, ErrorCode::RateLimited);
        // Another address has its own bucket.
        l.check_address(b).unwrap();
        let k = PublicKeyBytes([1; 32]);
        l.check_key(&k, 4).unwrap();
        assert_eq!(l.check_key(&k, 2).unwrap_err().code, ErrorCode::RateLimited);
        // More than the whole burst at once can never pass: refused, typed.
        let e = l.check_key(&PublicKeyBytes([2; 32]), 6).unwrap_err();
        assert_eq!(e.code, ErrorCode::RateLimited);
        assert!(e.message.contains("whole burst"), "{}", e.message);
        // Zero items cost nothing.
        l.check_key(&k, 0).unwrap();
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let l = Limiters::new(RateLimits {
            per_address: Some(RateLimit { per_second: 1, burst: 1 }),
            per_key: None,
        });
        l.check_address("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(l.check_address("2001:db8:1:2:ffff::9".parse().unwrap()).is_err());
        l.check_address("2001:db8:1:3::1".parse().unwrap()).unwrap();
        l.check_address("::ffff:10.1.1.1".parse().unwrap()).unwrap();
        assert!(l.check_address("10.1.1.1".parse().unwrap()).is_err());
        // Off means off.
        let off = Limiters::new(RateLimits::off());
        for _ in 0..100 {
            off.check_address("10.0.0.1".parse().unwrap()).unwrap();
            off.check_key(&PublicKeyBytes([3; 32]), 1_000_000).unwrap();
        }
    }

    #[test]
    fn new_keys_beyond_the_bound_share_one_bucket() {
        // One token an hour: no bucket refills (and is swept) while the test runs.
        let b: Buckets<u32> = Buckets::new(Quota::per_hour(NonZeroU32::new(1).unwrap()), "key");
        for k in 0..MAX_TRACKED as u32 {
            b.check(&k, 1).unwrap();
        }
        assert_eq!(b.keyed.len(), MAX_TRACKED);
        // Two new keys draw from the same overflow bucket (burst 1): the second is refused,
        // and the map does not grow.
        b.check(&u32::MAX, 1).unwrap();
        assert!(b.check(&(u32::MAX - 1), 1).is_err());
        assert_eq!(b.keyed.len(), MAX_TRACKED);
    }
}
