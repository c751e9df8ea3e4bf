//! `authgear-webhook`: test an Authgear webhook receiver without Authgear (the package
//! `authgear-webhook-cli`, on the `authgear-webhook` library).
//!
//! ```sh
//! cargo install authgear-webhook-cli                 # or, from a clone: cargo install --path cli
//! export AUTHGEAR_WEBHOOK_SECRET=...                  # or: --secret-file FILE
//! authgear-webhook send http://127.0.0.1:9999/ user.pre_create
//! authgear-webhook sign delivery.json
//! authgear-webhook verify --signature 9f86d0... delivery.json
//! authgear-webhook events
//! authgear-webhook inbox counts                      # no secret needed; --file PATH, --redis URL or --admin URL
//! authgear-webhook catch-up --from 2026-12-07T10:00:00Z --dry-run   # AUTHGEAR_ADMIN_API_* set
//! ```
//!
//! One file per subcommand. The secret never comes from an argument (it would show in `ps`
//! and in the shell's history). Exit codes: 0 success; 1 the check failed (Authgear would
//! not accept the answer, the signature does not match); 2 the command could not run (bad
//! arguments, no secret, unreadable file, unknown event type). Every failure is one line on
//! stderr.

mod admin;
mod catch_up;
mod events;
mod inbox;
mod send;
mod sign;
mod verify;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use authgear_webhook::Secret;
use clap::{Parser, Subcommand, error::ErrorKind};

/// The environment variable that holds the secret unless `--secret-file` is given.
const SECRET_ENV: &str = "AUTHGEAR_WEBHOOK_SECRET";

/// Test an Authgear webhook receiver without Authgear: send it signed deliveries of every
/// event type, sign and verify bodies, see and re-drive its inbox, recover missed events
/// from Authgear's audit log into it.
#[derive(Debug, Parser)]
#[command(name = "authgear-webhook", version)]
#[command(
    after_help = "The webhook signing secret comes from $AUTHGEAR_WEBHOOK_SECRET or \
    --secret-file, never from an argument (it would show in `ps` and shell history); `inbox` \
    and `catch-up` need none.\n\
    Exit codes: 0 success, 1 the check failed, 2 the command could not run."
)]
struct Cli {
    /// Read the webhook signing secret from FILE (one trailing newline is ignored) instead
    /// of $AUTHGEAR_WEBHOOK_SECRET
    #[arg(long, global = true, value_name = "FILE")]
    secret_file: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Send(send::Args),
    Sign(sign::Args),
    Verify(verify::Args),
    Events(events::Args),
    Inbox(inbox::Args),
    CatchUp(catch_up::Args),
}

/// Why a command did not succeed: the line for stderr, and the exit code.
#[derive(Debug)]
enum Failure {
    /// The check failed: Authgear would not accept the answer, the signature does not
    /// match (exit 1).
    Failed(String),
    /// The command could not run: bad input, no secret, unreadable file (exit 2).
    Input(String),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    let secret_file = cli.secret_file.as_deref();
    let result = match cli.command {
        Command::Send(args) => send::run(args, secret_file).await,
        Command::Sign(args) => sign::run(args, secret_file),
        Command::Verify(args) => verify::run(args, secret_file).await,
        Command::Events(args) => events::run(args),
        Command::Inbox(args) => inbox::run(args).await,
        Command::CatchUp(args) => catch_up::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Failed(reason)) => {
            eprintln!("{reason}");
            ExitCode::from(1)
        }
        Err(Failure::Input(reason)) => {
            eprintln!("{reason}");
            ExitCode::from(2)
        }
    }
}

/// `--help` and `--version` as clap prints them; any other mistake in one line (clap's
/// first line and the usage), exit 2.
fn usage_error(error: clap::Error) -> ExitCode {
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        error.exit();
    }
    let text = error.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|line| !line.is_empty());
    let what: Vec<_> = lines
        .by_ref()
        .take_while(|line| !line.starts_with("Usage: "))
        .filter(|line| !line.starts_with("tip: "))
        .collect();
    let usage = text
        .lines()
        .find_map(|line| line.strip_prefix("Usage: "))
        .unwrap_or("authgear-webhook --help");
    eprintln!("{}; usage: {usage} (see --help)", what.join(" "));
    ExitCode::from(2)
}

/// The secret from `file` if given, else from `AUTHGEAR_WEBHOOK_SECRET`.
fn secret(file: Option<&Path>) -> Result<Secret, Failure> {
    let Some(path) = file else {
        return Secret::from_env(SECRET_ENV).map_err(|error| {
            Failure::Input(format!(
                "{error}: set it to the webhook signing secret, or pass --secret-file FILE"
            ))
        });
    };
    let mut bytes = read(path)?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        return Err(Failure::Input(format!(
            "{} is empty: it must hold the webhook signing secret",
            path.display()
        )));
    }
    Ok(Secret::from(bytes))
}

/// The bytes of `path`, or of stdin for `-`.
fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    let result = if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes).map(|_| bytes)
    } else {
        std::fs::read(path)
    };
    result.map_err(|error| Failure::Input(format!("cannot read {}: {error}", path.display())))
}

/// An error and its sources, on one line ("client error (Connect): tcp connect error: ...").
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(error) = source {
        text = format!("{text}: {error}");
        source = error.source();
    }
    text
}
