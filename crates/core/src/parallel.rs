//! How many threads heaplens' heap walk and analyses may use, and running two independent
//! pieces of work at once. The analyses read a finished graph, which no one changes, so sharing
//! it between threads needs no lock. `HEAPLENS_THREADS` sets the count (1 makes the walk and
//! every analysis run on the calling thread, as a benchmark's baseline does); by default, the
//! cores the process may run on.

use std::sync::Mutex;

/// The environment variable that sets how many threads the walk and the analyses use.
pub const THREADS_VAR: &str = "HEAPLENS_THREADS";

/// More would only add threads that wait for memory.
const MOST_THREADS: usize = 64;

/// The threads the walk and the analyses may use: `HEAPLENS_THREADS` when it is a positive whole number,
/// otherwise the cores this process may run on; at least 1.
pub fn threads() -> usize {
    let configured = std::env::var(THREADS_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0);
    configured
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .min(MOST_THREADS)
}

/// Runs `a` and `b`, on two threads when more than one is allowed, and returns both results.
/// When a thread cannot be started (a process at its thread limit), both run here, one after
/// the other: the answer never depends on the thread count.
pub fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB,
    RA: Send,
{
    if threads() < 2 {
        return (a(), b());
    }
    let work = Mutex::new(Some(a));
    let take = || work.lock().ok().and_then(|mut w| w.take());
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("heaplens-analysis".into())
            .spawn_scoped(scope, || take().map(|a| a()));
        let rb = b();
        let ra = match spawned.ok().map(|h| h.join()) {
            Some(Ok(Some(ra))) => ra,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            // Not started: run it here.
            Some(Ok(None)) | None => take().expect("the work not started is still here")(),
        };
        (ra, rb)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_returns_both_results_whatever_the_thread_count() {
        let data: Vec<u64> = (0..1000).collect();
        let (a, b) = join(
            || data[..500].iter().sum::<u64>(),
            || data[500..].iter().sum::<u64>(),
        );
        assert_eq!(a + b, data.iter().sum::<u64>());
    }

    #[test]
    fn threads_is_at_least_one() {
        assert!(threads() >= 1);
    }
}
