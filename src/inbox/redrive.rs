//! Re-driving dead letters a page at a time, and finding one by its id: one piece of code
//! for [`Inbox::redrive_all`], the admin service and the command-line tool.

use super::{EventKey, Inbox, StoreError};

/// Dead letters looked at per step of [`Inbox::redrive_all`] and of
/// [`Inbox::find_dead`].
const PAGE: usize = 500;

/// What one step of re-driving the dead letters did: [`Inbox::redrive_dead`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Redriven {
    /// The dead letters queued again, in key order.
    pub keys: Vec<EventKey>,
    /// Where the next step starts (its `after`): the last dead letter this one looked at;
    /// `None` once no dead letter is left after it.
    pub next: Option<EventKey>,
}

impl Inbox {
    /// Looks at up to `limit` dead letters (at least 1), in key order, after `after`
    /// (`None`: from the first), and queues those of `endpoint` (every one, for `None`)
    /// again, their attempts reset. The next step starts after [`next`](Redriven::next),
    /// until it is `None`.
    ///
    /// A step moves on, whatever the handler does: an event re-driven here that dies again
    /// at once (a handler still failing) sorts before `next`, so following `next` goes
    /// through the dead letters once and ends, rather than re-driving the first ones again
    /// and again.
    ///
    /// ```
    /// use authgear_webhook::inbox::{Inbox, SqliteStore};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("inbox-redrive-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let inbox = Inbox::new(SqliteStore::open(dir.join("inbox.sqlite3"))?);
    /// // Those of the endpoint `/hooks`, 100 at a time.
    /// let mut after = None;
    /// loop {
    ///     let step = inbox.redrive_dead(Some("/hooks"), after, 100).await?;
    ///     for key in &step.keys {
    ///         println!("re-driven: {} {}", key.endpoint, key.id);
    ///     }
    ///     match step.next {
    ///         Some(next) => after = Some(next),
    ///         None => break,
    ///     }
    /// }
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the store cannot answer; the dead letters re-driven before it
    /// stay queued (the step can be taken again from the same `after`: they are no longer
    /// dead, or are again if their handler failed them meanwhile).
    ///
    /// # Cancel safety
    ///
    /// Not atomic as a whole: a dropped future leaves the dead letters re-driven so far
    /// queued and the others dead.
    pub async fn redrive_dead(
        &self,
        endpoint: Option<&str>,
        after: Option<EventKey>,
        limit: usize,
    ) -> Result<Redriven, StoreError> {
        let limit = limit.max(1);
        let page = self.dead_letters(after, limit).await?;
        // A page is full unless no dead letter is left after it (`dead_letters`).
        let next = page
            .last()
            .filter(|_| page.len() == limit)
            .map(|last| last.key.clone());
        let mut keys = Vec::new();
        for dead in page {
            if endpoint.is_none_or(|endpoint| endpoint == dead.key.endpoint)
                && self.redrive(&dead.key).await?
            {
                keys.push(dead.key);
            }
        }
        Ok(Redriven { keys, next })
    }

    /// Queues every dead letter again, through them once ([`redrive_dead`](Self::redrive_dead)
    /// from the first to the last); resolves to how many.
    ///
    /// ```no_run
    /// # async fn f(inbox: authgear_webhook::inbox::Inbox) -> Result<(), authgear_webhook::inbox::StoreError> {
    /// let requeued = inbox.redrive_all().await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the store cannot answer; the dead letters re-driven before it
    /// stay queued.
    ///
    /// # Cancel safety
    ///
    /// Not atomic as a whole: a dropped future leaves the dead letters re-driven so far
    /// queued and the others dead; call it again to re-drive the rest.
    pub async fn redrive_all(&self) -> Result<u64, StoreError> {
        let (mut after, mut requeued) = (None, 0u64);
        loop {
            let step = self.redrive_dead(None, after, PAGE).await?;
            requeued += u64::try_from(step.keys.len()).unwrap_or(u64::MAX);
            match step.next {
                Some(next) => after = Some(next),
                None => return Ok(requeued),
            }
        }
    }

    /// The keys of the dead letters whose event id is `id`, on every endpoint, in key
    /// order. Reads every dead letter (an id is not their order's first part).
    ///
    /// ```no_run
    /// # async fn f(inbox: authgear_webhook::inbox::Inbox) -> Result<(), authgear_webhook::inbox::StoreError> {
    /// if let [key] = &inbox.find_dead("0001").await?[..] {
    ///     inbox.redrive(key).await?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the store cannot answer.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    pub async fn find_dead(&self, id: &str) -> Result<Vec<EventKey>, StoreError> {
        let (mut after, mut found) = (None, Vec::new());
        loop {
            let page = self.dead_letters(after.take(), PAGE).await?;
            let full = page.len() == PAGE;
            after = page.last().map(|last| last.key.clone());
            found.extend(
                page.into_iter()
                    .map(|dead| dead.key)
                    .filter(|key| key.id == id),
            );
            if !full {
                return Ok(found);
            }
        }
    }
}
