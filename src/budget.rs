//! The body budget: one count of the bytes the buffers of all requests in flight hold, so
//! that together they never pass a bound, however many requests arrive at once.
//!
//! Each request reserves room as its body arrives (what its buffer will hold once it has
//! taken the next frame, before that frame is copied), never on the strength of a
//! `Content-Length`. The room sits in a [`BodyReservation`] owned by the request's future and
//! goes back to the budget when that future ends, whichever way: answered, refused, failed,
//! cancelled or dropped (a client that hangs up), or unwound by a panic in the inner service.

use crate::RejectionKind;

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

/// The default [`BodyBudget`]: 32 MiB, room for thousands of real deliveries (a few KiB
/// each) at once, or 32 bodies at the default 1 MiB limit.
pub(crate) const DEFAULT_BODY_BUDGET: usize = 32 * 1024 * 1024;

/// A bound on the bytes held by the bodies of all requests in flight together, shared by
/// every clone of the [`VerifySignatureLayer`](crate::VerifySignatureLayer) that holds it.
///
/// A request whose next frame does not fit is refused at once with 503 and `Retry-After`
/// ([`RejectionKind::BudgetExhausted`](crate::RejectionKind::BudgetExhausted)), never
/// queued. Room is reserved as bytes arrive and returned when the request leaves the
/// layer: refused, answered by the inner service, or dropped.
///
/// Each [`VerifySignatureLayer::new`](crate::VerifySignatureLayer::new) starts a budget of
/// its own (32 MiB), shared by its clones and by the layers derived from it. To bound several
/// layers together, or to watch the budget (metrics, tests), make one and give each layer a
/// clone: clones count in the same place.
///
/// ```
/// use authgear_webhook::{BodyBudget, VerifySignatureLayer};
///
/// let budget = BodyBudget::new(8 * 1024 * 1024);
/// let webhooks = VerifySignatureLayer::new("my-webhook-secret").body_budget(budget.clone());
/// let other = VerifySignatureLayer::new("other-secret").body_budget(budget.clone());
/// assert_eq!(budget.in_use(), 0);
/// assert_eq!(budget.limit(), 8 * 1024 * 1024);
/// ```
#[derive(Clone)]
pub struct BodyBudget {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    limit: usize,
    in_use: AtomicUsize,
}

impl BodyBudget {
    /// A budget of `bytes` for all bodies in flight together.
    ///
    /// It should be at least the [`body_limit`](crate::VerifySignatureLayer::body_limit):
    /// a body that needs more room than the whole budget is always refused (503).
    ///
    /// ```
    /// use authgear_webhook::BodyBudget;
    ///
    /// let budget = BodyBudget::new(64 * 1024 * 1024);
    /// ```
    pub fn new(bytes: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                limit: bytes,
                in_use: AtomicUsize::new(0),
            }),
        }
    }

    /// How many bytes the budget allows in all.
    ///
    /// ```
    /// # use authgear_webhook::BodyBudget;
    /// assert_eq!(BodyBudget::default().limit(), 32 * 1024 * 1024);
    /// ```
    pub fn limit(&self) -> usize {
        self.shared.limit
    }

    /// How many bytes the requests in flight hold now. It is 0 whenever no request is in
    /// flight: every path out of the layer returns its room.
    ///
    /// ```
    /// # use authgear_webhook::BodyBudget;
    /// assert_eq!(BodyBudget::new(1024).in_use(), 0);
    /// ```
    pub fn in_use(&self) -> usize {
        self.shared.in_use.load(Ordering::Relaxed)
    }

    /// An empty reservation on this budget, for one request: for a server that reads bodies
    /// itself (with [`Verifier`](crate::Verifier)) and wants the bound the layer keeps. Cover
    /// what the request's buffer holds as its body arrives; the room goes back when the
    /// reservation is dropped.
    ///
    /// ```
    /// use authgear_webhook::{BodyBudget, RejectionKind};
    ///
    /// let budget = BodyBudget::new(1024);
    /// let mut first = budget.reserve();
    /// first.cover(1000)?;
    /// let mut second = budget.reserve();
    /// assert_eq!(second.cover(100), Err(RejectionKind::BudgetExhausted)); // answer 503
    /// drop(first);
    /// second.cover(100)?;
    /// assert_eq!(budget.in_use(), 100);
    /// # Ok::<_, RejectionKind>(())
    /// ```
    pub fn reserve(&self) -> BodyReservation {
        BodyReservation {
            shared: Some(self.shared.clone()),
            held: 0,
        }
    }
}

impl Default for BodyBudget {
    /// 32 MiB.
    fn default() -> Self {
        Self::new(DEFAULT_BODY_BUDGET)
    }
}

impl fmt::Debug for BodyBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyBudget")
            .field("limit", &self.limit())
            .field("in_use", &self.in_use())
            .finish()
    }
}

/// The room one request holds in a [`BodyBudget`]: made by [`BodyBudget::reserve`],
/// returned when dropped. [`Default`] is a reservation on no budget: it counts nothing.
#[derive(Debug, Default)]
#[must_use = "the room is given back as soon as the reservation is dropped"]
pub struct BodyReservation {
    /// `None`: no budget (turned off), nothing is counted.
    shared: Option<Arc<Shared>>,
    held: usize,
}

impl BodyReservation {
    /// Grows the room held to `total` bytes (it never shrinks), or refuses with
    /// [`RejectionKind::BudgetExhausted`] (503), holding what it held, if the budget has no
    /// room for the difference.
    ///
    /// # Errors
    ///
    /// [`RejectionKind::BudgetExhausted`] when the budget has no room for the difference.
    #[inline]
    pub fn cover(&mut self, total: usize) -> Result<(), RejectionKind> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let Some(more) = total.checked_sub(self.held).filter(|&more| more > 0) else {
            return Ok(());
        };
        shared
            .in_use
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |in_use| {
                in_use
                    .checked_add(more)
                    .filter(|&after| after <= shared.limit)
            })
            .map_err(|_| RejectionKind::BudgetExhausted)?;
        self.held = total;
        Ok(())
    }

    /// How many bytes this reservation holds.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Gives the room back now (dropping does the same).
    #[inline]
    pub fn release(&mut self) {
        if let Some(shared) = &self.shared
            && self.held > 0
        {
            shared.in_use.fetch_sub(self.held, Ordering::Relaxed);
            self.held = 0;
        }
    }
}

impl Drop for BodyReservation {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserves_up_to_the_limit_and_returns_everything() {
        let budget = BodyBudget::new(100);
        let mut a = budget.reserve();
        let mut b = budget.reserve();
        assert!(a.cover(60).is_ok());
        assert!(a.cover(40).is_ok(), "never shrinks");
        assert_eq!(budget.in_use(), 60);
        assert!(b.cover(41).is_err());
        assert_eq!(budget.in_use(), 60, "a refusal takes nothing");
        assert!(b.cover(40).is_ok());
        assert_eq!(budget.in_use(), 100);
        assert!(a.cover(61).is_err());
        drop(a);
        assert_eq!(budget.in_use(), 40);
        b.release();
        assert_eq!(budget.in_use(), 0);
        drop(b);
        assert_eq!(budget.in_use(), 0, "released once");
    }

    #[test]
    fn clones_share_one_count() {
        let budget = BodyBudget::new(10);
        let clone = budget.clone();
        let mut held = clone.reserve();
        assert!(held.cover(10).is_ok());
        assert_eq!(budget.in_use(), 10);
        assert!(budget.reserve().cover(1).is_err());
    }

    #[test]
    fn no_budget_counts_nothing() {
        let mut none = BodyReservation::default();
        assert!(none.cover(usize::MAX).is_ok());
    }
}
