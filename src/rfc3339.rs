//! Times as RFC 3339 in UTC: the catch-up's range for Authgear's Admin API (seconds), and
//! the admin service's dead letters (milliseconds, as the command-line tool prints them).

use std::time::{SystemTime, UNIX_EPOCH};

/// `seconds` since the epoch as `2025-01-02T03:04:05Z`.
#[cfg(feature = "catch-up")]
pub(crate) fn seconds(seconds: i64) -> String {
    let (date, time) = civil(seconds);
    format!("{date}T{time}Z")
}

/// `time` as `2026-11-30T05:57:12.345Z` (a time before the epoch as the epoch).
pub(crate) fn millis(time: SystemTime) -> String {
    let ms = time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    });
    let (date, time) = civil(ms.div_euclid(1000));
    format!("{date}T{time}.{:03}Z", ms.rem_euclid(1000))
}

/// The date (`YYYY-MM-DD`) and time of day (`hh:mm:ss`) of `seconds` since the epoch, in UTC.
fn civil(seconds: i64) -> (String, String) {
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!(
            "{:02}:{:02}:{:02}",
            rest / 3600,
            rest % 3600 / 60,
            rest % 60
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[cfg(feature = "catch-up")]
    #[test]
    fn seconds_are_utc_rfc3339() {
        assert_eq!(seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(seconds(1_735_787_045), "2025-01-02T03:04:05Z");
        assert_eq!(seconds(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(seconds(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn millis_are_utc_rfc3339() {
        let at = |ms: u64| millis(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(1_764_356_838_123), "2025-11-28T19:07:18.123Z");
    }
}
