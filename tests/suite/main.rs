//! The integration tests, in one binary: CI links one executable for all of them rather
//! than one per file. Each module is gated here on exactly the crate features its tests use
//! (the dev-dependencies, axum, hyper, tonic and tokio among them, are always there); a test
//! that needs more than its module is gated itself. A test that runs the example
//! `axum_server` needs that example's features (every store's, and `catch-up`;
//! `tests/common/example.rs` builds it with every feature). Only a test that needs a process
//! of its own gets its own binary: `tests/soak.rs` and `tests/flood.rs`, which install a
//! counting global allocator and measure the heap (flood also the process's file
//! descriptors). The command-line tool and the actix-web and tonic examples are packages of
//! their own, with their tests (`cli/tests/suite`, `examples/actix-web/`, `examples/tonic/`),
//! which include `tests/common` by path.
//!
//! The tests here run side by side on threads of one process: none may set environment
//! variables, bind a fixed port, install a global tracing subscriber or depend on the
//! process's heap; each takes a free port, its own temp dir (`common::TempDir`) and its own
//! `redis-server` (`common::RedisServer`).

#[path = "../common/mod.rs"]
mod common;
// Stores with faults, in process (shared with the command-line tool's tests).
#[cfg(feature = "inbox-sqlite")]
#[path = "../common/stores.rs"]
mod stores;

// Runs `axum_server` with its admin listener.
#[cfg(all(
    feature = "axum",
    feature = "replay-redis",
    feature = "inbox-sqlite",
    feature = "inbox-redis"
))]
mod admin;
mod axum_stack;
mod budget;
// Against a stand-in for the Admin API, into a SQLite inbox.
#[cfg(all(feature = "catch-up", feature = "inbox-sqlite"))]
mod catch_up;
#[cfg(feature = "axum")]
mod event_axum;
#[cfg(feature = "event")]
mod event_parse;
// Runs `quickstart`.
#[cfg(feature = "axum")]
mod example_quickstart;
// Runs `axum_server` with a file of secrets.
#[cfg(all(
    feature = "axum",
    feature = "replay-redis",
    feature = "inbox-sqlite",
    feature = "inbox-redis"
))]
mod example_secrets;
// Runs `axum_server`.
#[cfg(all(
    feature = "axum",
    feature = "replay-redis",
    feature = "inbox-sqlite",
    feature = "inbox-redis"
))]
mod example_server;
mod hostile;
// Through the layers, replay protection and a SQLite inbox.
#[cfg(all(feature = "metrics", feature = "replay", feature = "inbox-sqlite"))]
mod metrics;
// The hyper example, compiled in, reads the typed events.
#[cfg(feature = "event")]
mod hyper_stack;
#[cfg(feature = "inbox-sqlite")]
mod inbox;
mod readme;
#[cfg(feature = "replay")]
mod replay;
mod secrets;
mod socket;
// Through the layers and a SQLite inbox's worker.
#[cfg(feature = "inbox-sqlite")]
mod span;
#[cfg(feature = "tracing")]
mod tracing_log;
mod verify;
