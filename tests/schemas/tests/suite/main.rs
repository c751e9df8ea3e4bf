//! The typed events against Authgear: every example delivery of today's server parsed and
//! written back, answers valid against Authgear's own response schemas, numbers as Go reads
//! them, deliveries off the model kept as sent. They share the library's harness
//! (`tests/common`, included by path) and fixtures (`tests/fixtures`, linked as this
//! package's own); those that run the example `axum_server` build it with every library
//! feature.

#[path = "../../../common/mod.rs"]
mod common;

mod event_answer;
mod event_audit;
mod event_numbers;
mod event_off_model;
mod event_server;
