//! The client's TCP Fast Open cookie cache (RFC 7413 4.1.3): per local and remote
//! address, the server's cookie and MSS, or the time it answered negatively.
//!
//! RFC 7413 4.1.3 asks for at most one cookie "per client and server IP address
//! pair" (a server's cookie is made from the client's address, not its port) and for
//! negative answers to be cached too (4.1.3.1), so that a server or path that does not
//! take Fast Open costs one failed attempt per disable period, not one per connection.
//! The cache is bounded: past its capacity the entry added longest ago goes.

use crate::tcp::FastOpenOutcome;
use crate::time::{Duration, Instant};
use crate::wire::tcp::FastOpenCookie;
use core::net::IpAddr;
use std::collections::{HashMap, VecDeque};

/// What the cache tells a new active open.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FastOpenUse {
    /// Send this cookie, with data up to this MSS.
    Cookie(FastOpenCookie, u16),
    /// Ask for a cookie (no data in the SYN).
    Request,
    /// Leave Fast Open out: the server answered negatively not long ago.
    Off,
}

#[derive(Clone, Copy, Debug)]
enum Entry {
    Cookie(FastOpenCookie, u16),
    Disabled(Instant),
}

/// The cookie cache of a stack.
#[derive(Debug)]
pub(super) struct FastOpenCache {
    entries: HashMap<(IpAddr, IpAddr), Entry>,
    /// Keys in the order they were added, for eviction.
    order: VecDeque<(IpAddr, IpAddr)>,
    capacity: usize,
    disable: Duration,
}

impl FastOpenCache {
    pub(super) fn new(capacity: usize, disable: Duration) -> FastOpenCache {
        FastOpenCache {
            entries: HashMap::new(),
            order: VecDeque::new(),
            capacity,
            disable,
        }
    }

    /// What a connection from `local` to `remote` opening at `now` should do.
    pub(super) fn lookup(&mut self, now: Instant, local: IpAddr, remote: IpAddr) -> FastOpenUse {
        match self.entries.get(&(local, remote)) {
            None => FastOpenUse::Request,
            Some(&Entry::Cookie(c, mss)) => FastOpenUse::Cookie(c, mss),
            Some(&Entry::Disabled(since)) if now.saturating_since(since) < self.disable => {
                FastOpenUse::Off
            }
            // The disable period is over: ask again (FreeBSD forgets the old MSS too).
            Some(&Entry::Disabled(_)) => FastOpenUse::Request,
        }
    }

    /// Records what an active open from `local` to `remote` learned at `now`.
    pub(super) fn learn(&mut self, local: IpAddr, remote: IpAddr, o: FastOpenOutcome) {
        let key = (local, remote);
        let entry = match o {
            FastOpenOutcome::Cookie { cookie, mss } => Entry::Cookie(cookie, mss),
            FastOpenOutcome::Keep => return,
            // A negative answer that follows another keeps the first one's time, so
            // that retrying every so often does not put the next attempt off forever.
            FastOpenOutcome::Failed { at } => match self.entries.get(&key) {
                Some(&Entry::Disabled(since)) if at.saturating_since(since) < self.disable => {
                    return
                }
                _ => Entry::Disabled(at),
            },
        };
        if self.capacity == 0 {
            return;
        }
        if self.entries.insert(key, entry).is_none() {
            self.order.push_back(key);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.entries.remove(&old);
                }
            }
        }
    }

    /// The cookie held for `local` to `remote`.
    pub(super) fn cookie(&self, local: IpAddr, remote: IpAddr) -> Option<FastOpenCookie> {
        match self.entries.get(&(local, remote)) {
            Some(&Entry::Cookie(c, _)) => Some(c),
            _ => None,
        }
    }

    /// Forgets everything.
    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }

    /// Entries held.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    fn cookie(b: u8) -> FastOpenCookie {
        FastOpenCookie::new(&[b; 8]).unwrap()
    }

    fn at(s: u64) -> Instant {
        Instant::from_secs(s)
    }

    fn given(n: u8, mss: u16) -> FastOpenOutcome {
        FastOpenOutcome::Cookie {
            cookie: cookie(n),
            mss,
        }
    }

    fn failed(s: u64) -> FastOpenOutcome {
        FastOpenOutcome::Failed { at: at(s) }
    }

    #[test]
    fn a_cookie_is_kept_per_address_pair_and_replaced_by_a_newer_one() {
        let mut c = FastOpenCache::new(8, Duration::from_secs(900));
        assert_eq!(c.lookup(at(0), ip(1), ip(2)), FastOpenUse::Request);
        c.learn(ip(1), ip(2), given(1, 1400));
        assert_eq!(
            c.lookup(at(1), ip(1), ip(2)),
            FastOpenUse::Cookie(cookie(1), 1400)
        );
        // Another local address has no cookie for the same server.
        assert_eq!(c.lookup(at(1), ip(3), ip(2)), FastOpenUse::Request);
        c.learn(ip(1), ip(2), FastOpenOutcome::Keep);
        assert_eq!(c.cookie(ip(1), ip(2)), Some(cookie(1)));
        c.learn(ip(1), ip(2), given(2, 536));
        assert_eq!(
            c.lookup(at(3), ip(1), ip(2)),
            FastOpenUse::Cookie(cookie(2), 536)
        );
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_negative_answer_turns_fast_open_off_for_the_disable_period_from_the_first() {
        let mut c = FastOpenCache::new(8, Duration::from_secs(900));
        c.learn(ip(1), ip(2), failed(10));
        assert_eq!(c.lookup(at(10), ip(1), ip(2)), FastOpenUse::Off);
        // Another failure within the period does not restart it.
        c.learn(ip(1), ip(2), failed(500));
        assert_eq!(c.lookup(at(909), ip(1), ip(2)), FastOpenUse::Off);
        assert_eq!(c.lookup(at(910), ip(1), ip(2)), FastOpenUse::Request);
        // A failure after it starts a new one.
        c.learn(ip(1), ip(2), failed(911));
        assert_eq!(c.lookup(at(1810), ip(1), ip(2)), FastOpenUse::Off);
        assert_eq!(c.lookup(at(1811), ip(1), ip(2)), FastOpenUse::Request);
        // A cookie ends it at once.
        c.learn(ip(1), ip(2), failed(10));
        c.learn(ip(1), ip(2), given(3, 1460));
        assert_eq!(
            c.lookup(at(1812), ip(1), ip(2)),
            FastOpenUse::Cookie(cookie(3), 1460)
        );
    }

    #[test]
    fn the_cache_holds_at_most_its_capacity_dropping_the_oldest_entry() {
        let mut c = FastOpenCache::new(2, Duration::from_secs(900));
        for n in 1..=3 {
            c.learn(ip(n), ip(100), given(n, 1460));
        }
        assert_eq!(c.len(), 2);
        assert_eq!(c.cookie(ip(1), ip(100)), None);
        assert_eq!(c.cookie(ip(2), ip(100)), Some(cookie(2)));
        assert_eq!(c.cookie(ip(3), ip(100)), Some(cookie(3)));
        c.clear();
        assert_eq!(c.len(), 0);
        assert_eq!(c.lookup(at(0), ip(3), ip(100)), FastOpenUse::Request);
        let mut none = FastOpenCache::new(0, Duration::from_secs(900));
        none.learn(ip(1), ip(2), failed(0));
        assert_eq!(none.len(), 0);
    }
}
