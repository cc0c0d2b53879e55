//! Drivers around the sans-IO seqack core: the simulated link in virtual time, packet
//! devices (a Linux TUN device, an in-process pair), the real-time driver loop with
//! blocking and (feature `tokio`) async socket APIs, and the pcap tap.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod device;
pub mod net;
pub mod offload;
pub mod pcap;
pub mod scenario;
pub mod sim;
pub mod simtest;
pub mod workload;
