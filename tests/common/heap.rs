//! The live heap of a test binary that installs `peak_alloc`'s counting allocator as its
//! `#[global_allocator]` (`tests/soak.rs`, `tests/flood.rs`: binaries of their own, so that
//! nothing else in the process moves the count). Included by them with `#[path]`; not
//! part of `tests/common/mod.rs`, which every test binary includes.

use std::time::Duration;

use peak_alloc::PeakAlloc;

/// Waits (bounded) until the live heap counted by `heap` stops changing, and returns it.
pub(crate) async fn settled_heap(heap: &PeakAlloc) -> usize {
    let mut last = heap.current_usage();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = heap.current_usage();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}
