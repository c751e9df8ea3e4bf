//! Reading a window of the audit log so that every entry is seen once, although Authgear
//! orders its pages by `created_at` alone (whole seconds) and pages by offset: entries that
//! share a second may come in any order, and in a different order for each page, so plain
//! paging through a second split between two pages skips some and repeats others.
//!
//! The entries of a second fill consecutive places of the ordered window whatever their
//! order among themselves, so a page holds all of a second's entries unless the second
//! straddles one of its ends. Such a second is where the first entry of a page shares its
//! second with the last of the page before; it is read again on its own: one page when it
//! has at most a page of entries (a single query: nothing to skip), or type by type, or, for
//! more than a page of one type within one second, page after page until every entry counted
//! by Authgear's `totalCount` is seen. A window whose entries, once read, fall short of its
//! `totalCount` (entries written while it was read) is split in two and each half read the
//! same way.

use std::collections::{BTreeSet, HashMap};

use super::{
    CatchUpError, CatchUpErrorKind,
    admin_api::{AdminApi, LoggedEvent, PAGE_SIZE, PageQuery},
};

/// How many times the pages of one second and one type are read, at most, to see every
/// entry (each read sees the entries in another order).
const MAX_PASSES: usize = 16;

/// The most entries one window is read with at once: a window with more (and longer than a
/// second) is left for the caller to split, so memory stays bounded.
pub(super) const MAX_ENTRIES: usize = 5_000;

/// Every entry of `[from, to)` (whole seconds) of `types`, each once, oldest first; `None`
/// when the window spans more than a second and holds more than [`MAX_ENTRIES`].
pub(super) async fn read(
    api: &AdminApi,
    from: i64,
    to: i64,
    types: &[String],
) -> Result<Option<Vec<LoggedEvent>>, CatchUpError> {
    let mut found = HashMap::new();
    if from < to && !types.is_empty() {
        let limit = (to - from > 1).then_some(MAX_ENTRIES);
        if !read_range(api, from, to, types, limit, &mut found).await? {
            return Ok(None);
        }
    }
    let mut events: Vec<LoggedEvent> = found.into_values().collect();
    events.sort_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
    Ok(Some(events))
}

/// How many of `found` are in `[from, to)` and of `types`.
fn count(found: &HashMap<String, LoggedEvent>, from: i64, to: i64, types: &[String]) -> usize {
    found
        .values()
        .filter(|event| from <= event.timestamp && event.timestamp < to)
        .filter(|event| types.contains(&event.event_type))
        .count()
}

fn add(found: &mut HashMap<String, LoggedEvent>, events: Vec<LoggedEvent>) {
    for event in events {
        found.insert(event.id.clone(), event);
    }
}

/// The pages of `[from, to)`, then the seconds they split, then halves if entries are
/// still missing. `false`, with nothing more read, when the first page says the window
/// holds more than `limit` entries.
async fn read_range(
    api: &AdminApi,
    from: i64,
    to: i64,
    types: &[String],
    limit: Option<usize>,
    found: &mut HashMap<String, LoggedEvent>,
) -> Result<bool, CatchUpError> {
    let mut after = None;
    let mut last = None;
    let mut split = BTreeSet::new();
    let total = loop {
        let after_first = after.take();
        let page = api
            .page(&PageQuery {
                from,
                to,
                types,
                first: PAGE_SIZE,
                after: after_first.clone(),
            })
            .await?;
        if after_first.is_none() && limit.is_some_and(|limit| page.total > limit) {
            return Ok(false);
        }
        if let (Some(last), Some(first)) = (last, page.events.first())
            && first.timestamp == last
        {
            split.insert(last);
        }
        if let Some(event) = page.events.last() {
            last = Some(event.timestamp);
        }
        add(found, page.events);
        match page.next {
            Some(cursor) => after = Some(cursor),
            None => break page.total,
        }
    };
    for second in split {
        Box::pin(read_second(api, second, types, found)).await?;
    }
    if count(found, from, to, types) >= total {
        return Ok(true);
    }
    if to - from > 1 {
        let middle = from + (to - from) / 2;
        Box::pin(read_range(api, from, middle, types, None, found)).await?;
        Box::pin(read_range(api, middle, to, types, None, found)).await
    } else {
        Box::pin(read_second(api, from, types, found)).await?;
        Ok(true)
    }
}

/// Every entry of one second of `types`.
async fn read_second(
    api: &AdminApi,
    second: i64,
    types: &[String],
    found: &mut HashMap<String, LoggedEvent>,
) -> Result<(), CatchUpError> {
    let (from, to) = (second, second + 1);
    let page = api
        .page(&PageQuery {
            from,
            to,
            types,
            first: PAGE_SIZE,
            after: None,
        })
        .await?;
    let total = page.total;
    add(found, page.events);
    if count(found, from, to, types) >= total {
        return Ok(());
    }
    if types.len() > 1 {
        for event_type in types {
            Box::pin(read_second(
                api,
                second,
                std::slice::from_ref(event_type),
                found,
            ))
            .await?;
        }
        return Ok(());
    }
    // More than a page of one type within one second: each reading of its pages sees the
    // entries in another order; read until every one counted is seen.
    for _ in 0..MAX_PASSES {
        let mut after = None;
        loop {
            let page = api
                .page(&PageQuery {
                    from,
                    to,
                    types,
                    first: PAGE_SIZE,
                    after: after.take(),
                })
                .await?;
            let total = page.total;
            add(found, page.events);
            if count(found, from, to, types) >= total {
                return Ok(());
            }
            match page.next {
                Some(cursor) => after = Some(cursor),
                None => break,
            }
        }
    }
    Err(CatchUpError::new(
        CatchUpErrorKind::Incomplete,
        "more entries of one type within one second than could be read",
    ))
}
