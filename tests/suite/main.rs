//! The integration tests, in one binary: CI links one executable for all of them rather
//! than one per file. Only a test that needs a process of its own gets its own binary
//! (`tests/soak.rs`, which installs a counting global allocator).

#[path = "../common/mod.rs"]
mod common;

mod axum_stack;
mod example_server;
mod hostile;
mod hyper_stack;
mod socket;
mod tonic_stack;
mod tracing_log;
mod verify;
