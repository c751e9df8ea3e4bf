//! The integration tests, in one binary: CI links one executable for all of them rather
//! than one per file. A module that needs features is gated here with the features its
//! tests use. Only a test that needs a process of its own gets its own binary: `tests/soak.rs`
//! and `tests/flood.rs`, which install a counting global allocator and measure the heap
//! (flood also the process's file descriptors).
//!
//! The tests here run side by side on threads of one process: none may set environment
//! variables, bind a fixed port, install a global tracing subscriber or depend on the
//! process's heap; each takes a free port, its own temp dir (`common::TempDir`) and its own
//! `redis-server`.

#[path = "../common/mod.rs"]
mod common;

mod axum_stack;
mod budget;
#[cfg(feature = "cli")]
mod cli;
#[cfg(feature = "event")]
mod event_answer;
#[cfg(all(
    feature = "axum",
    feature = "replay",
    feature = "redis",
    feature = "inbox"
))]
mod event_audit;
#[cfg(feature = "axum")]
mod event_axum;
#[cfg(feature = "event")]
mod event_numbers;
#[cfg(all(feature = "axum", feature = "tracing"))]
mod event_off_model;
#[cfg(feature = "event")]
mod event_parse;
#[cfg(all(
    feature = "axum",
    feature = "replay",
    feature = "redis",
    feature = "inbox"
))]
mod event_server;
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
#[cfg(feature = "inbox")]
mod inbox;
#[cfg(all(
    feature = "axum",
    feature = "replay",
    feature = "redis",
    feature = "inbox"
))]
mod replay;
#[cfg(all(
    feature = "cli",
    feature = "axum",
    feature = "replay",
    feature = "redis",
    feature = "inbox"
))]
mod send;
mod socket;
#[cfg(feature = "event")]
mod tonic_stack;
#[cfg(feature = "tracing")]
mod tracing_log;
mod verify;
