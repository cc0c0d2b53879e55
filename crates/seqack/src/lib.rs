//! seqack: a sans-IO TCP engine and stack written from RFC 9293 and its companions.
//!
//! The crate never reads a clock and never does I/O. Time comes in as an
//! [`Instant`] argument; packets come in as byte slices and go out into
//! buffers the caller owns. Drivers (the simulated link, TUN, socket APIs) live in
//! `seqack-io`; see ARCHITECTURE.md for the layers and the calling order.
//!
//! ```
//! use seqack::{Instant, Stack, StackConfig, State};
//!
//! let mut stack = Stack::new(StackConfig::default());
//! stack.add_address("10.0.0.1".parse().unwrap());
//! let now = Instant::ZERO;
//! let id = stack.connect(now, None, "10.0.0.2:80".parse().unwrap()).unwrap();
//! assert_eq!(stack.state(id), State::SynSent);
//!
//! // Drain what the stack wants to send: here, the SYN, as an IPv4 packet.
//! let mut buf = [0u8; 1500];
//! let n = stack.poll_transmit(now, &mut buf).expect("a SYN");
//! let ip = seqack::wire::ip::parse(&buf[..n]).unwrap();
//! let syn = seqack::wire::tcp::parse(ip.payload, ip.src, ip.dst, true).unwrap();
//! assert!(syn.flags.syn() && !syn.flags.ack());
//! assert_eq!(syn.options.mss, Some(1460));
//! assert!(stack.poll_transmit(now, &mut buf).is_none());
//!
//! // With no answer, the SYN is retransmitted when the 1 s RTO expires.
//! let rto = stack.poll_timeout().expect("the retransmission timer");
//! assert!(rto <= Instant::from_secs(1));
//! stack.handle_timeout(Instant::from_secs(1));
//! assert!(stack.poll_transmit(Instant::from_secs(1), &mut buf).is_some());
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod counters;
pub mod stack;
pub mod tcp;
pub mod time;
pub mod wire;
mod word;

pub use counters::Counters;
pub use stack::{ConnId, ListenerId, Stack, StackConfig, StackEvent};
pub use tcp::{Config, Connection, Error, Event, Reason, State};
pub use time::{Duration, Instant};
pub use wire::Seq;
