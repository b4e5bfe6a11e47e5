//! The process's allocator: jemalloc (ADR 0022), and its background
//! thread, which gives back to the system the memory of sessions that
//! have closed.

/// jemalloc, not glibc's malloc: an idle session is a dozen or so small
/// allocations, which jemalloc's size classes hold without a header each,
/// and a connect makes and frees many more, which its thread caches serve
/// in fewer instructions.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Starts jemalloc's background thread, which returns pages nothing has
/// used for jemalloc's decay time (10 s) to the system. Without it jemalloc
/// purges only as the process allocates, so an edge whose connections
/// left (a reconnect storm passed, clients moved to another pod) kept
/// their memory for good. One thread for the process: purging is rare
/// and cheap, and jemalloc would otherwise start one per CPU. A failure
/// is logged, not fatal: the memory is still reused by later sessions.
pub fn return_freed_memory() {
    let started = tikv_jemalloc_ctl::max_background_threads::write(1)
        .and_then(|()| tikv_jemalloc_ctl::background_thread::write(true));
    if let Err(e) = started {
        tracing::warn!(error = %e, "jemalloc's background thread did not start; freed memory stays with the process");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_background_thread_returns_freed_memory() {
        super::return_freed_memory();
        assert_eq!(tikv_jemalloc_ctl::background_thread::read(), Ok(true));
        assert_eq!(tikv_jemalloc_ctl::max_background_threads::read(), Ok(1));
    }
}
