//! Wire formats, parsed in place and emitted into caller buffers.
//!
//! Parsing never panics: every accessor is checked against the buffer's length first,
//! and every malformation is a [`WireError`] that the stack counts as a drop.

pub mod checksum;
pub mod ip;
pub mod seq;
pub mod tcp;

pub use seq::Seq;

use core::fmt;

/// Why a packet could not be parsed.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub enum WireError {
    /// Shorter than its headers.
    Truncated,
    /// Shorter than its IP length field says (Linux counts these apart, as
    /// IpExtInTruncatedPkts).
    LengthPastEnd,
    /// Not IPv4 or IPv6.
    BadVersion,
    /// A header length field below the minimum or past the end.
    BadHeaderLen,
    /// An IPv4 header or TCP checksum did not verify.
    BadChecksum,
    /// A malformed TCP option list.
    BadOption,
    /// An IP fragment (the stack does not reassemble IP).
    Fragment,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireError::Truncated => "truncated packet",
            WireError::LengthPastEnd => "packet shorter than its IP length field",
            WireError::BadVersion => "not an IPv4 or IPv6 packet",
            WireError::BadHeaderLen => "bad header length",
            WireError::BadChecksum => "bad checksum",
            WireError::BadOption => "malformed TCP option",
            WireError::Fragment => "IP fragment",
        })
    }
}

impl std::error::Error for WireError {}
