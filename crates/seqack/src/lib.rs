//! seqack: a sans-IO TCP engine and stack written from RFC 9293 and its companions.
//!
//! The crate never reads a clock and never does I/O. Time comes in as an
//! [`Instant`](time::Instant) argument; packets come in as byte slices and go out into
//! buffers the caller owns. Drivers (the simulated link, TUN, socket APIs) live in
//! `seqack-io`; see ARCHITECTURE.md for the layers and the calling order.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod counters;
pub mod stack;
pub mod tcp;
pub mod time;
pub mod wire;

pub use counters::Counters;
pub use stack::{ConnId, ListenerId, Stack, StackConfig, StackEvent};
pub use tcp::{Config, Connection, Error, Event, Reason, State};
pub use time::{Duration, Instant};
pub use wire::Seq;
