use tower_layer::Layer;

use super::{Inbox, InboxService};

/// Layer that applies [`InboxService`]: see the [module docs](super).
///
/// Place it inside [`VerifySignatureLayer`](crate::VerifySignatureLayer): it takes the
/// verified requests the verifying layer lets through.
#[derive(Debug, Clone)]
#[must_use]
pub struct InboxLayer {
    inbox: Inbox,
}

impl InboxLayer {
    /// Stores verified non-blocking deliveries in `inbox` before answering 200.
    ///
    /// ```no_run
    /// use authgear_webhook::inbox::{Inbox, InboxLayer, SqliteStore};
    ///
    /// let inbox = Inbox::new(SqliteStore::open("inbox.sqlite3")?);
    /// let layer = InboxLayer::new(inbox);
    /// # Ok::<_, authgear_webhook::inbox::StoreError>(())
    /// ```
    pub fn new(inbox: Inbox) -> Self {
        Self { inbox }
    }
}

impl<S> Layer<S> for InboxLayer {
    type Service = InboxService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InboxService::new(inner, self.inbox.clone())
    }
}
