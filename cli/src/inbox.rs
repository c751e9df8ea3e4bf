//! `authgear-webhook inbox counts|dead|redrive`: look after a receiver's inbox (the SQLite
//! file or Redis, through the library's public inbox API; or a running server's, through
//! its admin service). No secret needed.

use std::{
    io::{ErrorKind, Write},
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use authgear_webhook::inbox::{EventKey, Inbox, RedisStore, SqliteStore, StoreError};
use serde_json::json;

use crate::{
    Failure,
    admin::{Admin, Dead},
    chain,
};

/// The file `examples/axum_server.rs` uses when `AUTHGEAR_WEBHOOK_INBOX` is not set.
const DEFAULT_FILE: &str = "authgear-webhook-inbox.sqlite3";

/// How long opening the file waits while another process holds it. A server holds it as
/// long as it runs, so waiting longer would not help; another run of this tool holds it
/// for milliseconds.
const LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// Dead letters looked at per step when re-driving them all.
const PAGE: usize = 500;

/// See and re-drive a receiver's inbox: counts, dead letters
///
/// The inbox is the SQLite file (--file, default ./authgear-webhook-inbox.sqlite3, as
/// examples/axum_server.rs uses), or Redis (--redis URL, or $REDIS_URL when --file is not
/// given), or a running server's, through its admin service (--admin URL: the example's
/// ADMIN_ADDR, e.g. http://127.0.0.1:9998). The SQLite file takes one process at a time:
/// while its server runs, use --admin (or stop the server first; its worker handles
/// re-driven events when it starts again). Redis is shared: the tool works beside running
/// servers.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The inbox's SQLite file [default: authgear-webhook-inbox.sqlite3]
    #[arg(long, global = true, value_name = "PATH", conflicts_with = "redis")]
    file: Option<PathBuf>,

    /// The inbox in Redis, e.g. redis://127.0.0.1:6379 [default: $REDIS_URL]
    #[arg(long, global = true, value_name = "URL")]
    redis: Option<String>,

    /// A running server's inbox, through its admin service, e.g. http://127.0.0.1:9998
    #[arg(
        long,
        global = true,
        value_name = "URL",
        conflicts_with_all = ["file", "redis"]
    )]
    admin: Option<String>,

    /// The Redis store's key prefix
    #[arg(
        long,
        global = true,
        value_name = "PREFIX",
        default_value = "authgear-webhook:inbox"
    )]
    prefix: String,

    /// One JSON object per line instead of tab-separated fields
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    Counts(CountsArgs),
    Dead(DeadArgs),
    Redrive(RedriveArgs),
}

/// How many events are queued, in flight, dead and done, and the store's size
///
/// One line each: NAME, a tab, the number (`queued`, `in_flight`, `dead`, `done`, `bytes`).
/// `bytes` is the file's size (its write-ahead log included), or Redis's estimate.
#[derive(Debug, clap::Args)]
struct CountsArgs {}

/// List the dead letters, in key order (endpoint, then id), a page at a time
///
/// One line each: ENDPOINT, ID, TYPE, ATTEMPTS, DIED_AT (UTC, RFC 3339), LAST_ERROR,
/// separated by tabs (tabs and line breaks inside a field are printed as spaces; --json
/// gives them exactly). A full page ends with a line on stderr naming the next page's
/// --after.
#[derive(Debug, clap::Args)]
struct DeadArgs {
    /// At most N dead letters
    #[arg(long, value_name = "N", default_value_t = 100)]
    limit: usize,

    /// Start after this dead letter (the last line of the previous page)
    #[arg(long, num_args = 2, value_names = ["ENDPOINT", "ID"])]
    after: Option<Vec<String>>,
}

/// Queue dead letters again (attempts reset): one by id, or all
///
/// Prints ENDPOINT, a tab, ID for each event re-driven. Exit 1 if ID is not a dead letter.
#[derive(Debug, clap::Args)]
struct RedriveArgs {
    /// The event id of the dead letter
    #[arg(
        value_name = "ID",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    id: Option<String>,

    /// The endpoint it was delivered to (the request path, e.g. /); needed only when the id
    /// is dead on several endpoints
    #[arg(long, value_name = "ENDPOINT")]
    endpoint: Option<String>,

    /// Every dead letter
    #[arg(long)]
    all: bool,
}

/// Where the inbox is asked: its store, or a running server's admin service.
enum Target {
    Store(Inbox),
    Admin(Box<Admin>),
}

pub(crate) async fn run(args: Args) -> Result<(), Failure> {
    let inbox = match &args.admin {
        Some(url) => Target::Admin(Box::new(Admin::new(url)?)),
        None => Target::Store(open(&args)?),
    };
    let mut out = std::io::stdout().lock();
    match args.command {
        Command::Counts(_) => counts(&inbox, args.json, &mut out).await,
        Command::Dead(dead) => list(&inbox, dead, args.json, &mut out).await,
        Command::Redrive(redrive) => self::redrive(&inbox, redrive, args.json, &mut out).await,
    }
}

/// The inbox the arguments name: `--file`, else `--redis`, else `$REDIS_URL`, else the
/// default file.
fn open(args: &Args) -> Result<Inbox, Failure> {
    open_inbox(args.file.as_deref(), args.redis.as_deref(), &args.prefix)
}

/// The SQLite inbox `file`, or else the Redis inbox at `redis` (key prefix `prefix`), or
/// else at `$REDIS_URL`, or else the default file. Shared with `catch-up`.
pub(crate) fn open_inbox(
    file: Option<&Path>,
    redis: Option<&str>,
    prefix: &str,
) -> Result<Inbox, Failure> {
    let redis = match (file, redis) {
        (Some(_), _) => None,
        (None, Some(url)) => Some(url.to_owned()),
        (None, None) => std::env::var("REDIS_URL")
            .ok()
            .filter(|url| !url.is_empty()),
    };
    if let Some(url) = redis {
        let store = RedisStore::builder()
            .prefix(prefix)
            .open(url.as_str())
            .map_err(|error| Failure::Input(format!("--redis: {}", chain(&error))))?;
        return Ok(Inbox::new(store));
    }
    let path = file.unwrap_or(Path::new(DEFAULT_FILE));
    // Opening would create it: an empty inbox where the user meant another file.
    if !path.is_file() {
        return Err(Failure::Input(format!(
            "{}: no inbox file here (the server creates it; name another file, or a Redis \
             inbox)",
            path.display()
        )));
    }
    let store = SqliteStore::builder(path)
        .lock_timeout(LOCK_TIMEOUT)
        .open()
        .map_err(|error| {
            // The store's own words for a file another process holds (SqliteStore docs).
            if error.to_string() == "inbox file is in use by another process" {
                Failure::Input(format!(
                    "{}: inbox file is in use by another process: stop the server, ask it \
                     (--admin URL, its admin service), or use the Redis inbox",
                    path.display()
                ))
            } else {
                Failure::Input(format!("{}: {}", path.display(), chain(&error)))
            }
        })?;
    Ok(Inbox::new(store))
}

async fn counts(inbox: &Target, json: bool, out: &mut impl Write) -> Result<(), Failure> {
    let [queued, in_flight, dead, done, bytes] = match inbox {
        Target::Store(inbox) => {
            let counts = inbox.counts().await.map_err(store_error)?;
            let bytes = inbox.size().await.map_err(store_error)?;
            [
                counts.queued,
                counts.in_flight,
                counts.dead,
                counts.done,
                bytes,
            ]
        }
        Target::Admin(admin) => admin.counts().await?,
    };
    let written = if json {
        writeln!(
            out,
            "{}",
            json!({
                "queued": queued,
                "in_flight": in_flight,
                "dead": dead,
                "done": done,
                "bytes": bytes,
            })
        )
    } else {
        writeln!(
            out,
            "queued\t{queued}\nin_flight\t{in_flight}\ndead\t{dead}\ndone\t{done}\nbytes\t{bytes}"
        )
    };
    written.map_err(write_error)
}

/// Up to `limit` dead letters after `after`, from the store or the service.
async fn page(inbox: &Target, after: Option<EventKey>, limit: usize) -> Result<Vec<Dead>, Failure> {
    match inbox {
        Target::Store(inbox) => Ok(inbox
            .dead_letters(after, limit)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|dead| Dead {
                key: dead.key,
                event_type: dead.event_type,
                attempts: dead.attempts.into(),
                died_at: rfc3339(dead.died_at),
                last_error: dead.last_error,
            })
            .collect()),
        Target::Admin(admin) => admin.dead(after.as_ref(), limit).await,
    }
}

async fn list(
    inbox: &Target,
    args: DeadArgs,
    json: bool,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let after = args
        .after
        .map(|key| EventKey::new(key[0].as_str(), key[1].as_str()));
    let page = page(inbox, after, args.limit).await?;
    for dead in &page {
        let written = if json {
            writeln!(out, "{}", dead_json(dead))
        } else {
            writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}\t{}",
                field(&dead.key.endpoint),
                field(&dead.key.id),
                field(&dead.event_type),
                dead.attempts,
                dead.died_at,
                field(dead.last_error.as_deref().unwrap_or(""))
            )
        };
        written.map_err(write_error)?;
    }
    if let Some(last) = page.last().filter(|_| page.len() == args.limit) {
        eprintln!(
            "more may follow: --after {:?} {:?}",
            last.key.endpoint, last.key.id
        );
    }
    Ok(())
}

async fn redrive(
    inbox: &Target,
    args: RedriveArgs,
    json: bool,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let inbox = match inbox {
        Target::Store(inbox) => inbox,
        // The service looks the id up and re-drives, one request; or a thousand at a time,
        // following its `next`.
        Target::Admin(admin) => {
            return match args.id {
                Some(id) => {
                    let key = admin.redrive(&id, args.endpoint.as_deref()).await?;
                    print_key(out, &key, json)
                }
                None => {
                    admin
                        .redrive_all(args.endpoint.as_deref(), |key| print_key(out, key, json))
                        .await
                }
            };
        }
    };
    let keys = match (args.id, args.endpoint) {
        (Some(id), Some(endpoint)) => vec![EventKey::new(endpoint, id)],
        (Some(id), None) => vec![find(inbox, &id).await?],
        // `--all`: a page at a time, once through (`Inbox::redrive_dead`).
        (None, endpoint) => {
            let mut after = None;
            loop {
                let step = inbox
                    .redrive_dead(endpoint.as_deref(), after, PAGE)
                    .await
                    .map_err(store_error)?;
                for key in &step.keys {
                    print_key(out, key, json)?;
                }
                match step.next {
                    Some(next) => after = Some(next),
                    None => return Ok(()),
                }
            }
        }
    };
    for key in keys {
        if !inbox.redrive(&key).await.map_err(store_error)? {
            return Err(Failure::Failed(format!(
                "no dead letter {} on endpoint {}",
                key.id, key.endpoint
            )));
        }
        print_key(out, &key, json)?;
    }
    Ok(())
}

/// The key of the dead letter `id`, on whichever endpoint it is dead.
async fn find(inbox: &Inbox, id: &str) -> Result<EventKey, Failure> {
    let mut found = inbox.find_dead(id).await.map_err(store_error)?;
    match found.len() {
        0 => Err(Failure::Failed(format!("no dead letter with id {id}"))),
        1 => Ok(found.remove(0)),
        _ => Err(Failure::Input(format!(
            "id {id} is dead on several endpoints ({}): give --endpoint",
            found
                .iter()
                .map(|key| key.endpoint.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn print_key(out: &mut impl Write, key: &EventKey, json: bool) -> Result<(), Failure> {
    let written = if json {
        writeln!(out, "{}", json!({"endpoint": key.endpoint, "id": key.id}))
    } else {
        writeln!(out, "{}\t{}", field(&key.endpoint), field(&key.id))
    };
    written.map_err(write_error)
}

fn dead_json(dead: &Dead) -> serde_json::Value {
    json!({
        "endpoint": dead.key.endpoint,
        "id": dead.key.id,
        "type": dead.event_type,
        "attempts": dead.attempts,
        "died_at": dead.died_at,
        "last_error": dead.last_error,
    })
}

/// A text field on one line: control characters (tabs, line breaks) become spaces.
fn field(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `time` in UTC as RFC 3339 with milliseconds, e.g. `2026-11-30T05:57:12.345Z`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let ms = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let (secs, ms) = (ms / 1000, ms % 1000);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u128::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

pub(crate) fn store_error(error: StoreError) -> Failure {
    Failure::Input(format!("inbox: {}", chain(&error)))
}

pub(crate) fn write_error(error: std::io::Error) -> Failure {
    // `inbox dead | head`: the reader has seen enough.
    if error.kind() == ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    Failure::Input(format!("cannot write to stdout: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        let at = |ms: u64| rfc3339(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(1_764_356_838_123), "2025-11-28T19:07:18.123Z");
        assert_eq!(at(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }
}
