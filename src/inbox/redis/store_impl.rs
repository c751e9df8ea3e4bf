//! [`RedisStore`] as a [`Store`]: each method one script ([`scripts`]), [`probe`](Store::probe)
//! included, but
//! [`size`](Store::size), one `GET`, [`contains`](Store::contains), one `HEXISTS`, and
//! [`checkpoint`](Store::checkpoint), one `HGET`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::{
    RedisStore,
    keys::{key_of, member},
    scripts::{self, Ack},
};
use crate::inbox::store::{
    Claimed, Counts, DeadLetter, EventKey, Failure, NewEvent, Store, StoreError, StoreErrorKind,
    StoreFuture, Stored, checkpoint_at, checkpoint_ms,
};

/// Most events one `claim` takes (the script's reply is built in one piece), and one ack
/// script is given.
const MAX_CLAIM: usize = 1000;

/// A claim's token: its stream entry and the entry's delivery count in the group, which
/// every new claim of the entry raises.
fn token(entry: &str, deliveries: u64) -> String {
    format!("{entry}:{deliveries}")
}

/// The stream entry and delivery count a [`token`] names; `None` unless the entry is a
/// stream id (`<ms>-<seq>`): Redis would refuse any other with an error, failing a whole
/// batch of acks for one token that is not this store's.
fn parse_token(token: &str) -> Option<(&str, u64)> {
    let (entry, deliveries) = token.rsplit_once(':')?;
    let (ms, seq) = entry.split_once('-')?;
    ms.parse::<u64>().ok()?;
    seq.parse::<u64>().ok()?;
    Some((entry, deliveries.parse().ok()?))
}

fn malformed() -> StoreError {
    StoreError::new(
        StoreErrorKind::Unavailable,
        "Redis returned a malformed event",
        None,
    )
}

impl Store for RedisStore {
    fn store(&self, event: NewEvent) -> StoreFuture<Stored> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        Box::pin(async move {
            let member = member(&event.key);
            let stored = scripts::store(
                &mut connection,
                &shared,
                &member,
                &event.event_type,
                &event.body,
                event.recovered,
            )
            .await?;
            Ok(if stored {
                Stored::Stored
            } else {
                Stored::Duplicate
            })
        })
    }

    fn claim(&self, max: usize, claim_for: Duration) -> StoreFuture<Vec<Claimed>> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let max = max.min(MAX_CLAIM);
        Box::pin(async move {
            if max == 0 {
                return Ok(Vec::new());
            }
            let rows = scripts::claim(&mut connection, &shared, max, claim_for).await?;
            rows.into_iter()
                .map(
                    |(entry, deliveries, member, event_type, body, attempt, recovered)| {
                        Ok(Claimed {
                            key: key_of(&member).ok_or_else(malformed)?,
                            event_type,
                            body: Bytes::from(body),
                            recovered,
                            attempt,
                            token: token(&entry, deliveries),
                        })
                    },
                )
                .collect()
        })
    }

    fn extend(&self, claim: &Claimed, claim_for: Duration) -> StoreFuture<bool> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let token = claim.token.clone();
        Box::pin(async move {
            let Some((entry, deliveries)) = parse_token(&token) else {
                return Ok(false);
            };
            scripts::extend(&mut connection, &shared, entry, deliveries, claim_for).await
        })
    }

    fn ack(&self, claim: &Claimed) -> StoreFuture<bool> {
        let acked = self.ack_many(std::slice::from_ref(claim));
        Box::pin(async move { Ok(acked.await?.first() == Some(&true)) })
    }

    fn ack_many(&self, claims: &[Claimed]) -> StoreFuture<Vec<bool>> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let acks: Vec<Option<Ack>> = claims
            .iter()
            .map(|claim| {
                let (entry, _) = parse_token(&claim.token)?;
                Some(Ack {
                    entry: entry.to_owned(),
                    member: member(&claim.key),
                    size: claim.event_type.len() + claim.body.len(),
                })
            })
            .collect();
        Box::pin(async move {
            // One script (atomic, one round trip) per `MAX_CLAIM` events; a token that is
            // not this store's acks nothing.
            let mut acked = Vec::with_capacity(acks.len());
            for chunk in acks.chunks(MAX_CLAIM) {
                let mut replies =
                    scripts::ack(&mut connection, &shared, chunk.iter().flatten()).await?;
                acked.extend(
                    chunk
                        .iter()
                        .map(|ack| ack.is_some() && replies.next() == Some(true)),
                );
            }
            Ok(acked)
        })
    }

    fn fail(&self, claim: &Claimed, failure: Failure, error_text: &str) -> StoreFuture<bool> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let token = claim.token.clone();
        let last_error: String = error_text.chars().take(1000).collect();
        Box::pin(async move {
            let Some((entry, deliveries)) = parse_token(&token) else {
                return Ok(false);
            };
            scripts::fail(
                &mut connection,
                &shared,
                entry,
                deliveries,
                failure,
                &last_error,
            )
            .await
        })
    }

    fn release(&self, claim: &Claimed) -> StoreFuture<bool> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let token = claim.token.clone();
        Box::pin(async move {
            let Some((entry, deliveries)) = parse_token(&token) else {
                return Ok(false);
            };
            scripts::release(&mut connection, &shared, entry, deliveries).await
        })
    }

    fn dead(&self, after: Option<EventKey>, max: usize) -> StoreFuture<Vec<DeadLetter>> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let max = max.min(MAX_CLAIM);
        Box::pin(async move {
            if max == 0 {
                return Ok(Vec::new());
            }
            let after = after.map(|key| member(&key));
            let rows = scripts::dead(&mut connection, &shared, after.as_deref(), max).await?;
            rows.into_iter()
                .map(|(member, event_type, attempts, died_at, last_error)| {
                    Ok(DeadLetter {
                        key: key_of(&member).ok_or_else(malformed)?,
                        event_type,
                        attempts,
                        died_at: UNIX_EPOCH + Duration::from_millis(died_at),
                        last_error,
                    })
                })
                .collect()
        })
    }

    fn redrive(&self, key: &EventKey) -> StoreFuture<bool> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let member = member(key);
        Box::pin(async move { scripts::redrive(&mut connection, &shared, &member).await })
    }

    fn counts(&self) -> StoreFuture<Counts> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        Box::pin(async move { scripts::counts(&mut connection, &shared).await })
    }

    fn prune(&self, before: SystemTime, max: usize) -> StoreFuture<u64> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let max = max.min(MAX_CLAIM);
        Box::pin(async move {
            if max == 0 {
                return Ok(0);
            }
            scripts::prune(&mut connection, &shared, before, max).await
        })
    }

    fn size(&self) -> StoreFuture<u64> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        Box::pin(async move {
            let bytes: Option<u64> = redis::cmd("GET")
                .arg(&shared.keys.bytes)
                .query_async(&mut connection)
                .await
                .map_err(scripts::error)?;
            Ok(bytes.unwrap_or(0))
        })
    }

    fn contains(&self, key: &EventKey) -> StoreFuture<bool> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let member = member(key);
        Box::pin(async move {
            // The deduplication hash `store` checks; prune removes a key from it.
            redis::cmd("HEXISTS")
                .arg(&shared.keys.seen)
                .arg(&member)
                .query_async(&mut connection)
                .await
                .map_err(scripts::error)
        })
    }

    fn lease(&self, name: &str, holder: &str, ttl: Duration) -> StoreFuture<bool> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let (name, holder) = (name.to_owned(), holder.to_owned());
        Box::pin(async move { scripts::lease(&mut connection, &shared, &name, &holder, ttl).await })
    }

    fn release_lease(&self, name: &str, holder: &str) -> StoreFuture<()> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let (name, holder) = (name.to_owned(), holder.to_owned());
        Box::pin(
            async move { scripts::release_lease(&mut connection, &shared, &name, &holder).await },
        )
    }

    fn checkpoint(&self, name: &str) -> StoreFuture<Option<SystemTime>> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let name = name.to_owned();
        Box::pin(async move {
            let at: Option<i64> = redis::cmd("HGET")
                .arg(&shared.keys.checkpoints)
                .arg(&name)
                .query_async(&mut connection)
                .await
                .map_err(scripts::error)?;
            Ok(at.map(checkpoint_at))
        })
    }

    fn set_checkpoint(&self, name: &str, holder: &str, at: SystemTime) -> StoreFuture<bool> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let (name, holder, at) = (name.to_owned(), holder.to_owned(), checkpoint_ms(at));
        Box::pin(async move {
            scripts::set_checkpoint(&mut connection, &shared, &name, &holder, at).await
        })
    }

    /// Fails when [`store`](Store::store) would refuse every new event: with
    /// [`StoreErrorKind::Full`], `inbox store is full`, once the room left under the
    /// [`max_size`](super::RedisBuilder::max_size) (as [`size`](Store::size) counts) is
    /// less than the least event counts for (an empty key, type and body: the fixed
    /// overhead and 4 bytes), and `Redis is out of memory` at Redis's `maxmemory` (with
    /// `noeviction`); with [`StoreErrorKind::Unavailable`] when Redis is down, read-only or
    /// cannot persist. With room for the least event it passes, though a larger event may
    /// still be refused. One script, refused by Redis as `store`'s is, that writes a key of
    /// its own, `probe`, for a second.
    fn probe(&self) -> StoreFuture<()> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        Box::pin(async move { scripts::probe(&mut connection, &shared).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_entry_and_delivery_count() {
        assert_eq!(
            parse_token(&token("1700000000000-7", 3)),
            Some(("1700000000000-7", 3))
        );
        assert_eq!(parse_token("42"), None);
        assert_eq!(parse_token("1-0:x"), None);
        assert_eq!(parse_token("x:1"), None);
        assert_eq!(parse_token("1-2-3:1"), None);
    }
}
