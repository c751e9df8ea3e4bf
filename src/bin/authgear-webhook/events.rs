//! `authgear-webhook events [TYPE]`: the event types Authgear documents, blocking or not,
//! with an example delivery of each; and the tables `send` uses.

use std::io::{ErrorKind, Write};

use authgear_webhook::event::is_blocking_type;

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
        None => EVENTS.iter().try_for_each(|(event_type, delivery)| {
            let kind = if is_blocking_type(event_type) {
                "blocking"
            } else {
                "non-blocking"
            };
            writeln!(out, "{event_type}\t{kind}\t{delivery}")
        }),
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
    match EVENTS.iter().find(|(name, _)| *name == event_type) {
        Some((_, delivery)) => Ok(delivery),
        None => {
            let known: Vec<_> = EVENTS.iter().map(|(name, _)| *name).collect();
            Err(format!(
                "unknown event type {event_type:?}; known types: {}",
                known.join(", ")
            ))
        }
    }
}

/// Authgear's response schema for the blocking `event_type` (self-contained JSON Schema).
pub(crate) fn schema(event_type: &str) -> Option<&'static str> {
    SCHEMAS
        .iter()
        .find(|(name, _)| *name == event_type)
        .map(|(_, schema)| *schema)
}

/// `EVENTS`: an example delivery of each type (`tests/fixtures/events/`, compact JSON as
/// Go writes it); `SCHEMAS`: Authgear's response schema for each blocking type
/// (`tests/fixtures/schema/`). Both folders are in the package (Cargo.toml `include`).
macro_rules! events {
    (blocking: [$($blocking:literal),* $(,)?], other: [$($other:literal),* $(,)?] $(,)?) => {
        const EVENTS: &[(&str, &str)] = &[$(
            ($blocking, include_str!(concat!(
                "../../../tests/fixtures/events/", $blocking, ".json"
            ))),
        )* $(
            ($other, include_str!(concat!("../../../tests/fixtures/events/", $other, ".json"))),
        )*];
        const SCHEMAS: &[(&str, &str)] = &[$(
            ($blocking, include_str!(concat!(
                "../../../tests/fixtures/schema/", $blocking, ".response.schema.json"
            ))),
        )*];
    };
}

// Every event type Authgear documents.
events! {
    blocking: [
        "user.pre_create",
        "user.profile.pre_update",
        "user.pre_schedule_deletion",
        "user.pre_schedule_anonymization",
        "oidc.jwt.pre_create",
        "oidc.id_token.pre_create",
        "authentication.pre_initialize",
        "authentication.post_identified",
        "authentication.pre_authenticated",
    ],
    other: [
        "user.created",
        "user.authenticated",
        "user.reauthenticated",
        "user.profile.updated",
        "user.disabled",
        "user.reenabled",
        "user.anonymous.promoted",
        "user.deletion_scheduled",
        "user.deletion_unscheduled",
        "user.deleted",
        "user.anonymization_scheduled",
        "user.anonymization_unscheduled",
        "user.anonymized",
        "identity.email.added",
        "identity.email.removed",
        "identity.email.updated",
        "identity.email.verified",
        "identity.email.unverified",
        "identity.phone.added",
        "identity.phone.removed",
        "identity.phone.updated",
        "identity.phone.verified",
        "identity.phone.unverified",
        "identity.username.added",
        "identity.username.removed",
        "identity.username.updated",
        "identity.username.verified",
        "identity.username.unverified",
        "identity.oauth.connected",
        "identity.oauth.disconnected",
        "identity.biometric.enabled",
        "identity.biometric.disabled",
        "usage.alert.triggered",
    ],
}
