//! The TCP connection engine: one connection's state machine, sans-IO.

mod config;
pub mod congestion;
mod conn;
mod event;
mod fast_open;
mod input;
mod output;
pub mod rack;
mod recovery;
pub mod recv_buf;
mod ring;
pub mod rtt;
pub mod sack;
pub mod send_buf;
mod state;
pub mod time_wait;
pub mod timers;

pub use config::{Config, ConfigError};
pub use conn::{Connection, CookieOpen, Disposition, RecvError, SendError, Shutdown, SockOpts};
pub use event::{Error, Event, Reason};
pub use fast_open::FastOpenOutcome;
pub use output::write_packet;
pub(crate) use output::Burst;
pub use state::{rfc9293_allows, State};
pub use timers::Timer;
