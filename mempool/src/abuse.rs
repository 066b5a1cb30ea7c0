//! Who sent failing validity proofs, and what that costs them (issue 7, finding 9).
//!
//! A proof that fails is never an honest client's mistake: a client that encrypts with the
//! SDK (or from `CIPHERTEXT.md`) makes valid proofs, and a ciphertext whose payer signature
//! verified but whose proof fails was made to fail. Such a ciphertext is expensive: it fails
//! the batched check and forces a bisection of the batch it is in. So the ingress remembers
//! who sent one, with time passed in:
//!
//! - **Batches are split by trust** ([`Abuse::class`]): a connection becomes
//!   [`Class::Trusted`] after [`AbuseConfig::trusted_after`] good proofs and no failing one;
//!   trusted connections share one batch, other connections share another, and each
//!   [`Class::Suspect`] connection (one that sent a failing proof) is checked alone. A new
//!   connection's bad proofs can bisect only the batch of other untrusted connections, once;
//!   after that they cost only its own.
//! - **The fee payer is suspended** ([`Abuse::payer_suspended`]) for
//!   [`AbuseConfig::payer_cooldown`]: its next ciphertexts are refused after the signature
//!   check, before the proof check ([`ErrorCode::Suspended`](veil_primitives::ErrorCode)).
//!   Only the payer's own signature can get it suspended.
//! - **The connection is closed** ([`Verdict::Close`]) once it has sent more failing proofs
//!   than its small token bucket allows.
//! - **The address is refused** new connections ([`Abuse::address_banned`]) for
//!   [`AbuseConfig::address_ban`] once [`AbuseConfig::address_closes`] of its connections were
//!   closed so within [`AbuseConfig::address_window`]. Connections already open stay open.
//!
//! Every map is bounded ([`AbuseConfig::max_tracked`]): expired entries are swept when a map
//! is full, and past the bound new payers and addresses are not tracked (the connection's own
//! bucket still applies).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use veil_primitives::PublicKeyBytes;

use crate::admission::TokenBucket;

/// The policy. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AbuseConfig {
    /// How long a fee payer that signed a failing proof is refused.
    pub payer_cooldown: Duration,
    /// Failing proofs a connection may send at once before it is closed.
    pub connection_burst: f64,
    /// Failing proofs per second a connection earns back.
    pub connection_rate: f64,
    /// Good proofs (and no failing one) after which a connection is trusted.
    pub trusted_after: u32,
    /// Connections of one address closed for failing proofs within `address_window` after
    /// which the address is refused new connections.
    pub address_closes: u32,
    /// See `address_closes`.
    pub address_window: Duration,
    /// How long an address is refused new connections.
    pub address_ban: Duration,
    /// Most payers, connections and addresses tracked, each.
    pub max_tracked: usize,
}

impl Default for AbuseConfig {
    fn default() -> AbuseConfig {
        AbuseConfig {
            payer_cooldown: Duration::from_secs(60),
            connection_burst: 3.0,
            connection_rate: 0.1,
            trusted_after: 32,
            address_closes: 3,
            address_window: Duration::from_secs(60),
            address_ban: Duration::from_secs(60),
            max_tracked: 65_536,
        }
    }
}

/// How a connection's submissions are batched for the proof check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Enough good proofs and no failing one: batched with the other trusted connections.
    Trusted,
    /// New (or quiet): batched with the other untrusted connections.
    Untrusted,
    /// Sent a failing proof: checked alone.
    Suspect,
}

/// What to do with a connection after a failing proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep it, checked alone from now on.
    Isolate,
    /// Close it: it spent its allowance of failing proofs.
    Close,
    /// It was told to close already (its requests still in flight keep arriving).
    Closing,
}

#[derive(Debug)]
struct Conn {
    good: u32,
    struck: bool,
    closed: bool,
    bucket: TokenBucket,
}

#[derive(Debug, Default)]
struct Addr {
    closes: Vec<Instant>,
    banned_until: Option<Instant>,
}

/// The tracker. See the module docs.
#[derive(Debug)]
pub struct Abuse {
    config: AbuseConfig,
    payers: HashMap<PublicKeyBytes, Instant>,
    conns: HashMap<u64, Conn>,
    addrs: HashMap<IpAddr, Addr>,
}

impl Abuse {
    /// An empty tracker.
    #[must_use]
    pub fn new(config: AbuseConfig) -> Abuse {
        Abuse { config, payers: HashMap::new(), conns: HashMap::new(), addrs: HashMap::new() }
    }

    /// The policy.
    #[must_use]
    pub fn config(&self) -> &AbuseConfig {
        &self.config
    }

    /// Whether `payer` signed a failing proof less than the cooldown before `now`.
    #[must_use]
    pub fn payer_suspended(&self, payer: &PublicKeyBytes, now: Instant) -> bool {
        self.payers.get(payer).is_some_and(|until| now < *until)
    }

    /// How connection `conn`'s submissions are batched.
    #[must_use]
    pub fn class(&self, conn: u64) -> Class {
        match self.conns.get(&conn) {
            Some(c) if c.struck => Class::Suspect,
            Some(c) if c.good >= self.config.trusted_after => Class::Trusted,
            _ => Class::Untrusted,
        }
    }

    /// `n` good proofs from `conn`.
    pub fn record_good(&mut self, conn: u64, n: u32) {
        if let Some(c) = self.conn(conn) {
            c.good = c.good.saturating_add(n);
        }
    }

    /// A failing proof from `conn`, signed by `payer` (when it is known), at `now`.
    pub fn record_bad_proof(
        &mut self,
        conn: u64,
        payer: Option<PublicKeyBytes>,
        now: Instant,
    ) -> Verdict {
        if let Some(payer) = payer {
            if self.payers.len() >= self.config.max_tracked {
                self.payers.retain(|_, until| now < *until);
            }
            if self.payers.len() < self.config.max_tracked || self.payers.contains_key(&payer) {
                self.payers.insert(payer, now + self.config.payer_cooldown);
            }
        }
        match self.conn(conn) {
            Some(c) => {
                c.struck = true;
                if c.closed {
                    Verdict::Closing
                } else if c.bucket.try_take(now, 1.0) {
                    Verdict::Isolate
                } else {
                    c.closed = true;
                    Verdict::Close
                }
            }
            // Not trackable (the table is full of open connections): close it.
            None => Verdict::Close,
        }
    }

    /// Connection `conn` ended: forget it.
    pub fn connection_closed(&mut self, conn: u64) {
        self.conns.remove(&conn);
    }

    /// A connection from `ip` was closed for failing proofs at `now`.
    pub fn record_abusive_close(&mut self, ip: IpAddr, now: Instant) {
        if self.addrs.len() >= self.config.max_tracked && !self.addrs.contains_key(&ip) {
            self.addrs.retain(|_, a| {
                a.banned_until.is_some_and(|t| now < t)
                    || a.closes
                        .iter()
                        .any(|t| now.saturating_duration_since(*t) < self.config.address_window)
            });
            if self.addrs.len() >= self.config.max_tracked {
                return;
            }
        }
        let window = self.config.address_window;
        let a = self.addrs.entry(ip).or_default();
        a.closes.retain(|t| now.saturating_duration_since(*t) < window);
        a.closes.push(now);
        if a.closes.len() >= self.config.address_closes.max(1) as usize {
            a.banned_until = Some(now + self.config.address_ban);
            a.closes.clear();
        }
    }

    /// Whether new connections from `ip` are refused at `now`.
    #[must_use]
    pub fn address_banned(&self, ip: &IpAddr, now: Instant) -> bool {
        self.addrs.get(ip).and_then(|a| a.banned_until).is_some_and(|t| now < t)
    }

    fn conn(&mut self, conn: u64) -> Option<&mut Conn> {
        if !self.conns.contains_key(&conn) {
            if self.conns.len() >= self.config.max_tracked {
                return None;
            }
            let bucket =
                TokenBucket::new(self.config.connection_rate, self.config.connection_burst);
            self.conns.insert(conn, Conn { good: 0, struck: false, closed: false, bucket });
        }
        self.conns.get_mut(&conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn connections_earn_trust_and_lose_it() {
        let mut a = Abuse::new(AbuseConfig { trusted_after: 2, ..AbuseConfig::default() });
        assert_eq!(a.class(1), Class::Untrusted);
        a.record_good(1, 2);
        assert_eq!(a.class(1), Class::Trusted);
        let now = Instant::now();
        assert_eq!(a.record_bad_proof(1, None, now), Verdict::Isolate);
        assert_eq!(a.class(1), Class::Suspect);
        a.record_good(1, 100);
        assert_eq!(a.class(1), Class::Suspect, "never trusted again");
        a.connection_closed(1);
        assert_eq!(a.class(1), Class::Untrusted);
    }

    #[test]
    fn a_connection_is_closed_past_its_allowance() {
        let mut a = Abuse::new(AbuseConfig::default());
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(a.record_bad_proof(7, None, now), Verdict::Isolate);
        }
        assert_eq!(a.record_bad_proof(7, None, now), Verdict::Close);
        // Told once: what it had in flight only says it is closing.
        assert_eq!(a.record_bad_proof(7, None, now), Verdict::Closing);
        // Another connection has its own allowance, and time earns it back (0.1 per second).
        assert_eq!(a.record_bad_proof(8, None, now), Verdict::Isolate);
        for _ in 0..2 {
            assert_eq!(a.record_bad_proof(8, None, now), Verdict::Isolate);
        }
        assert_eq!(a.record_bad_proof(8, None, now + Duration::from_secs(10)), Verdict::Isolate);
    }

    #[test]
    fn payers_are_suspended_for_the_cooldown() {
        let mut a = Abuse::new(AbuseConfig::default());
        let now = Instant::now();
        let payer = PublicKeyBytes([3; 32]);
        assert!(!a.payer_suspended(&payer, now));
        a.record_bad_proof(1, Some(payer), now);
        assert!(a.payer_suspended(&payer, now + Duration::from_secs(59)));
        assert!(!a.payer_suspended(&payer, now + Duration::from_secs(60)));
        assert!(!a.payer_suspended(&PublicKeyBytes([4; 32]), now));
    }

    #[test]
    fn addresses_are_banned_after_repeated_closes_within_the_window() {
        let mut a = Abuse::new(AbuseConfig::default());
        let t0 = Instant::now();
        a.record_abusive_close(ip(1), t0);
        a.record_abusive_close(ip(1), t0 + Duration::from_secs(61));
        a.record_abusive_close(ip(1), t0 + Duration::from_secs(62));
        assert!(!a.address_banned(&ip(1), t0 + Duration::from_secs(62)), "the first aged out");
        a.record_abusive_close(ip(1), t0 + Duration::from_secs(63));
        assert!(a.address_banned(&ip(1), t0 + Duration::from_secs(63)));
        assert!(!a.address_banned(&ip(2), t0 + Duration::from_secs(63)));
        assert!(!a.address_banned(&ip(1), t0 + Duration::from_secs(124)), "the ban ends");
    }

    #[test]
    fn tables_stay_bounded() {
        let mut a = Abuse::new(AbuseConfig { max_tracked: 4, ..AbuseConfig::default() });
        let now = Instant::now();
        for n in 0..100u8 {
            a.record_bad_proof(u64::from(n), Some(PublicKeyBytes([n; 32])), now);
            a.record_abusive_close(ip(n), now);
        }
        assert!(a.payers.len() <= 4 && a.conns.len() <= 4 && a.addrs.len() <= 4);
        // Untracked connections are closed at their first failing proof.
        assert_eq!(a.record_bad_proof(1000, None, now), Verdict::Close);
    }
}
