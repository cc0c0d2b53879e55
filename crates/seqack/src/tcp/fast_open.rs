//! TCP Fast Open, client side (RFC 7413): the cookie in our SYN, the data it carries,
//! and what the SYN-ACK says about both.
//!
//! The connection holds only this handshake's part. The cookie itself, and whether
//! Fast Open is worth trying towards a server at all, live in the stack's cookie cache
//! (RFC 7413 4.1.3): the stack hands a connection its cookie before the SYN goes and
//! takes the [`FastOpenOutcome`] back once the handshake is over.

use super::conn::Connection;
use crate::counters::Counters;
use crate::time::Instant;
use crate::wire::tcp::{FastOpen, FastOpenCookie, Options, Segment};

/// What an active open with Fast Open learned about the server (RFC 7413 4.1.3), for
/// the cookie cache.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FastOpenOutcome {
    /// The SYN-ACK brought a cookie (the first, or a new one in place of ours): use it
    /// from now on, with the server's MSS from the same SYN-ACK.
    Cookie {
        /// The server's cookie.
        cookie: FastOpenCookie,
        /// The server's MSS (its default when the SYN-ACK gave none).
        mss: u16,
    },
    /// The server took our cookie (it acknowledged the SYN's data, or the SYN carried
    /// none) and sent no new one: keep it. A cookie of an invalid length in the SYN-ACK
    /// changes nothing either.
    Keep,
    /// A negative answer (RFC 7413 4.1.3.1): no valid cookie in answer to a request,
    /// the SYN's data not acknowledged and no new cookie, or no SYN-ACK at all. The
    /// server, or something on the path, does not take Fast Open: stop trying for a
    /// while.
    Failed {
        /// When the answer came (or the last retransmission of the SYN ran out).
        at: Instant,
    },
}

/// A connection's Fast Open handshake (in its off-flow state, so that a connection
/// without Fast Open carries nothing for it).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct FastOpenClient {
    /// The cookie our SYN carries; `None`: the SYN asks for one.
    cookie: Option<FastOpenCookie>,
    /// The server's MSS, remembered with the cookie: it bounds the data in the SYN.
    mss: u16,
    /// Data bytes our first SYN carried.
    syn_data: u32,
    /// The verdict once the handshake has given one, until the stack takes it.
    outcome: Option<FastOpenOutcome>,
}

impl Connection {
    /// Our SYN will carry `cookie`, and with it the data written so far, up to one
    /// segment of at most `mss` bytes (the server's MSS as the cache remembers it,
    /// bounded by our own). False, and nothing changed, unless this is an active open
    /// with [`Config::fast_open`](super::Config::fast_open) whose SYN has not gone
    /// out yet.
    pub fn set_fast_open_cookie(&mut self, cookie: FastOpenCookie, mss: u16) -> bool {
        self.before_first_syn(|fo| {
            fo.cookie = Some(cookie);
            fo.mss = mss;
        })
    }

    /// No Fast Open for this connection after all (the cache holds a negative answer
    /// for the server): the SYN neither asks for a cookie nor carries one. False, and
    /// nothing changed, when it was not to use Fast Open or its SYN has gone out.
    pub fn disable_fast_open(&mut self) -> bool {
        if !self.before_first_syn(|_| ()) {
            return false;
        }
        self.set_fast_open_client(None);
        true
    }

    /// What the handshake taught about the server's Fast Open, once: after the SYN-ACK,
    /// or after the SYN went unanswered to the end.
    pub fn take_fast_open_outcome(&mut self) -> Option<FastOpenOutcome> {
        let outcome = self.fast_open_client()?.outcome?;
        self.set_fast_open_client(None);
        Some(outcome)
    }

    /// Whether this connection's SYN asks for, or carries, a Fast Open cookie.
    #[inline]
    pub fn uses_fast_open(&self) -> bool {
        self.off_flow
            .as_ref()
            .is_some_and(|o| o.fast_open.is_some())
    }

    /// Applies `f` to the Fast Open state of an active open whose SYN is still unsent.
    fn before_first_syn(&mut self, f: impl FnOnce(&mut FastOpenClient)) -> bool {
        let Some(mut fo) = self.fast_open_client() else {
            return false;
        };
        if self.state != super::State::SynSent || self.snd_max != self.iss {
            return false;
        }
        f(&mut fo);
        self.set_fast_open_client(Some(fo));
        true
    }

    /// The Fast Open state set up for an active open with `Config::fast_open`.
    pub(super) fn start_fast_open(&mut self) {
        self.set_fast_open_client(Some(FastOpenClient::default()));
    }

    /// Our SYN's Fast Open option, and how many bytes of data it carries (none on a
    /// retransmission: RFC 7413 4.1.3.1 has a client whose SYN went unanswered assume
    /// the data was the trouble; the data then follows the handshake, as when the server
    /// does not take it). `opts` are the SYN's other options, which the data must leave
    /// room for in the peer's MSS (RFC 6691).
    pub(super) fn fast_open_syn(&mut self, opts: &mut Options, retransmission: bool) -> u32 {
        let Some(mut fo) = self.fast_open_client() else {
            return 0;
        };
        if fo.outcome.is_some() {
            return 0;
        }
        opts.fast_open = Some(fo.cookie.map_or(FastOpen::Request, FastOpen::Cookie));
        if retransmission || fo.cookie.is_none() {
            return 0;
        }
        let own = self.cfg.mss(self.ends.remote().is_ipv6());
        let peer = if fo.mss == 0 {
            self.cfg.default_peer_mss
        } else {
            fo.mss
        };
        let room = usize::from(peer.min(own)).saturating_sub(opts.len(self.cfg.option_layout));
        let len = self.send_buf.len().min(room) as u32;
        fo.syn_data = len;
        self.set_fast_open_client(Some(fo));
        len
    }

    /// The SYN-ACK `seg` (its ACK acceptable, already in SND.UNA) answered a SYN with
    /// Fast Open: the verdict for the cache, the SYN's data it acknowledged freed, and
    /// what it did not acknowledge sent again first thing (RFC 7413 4.2.2).
    pub(super) fn fast_open_answered(
        &mut self,
        now: Instant,
        seg: &Segment<'_>,
        cx: &mut Counters,
    ) {
        let Some(mut fo) = self.fast_open_client() else {
            return;
        };
        let acked = seg.ack.since(self.iss + 1u32);
        if fo.syn_data > 0 {
            if acked > 0 {
                cx.fastopen_active += 1;
            } else {
                cx.fastopen_active_fail += 1;
            }
        }
        let took_cookie = fo.cookie.is_some() && (fo.syn_data == 0 || acked > 0);
        fo.outcome = Some(match seg.options.fast_open {
            Some(FastOpen::Cookie(cookie)) => FastOpenOutcome::Cookie {
                cookie,
                mss: seg.options.mss.unwrap_or(self.cfg.default_peer_mss),
            },
            _ if took_cookie => FastOpenOutcome::Keep,
            _ => FastOpenOutcome::Failed { at: now },
        });
        self.set_fast_open_client(Some(fo));
        if acked > 0 {
            let n = (acked as usize).min(self.send_buf.len());
            self.send_buf.consume(n);
            self.buf_seq += n;
        }
        // Back to what it did not acknowledge; or, when a retransmitted SYN (which
        // carries no data) took SND.NXT back but the first one's data arrived, on to
        // after it.
        self.snd_nxt = seg.ack;
    }

    /// The SYN went unanswered to the last retransmission: a negative answer.
    pub(super) fn fast_open_timed_out(&mut self, now: Instant) {
        if let Some(mut fo) = self.fast_open_client() {
            fo.outcome = Some(FastOpenOutcome::Failed { at: now });
            self.set_fast_open_client(Some(fo));
        }
    }
}
