//! Drivers around the seqack core.
