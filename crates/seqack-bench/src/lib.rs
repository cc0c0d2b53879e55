//! seqack's benchmark workloads, each runnable on seqack and on its anchors (smoltcp on
//! the same in-memory link, Linux over loopback) so that `seqack bench` can interleave
//! them in one run and print ratios. The figures are wall-clock or CPU measurements;
//! nothing here asserts a speed.

#![warn(missing_docs)]

pub mod bulk;
pub mod churn;
pub mod link;
pub mod lossy;
pub mod scale;
pub mod smol;
pub mod tun;

/// CPU time of the calling thread in seconds (`CLOCK_THREAD_CPUTIME_ID`: exact, not
/// the scheduler tick's granularity of /proc's statistics).
pub fn cpu_time() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}
