//! The integration tests, in one binary: CI links one executable for all of them rather
//! than one per file. Only a test that needs a process of its own gets its own binary
//! (`tests/soak.rs`, which installs a counting global allocator).

#[path = "../common/mod.rs"]
mod common;

mod axum_stack;
// Runs the examples, built with every feature (tests/common/example.rs).
#[cfg(all(
    feature = "axum",
    feature = "replay",
    feature = "redis",
    feature = "inbox"
))]
mod example_server;
mod hostile;
// The hyper and tonic examples, compiled in, read the typed events.
#[cfg(feature = "event")]
mod hyper_stack;
mod socket;
#[cfg(feature = "event")]
mod tonic_stack;
#[cfg(feature = "tracing")]
mod tracing_log;
mod verify;
