//! What an admin request asks: its route, from the path, and its parameters, from the
//! query; and the dead letters' page cursor.

use http::Method;

use crate::inbox::EventKey;

/// The routes, relative to where the service is mounted.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Route {
    Health,
    Counts,
    Dead,
    RedriveAll,
    /// The event id, percent-decoded.
    Redrive(String),
}

impl Route {
    /// The route of `path` (`None`: 404), a segment at a time: an id is one segment,
    /// percent-encoded (`/` as `%2F`).
    pub(super) fn of(path: &str) -> Option<Self> {
        let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        Some(match segments[..] {
            ["health"] => Self::Health,
            ["inbox", "counts"] => Self::Counts,
            ["inbox", "dead"] => Self::Dead,
            ["inbox", "dead", "redrive"] => Self::RedriveAll,
            ["inbox", "dead", id, "redrive"] if !id.is_empty() => {
                Self::Redrive(percent_decode(id, false)?)
            }
            _ => return None,
        })
    }

    /// The one method the route answers.
    pub(super) fn method(&self) -> Method {
        match self {
            Self::Health | Self::Counts | Self::Dead => Method::GET,
            Self::RedriveAll | Self::Redrive(_) => Method::POST,
        }
    }

    /// The query parameters the route takes.
    fn parameters(&self) -> &'static [&'static str] {
        match self {
            Self::Health | Self::Counts => &[],
            Self::Dead => &["after", "limit"],
            Self::RedriveAll => &["endpoint", "after", "limit"],
            Self::Redrive(_) => &["endpoint"],
        }
    }
}

/// The query parameters of a request: each known one at most once.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Query {
    pub(super) after: Option<EventKey>,
    pub(super) limit: Option<usize>,
    pub(super) endpoint: Option<String>,
}

/// The most dead letters one page lists, or one `POST /inbox/dead/redrive` looks at.
pub(super) const MAX_LIMIT: usize = 1000;

impl Query {
    /// The parameters of `query` for `route`; `Err` says what is wrong (a 400).
    pub(super) fn parse(route: &Route, query: Option<&str>) -> Result<Self, String> {
        let mut parsed = Self::default();
        let mut seen: Vec<String> = Vec::new();
        for pair in query
            .unwrap_or("")
            .split('&')
            .filter(|pair| !pair.is_empty())
        {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(name, true).ok_or("the query is not UTF-8")?;
            let value = percent_decode(value, true).ok_or_else(|| format!("{name}: not UTF-8"))?;
            if !route.parameters().contains(&name.as_str()) {
                return Err(format!("unknown parameter {name:?}"));
            }
            if seen.contains(&name) {
                return Err(format!("{name}: given twice"));
            }
            match name.as_str() {
                "after" => {
                    parsed.after =
                        Some(cursor_key(&value).ok_or("after: not a cursor this service gave")?);
                }
                "limit" => {
                    parsed.limit = Some(
                        value
                            .parse::<usize>()
                            .ok()
                            .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                            .ok_or_else(|| format!("limit: a number from 1 to {MAX_LIMIT}"))?,
                    );
                }
                _ => parsed.endpoint = Some(value),
            }
            seen.push(name);
        }
        Ok(parsed)
    }
}

/// The cursor of the page after `key`: its endpoint and id, each hex-encoded (UTF-8
/// bytes), joined by a dot. URL-safe as it is, and stable (the command-line tool makes one
/// from `--after ENDPOINT ID`).
pub(super) fn cursor(key: &EventKey) -> String {
    format!("{}.{}", hex::encode(&key.endpoint), hex::encode(&key.id))
}

/// The key a [`cursor`] names.
fn cursor_key(cursor: &str) -> Option<EventKey> {
    let (endpoint, id) = cursor.split_once('.')?;
    let text = |hex: &str| String::from_utf8(hex::decode(hex).ok()?).ok();
    Some(EventKey::new(text(endpoint)?, text(id)?))
}

/// `text` with its `%XX` escapes decoded (and `+` as a space in a query), if the result is
/// UTF-8 and every `%` starts an escape.
fn percent_decode(text: &str, query: bool) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        bytes.push(match byte {
            b'%' => {
                let (hex, tail) = rest.split_at_checked(2)?;
                rest = tail;
                u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?
            }
            b'+' if query => b' ',
            byte => byte,
        });
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let table = [
            ("/health", Some(Route::Health)),
            ("/inbox/counts", Some(Route::Counts)),
            ("/inbox/dead", Some(Route::Dead)),
            ("/inbox/dead/redrive", Some(Route::RedriveAll)),
            (
                "/inbox/dead/0001/redrive",
                Some(Route::Redrive("0001".into())),
            ),
            (
                "/inbox/dead/a%2Fb%20c/redrive",
                Some(Route::Redrive("a/b c".into())),
            ),
            (
                "/inbox/dead/a+b/redrive",
                Some(Route::Redrive("a+b".into())),
            ),
            ("/inbox/dead//redrive", None),
            ("/inbox/dead/%zz/redrive", None),
            ("/inbox/dead/%ff/redrive", None),
            ("/health/", None),
            ("/", None),
            ("", None),
            ("/inbox", None),
            ("/inbox/dead/1/2/redrive", None),
        ];
        for (path, route) in table {
            assert_eq!(Route::of(path), route, "{path}");
        }
    }

    #[test]
    fn queries() {
        let key = EventKey::new("/hooks?x=1", "é 1");
        let after = format!("after={}", cursor(&key));
        let parsed = Query::parse(&Route::Dead, Some(&format!("{after}&limit=5"))).unwrap();
        assert_eq!(parsed.after, Some(key));
        assert_eq!(parsed.limit, Some(5));
        let parsed = Query::parse(&Route::Redrive("1".into()), Some("endpoint=%2Fa+b")).unwrap();
        assert_eq!(parsed.endpoint.as_deref(), Some("/a b"));
        let all = format!("endpoint=%2Fa+b&{after}&limit=2");
        let parsed = Query::parse(&Route::RedriveAll, Some(&all)).unwrap();
        assert_eq!(
            parsed.after.as_ref().map(|key| key.id.as_str()),
            Some("é 1")
        );
        assert_eq!(parsed.endpoint.as_deref(), Some("/a b"));
        assert_eq!(Query::parse(&Route::Dead, None).unwrap(), Query::default());
        assert_eq!(
            Query::parse(&Route::Dead, Some("&")).unwrap(),
            Query::default()
        );

        for (route, query) in [
            (Route::Dead, "limit=0"),
            (Route::Dead, "limit=1001"),
            (Route::Dead, "limit=x"),
            (Route::Dead, "limit=1&limit=2"),
            (Route::Dead, "after=zz"),
            (Route::Dead, "after=2f"),
            (Route::Dead, "endpoint=/"),
            (Route::Counts, "limit=1"),
            (Route::Health, "verbose"),
            (Route::Redrive("1".into()), "limit=1"),
            (Route::RedriveAll, "endpoint=%ff"),
        ] {
            assert!(
                Query::parse(&route, Some(query)).is_err(),
                "{route:?} {query}"
            );
        }
    }
}
