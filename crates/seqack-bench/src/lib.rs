//! seqack's benchmark workloads, each runnable on seqack and on its anchors (smoltcp on
//! the same in-memory link, Linux over loopback) so that `seqack bench` can interleave
//! them in one run and print ratios. The figures are wall-clock or CPU measurements;
//! nothing here asserts a speed.

#![warn(missing_docs)]

pub mod bulk;
pub mod churn;
pub mod link;
pub mod lossy;
pub mod smol;

/// CPU time of the calling thread in seconds (from /proc/thread-self/schedstat), or
/// wall-clock time since the first call where that is not readable.
pub fn cpu_time() -> f64 {
    let ns = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
    match ns {
        Some(ns) => ns as f64 / 1e9,
        None => {
            static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
            ORIGIN
                .get_or_init(std::time::Instant::now)
                .elapsed()
                .as_secs_f64()
        }
    }
}
