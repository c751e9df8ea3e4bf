//! The `authgear-webhook` binary, run for real, in one test binary. It shares the library's
//! harness (`tests/common` at the workspace's root: the process runner, the example server,
//! `redis-server`) rather than a copy: these tests run in the workspace, not from the
//! published package. The tests that start the library's example `axum_server` build it
//! with every library feature (`tests/common/example.rs`), into the workspace's one target
//! dir.
//!
//! As in the library's suite, the tests run side by side on threads of one process: none
//! sets environment variables in this process, binds a fixed port or depends on the heap.

#[path = "../../../tests/common/mod.rs"]
mod common;

mod catch_up;
mod cli;
mod inbox_admin;
mod readme;
mod send;
