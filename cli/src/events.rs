//! `authgear-webhook events [TYPE]`: the event types Authgear documents, blocking or not,
//! with an example delivery of each; and the tables `send` uses.

use std::io::{ErrorKind, Write};

use authgear_webhook::event::{BLOCKING_TYPES, NON_BLOCKING_TYPES};

use crate::Failure;

/// List the event types, blocking or not, with an example delivery of each
///
/// One line per type: TYPE, a tab, `blocking` or `non-blocking`, a tab, an example delivery
/// (compact JSON). With TYPE, only the example delivery of that type (to edit, then
/// `authgear-webhook send URL FILE`).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// One event type, e.g. user.pre_create
    #[arg(value_name = "TYPE")]
    event_type: Option<String>,
}

pub(crate) fn run(args: Args) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let written = match args.event_type {
        Some(event_type) => writeln!(out, "{}", example(&event_type).map_err(Failure::Input)?),
        None => {
            let blocking = BLOCKING_TYPES
                .iter()
                .map(|event_type| (event_type, "blocking"));
            let other = NON_BLOCKING_TYPES
                .iter()
                .map(|event_type| (event_type, "non-blocking"));
            blocking.chain(other).try_for_each(|(event_type, kind)| {
                // Every type has one (the test below).
                let delivery = example(event_type).unwrap_or_default();
                writeln!(out, "{event_type}\t{kind}\t{delivery}")
            })
        }
    };
    match written {
        // `events | head`: the reader has seen enough.
        Err(error) if error.kind() != ErrorKind::BrokenPipe => {
            Err(Failure::Input(format!("cannot write to stdout: {error}")))
        }
        _ => Ok(()),
    }
}

/// The example delivery of `event_type`, or why there is none.
pub(crate) fn example(event_type: &str) -> Result<&'static str, String> {
    find(DELIVERIES, event_type).ok_or_else(|| {
        let known = [BLOCKING_TYPES, NON_BLOCKING_TYPES].concat();
        format!(
            "unknown event type {event_type:?}; known types: {}",
            known.join(", ")
        )
    })
}

/// Authgear's response schema for the blocking `event_type` (self-contained JSON Schema).
pub(crate) fn schema(event_type: &str) -> Option<&'static str> {
    find(SCHEMAS, event_type)
}

/// The text for `event_type` in one of the tables below, if it has one.
fn find(table: &[(&str, &'static str)], event_type: &str) -> Option<&'static str> {
    table
        .iter()
        .find(|(name, _)| *name == event_type)
        .map(|(_, text)| *text)
}

// `DELIVERIES`: an example delivery of each type (`fixtures/events/`, compact JSON as Go
// writes it); `SCHEMAS`: Authgear's response schema for each blocking type
// (`fixtures/schema/`). Written by build.rs from the files, by the name of each.
include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));

#[cfg(test)]
mod tests {
    use authgear_webhook::event::{BLOCKING_TYPES, NON_BLOCKING_TYPES, is_blocking_type};

    use super::{DELIVERIES, SCHEMAS, example, schema};

    #[test]
    fn every_type_the_library_knows_has_a_delivery_and_every_blocking_one_a_schema() {
        for event_type in BLOCKING_TYPES {
            assert!(example(event_type).is_ok(), "{event_type} has a delivery");
            assert!(schema(event_type).is_some(), "{event_type} has a schema");
        }
        for event_type in NON_BLOCKING_TYPES {
            assert!(example(event_type).is_ok(), "{event_type} has a delivery");
            assert_eq!(
                schema(event_type),
                None,
                "{event_type} is answered by nobody"
            );
        }
    }

    #[test]
    fn no_delivery_or_schema_for_a_type_the_library_does_not_know() {
        let known = [BLOCKING_TYPES, NON_BLOCKING_TYPES].concat();
        for (event_type, delivery) in DELIVERIES {
            assert!(known.contains(event_type), "{event_type} is a library type");
            let parsed: serde_json::Value = serde_json::from_str(delivery).expect("JSON");
            assert_eq!(parsed["type"], *event_type, "{event_type}.json is one");
        }
        assert_eq!(DELIVERIES.len(), known.len());
        for (event_type, _) in SCHEMAS {
            assert!(is_blocking_type(event_type), "{event_type} is blocking");
        }
        assert_eq!(SCHEMAS.len(), BLOCKING_TYPES.len());
    }
}
