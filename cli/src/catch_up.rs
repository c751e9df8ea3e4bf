//! `authgear-webhook catch-up`: one catch-up over a range given by hand, from Authgear's
//! audit log into a receiver's inbox, through the library's `CatchUp::backfill`; or, with
//! `--dry-run`, the list of the events the inbox is missing.

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use authgear_webhook::{
    catch_up::{AdminApi, AdminApiKey, CatchUp, CatchUpError},
    event::NON_BLOCKING_TYPES,
};

use crate::{
    Failure,
    inbox::{open_inbox, rfc3339, write_error},
};

/// Recover the events the webhook never brought, from Authgear's audit log, once
///
/// Reads the log from --from to --to through the project's Admin API and stores each
/// non-blocking event the inbox has not seen, under --endpoint (the request path the
/// webhook's deliveries are stored under), as the server's own catch-up does, but without
/// its checkpoint. The receiver's worker handles them as recovered deliveries. With
/// --dry-run it stores nothing and prints `missing TYPE ID TIME` for each event the inbox
/// is missing.
///
/// The Admin API key is checked first: a refusal is one line, exit 2. The SQLite inbox
/// takes one process at a time: stop the server first, or use the Redis inbox.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The inbox: its SQLite file, or a Redis URL (redis://... or rediss://...) [default:
    /// $REDIS_URL, else authgear-webhook-inbox.sqlite3]
    #[arg(long, value_name = "PATH|redis://URL")]
    inbox: Option<String>,

    /// The Redis store's key prefix
    #[arg(long, value_name = "PREFIX", default_value = "authgear-webhook:inbox")]
    prefix: String,

    /// The endpoint the webhook's deliveries are stored under (the request path)
    #[arg(long, value_name = "ENDPOINT", default_value = "/")]
    endpoint: String,

    /// Read from this time on: RFC 3339 in UTC (2026-12-07T10:00:00Z) or seconds since the
    /// epoch
    #[arg(long, value_name = "TIME", value_parser = time)]
    from: SystemTime,

    /// Read up to this time, excluded [default: now]
    #[arg(long, value_name = "TIME", value_parser = time)]
    to: Option<SystemTime>,

    /// Only these non-blocking event types [default: every one]
    #[arg(long, value_name = "TYPE,...", value_delimiter = ',')]
    types: Vec<String>,

    /// Store nothing: list the events the inbox is missing
    #[arg(long)]
    dry_run: bool,

    /// The project's Admin API: its full GraphQL URL, e.g.
    /// https://myapp.authgear.cloud/_api/admin/graphql
    #[arg(
        long,
        env = "AUTHGEAR_ADMIN_API_ENDPOINT",
        value_name = "URL",
        hide_env_values = true
    )]
    admin_api_endpoint: String,

    /// The project's app ID
    #[arg(
        long,
        env = "AUTHGEAR_APP_ID",
        value_name = "ID",
        hide_env_values = true
    )]
    app_id: String,

    /// The Admin API key's PEM file, as the portal saves it
    #[arg(
        long,
        env = "AUTHGEAR_ADMIN_API_KEY_FILE",
        value_name = "FILE",
        hide_env_values = true
    )]
    key_file: PathBuf,

    /// The Admin API key's ID, as the portal shows it
    #[arg(
        long,
        env = "AUTHGEAR_ADMIN_API_KEY_ID",
        value_name = "ID",
        hide_env_values = true
    )]
    key_id: String,
}

pub(crate) async fn run(args: Args) -> Result<(), Failure> {
    if let Some(unknown) = args
        .types
        .iter()
        .find(|event_type| !NON_BLOCKING_TYPES.contains(&event_type.as_str()))
    {
        return Err(Failure::Input(format!(
            "--types: {unknown} is not a non-blocking event type (see `authgear-webhook events`)"
        )));
    }
    let to = args.to.unwrap_or_else(SystemTime::now);
    if to <= args.from {
        return Err(Failure::Input("--to must be after --from".into()));
    }
    let key = AdminApiKey::from_pem_file(&args.key_file, args.key_id.as_str())
        .map_err(|error| Failure::Input(format!("{}: {error}", args.key_file.display())))?;
    let api = AdminApi::new(&args.admin_api_endpoint, args.app_id.as_str(), key)
        .map_err(admin_api_error)?;
    api.check().await.map_err(admin_api_error)?;

    let inbox = match args.inbox.as_deref() {
        Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
            open_inbox(None, Some(url), &args.prefix)?
        }
        Some(path) => open_inbox(Some(Path::new(path)), None, &args.prefix)?,
        None => open_inbox(None, None, &args.prefix)?,
    };
    let mut catch_up = CatchUp::new(&inbox, api, args.endpoint.as_str());
    if !args.types.is_empty() {
        catch_up = catch_up.event_types(&args.types);
    }
    let done = catch_up
        .backfill(args.from, to, args.dry_run)
        .await
        .map_err(admin_api_error)?;

    let mut out = std::io::stdout().lock();
    if args.dry_run {
        for event in &done.missing {
            let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(event.timestamp).unwrap_or(0));
            writeln!(
                out,
                "missing {} {} {}",
                event.event_type,
                event.id,
                rfc3339(at)
            )
            .map_err(write_error)?;
        }
        writeln!(
            out,
            "read {}, missing {} (dry run: nothing stored)",
            done.read,
            done.missing.len()
        )
        .map_err(write_error)?;
    } else {
        writeln!(
            out,
            "read {}, stored {} (the others were in the inbox)",
            done.read, done.recovered
        )
        .map_err(write_error)?;
    }
    Ok(())
}

/// One line for a failed catch-up: its words (never the key or a token) and its source.
fn admin_api_error(error: CatchUpError) -> Failure {
    Failure::Input(format!("catch-up: {}", crate::chain(&error)))
}

/// A time given as RFC 3339 in UTC (`2026-12-07T10:00:00Z`, a fraction of a second and an
/// offset of `+00:00` accepted) or as seconds since the epoch.
fn time(text: &str) -> Result<SystemTime, String> {
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(UNIX_EPOCH + Duration::from_secs(seconds));
    }
    let wrong = || format!("{text}: not RFC 3339 in UTC (2026-12-07T10:00:00Z) nor seconds");
    let rest = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix('z'))
        .or_else(|| text.strip_suffix("+00:00"))
        .ok_or_else(wrong)?;
    let (date, clock) = rest
        .split_once('T')
        .or_else(|| rest.split_once('t'))
        .ok_or_else(wrong)?;
    let clock = clock.split_once('.').map_or(clock, |(whole, _)| whole);
    let numbers = |text: &str, sep: char, widths: &[usize]| -> Option<Vec<u64>> {
        let parts: Vec<&str> = text.split(sep).collect();
        (parts.len() == widths.len()
            && parts.iter().zip(widths).all(|(part, &width)| {
                part.len() == width && part.bytes().all(|b| b.is_ascii_digit())
            }))
        .then(|| parts.iter().filter_map(|part| part.parse().ok()).collect())
    };
    let date = numbers(date, '-', &[4, 2, 2]).ok_or_else(wrong)?;
    let clock = numbers(clock, ':', &[2, 2, 2]).ok_or_else(wrong)?;
    let (year, month, day) = (date[0], date[1], date[2]);
    let (hour, minute, second) = (clock[0], clock[1], clock[2]);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if year < 1970
        || !(1..=12).contains(&month)
        || !(1..=days_in_month).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(wrong());
    }
    // Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
    let y = if month <= 2 { year - 1 } else { year };
    let (era, yoe) = (y / 400, y % 400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(UNIX_EPOCH + Duration::from_secs(days * 86_400 + hour * 3600 + minute * 60 + second))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let secs = |text: &str| {
            time(text)
                .ok()
                .map(|at| at.duration_since(UNIX_EPOCH).expect("after").as_secs())
        };
        assert_eq!(secs("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(secs("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(secs("2025-11-28T19:07:18Z"), Some(1_764_356_838));
        assert_eq!(secs("2025-11-28T19:07:18.999Z"), Some(1_764_356_838));
        assert_eq!(secs("2025-11-28T19:07:18+00:00"), Some(1_764_356_838));
        assert_eq!(secs("2099-12-31T23:59:59Z"), Some(4_102_444_799));
        assert_eq!(secs("1764356838"), Some(1_764_356_838));
        for wrong in [
            "",
            "yesterday",
            "2025-11-28",
            "2025-11-28T19:07:18",
            "2025-11-28T19:07:18+01:00",
            "2025-02-29T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-11-28T24:00:00Z",
            "25-11-28T19:07:18Z",
            "-1",
        ] {
            assert_eq!(secs(wrong), None, "{wrong}");
        }
        // Every day of a few years, against the formatter.
        for day in (0..3 * 366).map(|d| 951_782_400 + d * 86_400 + 3_723) {
            let at = UNIX_EPOCH + Duration::from_secs(day);
            let text = rfc3339(at);
            assert_eq!(time(&text), Ok(at), "{text}");
        }
    }
}
