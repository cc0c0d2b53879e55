//! Drivers around the sans-IO seqack core: the simulated link in virtual time and the
//! pcap tap. (TUN, the driver loop and the socket APIs join them here.)

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod pcap;
pub mod scenario;
pub mod sim;
pub mod workload;
