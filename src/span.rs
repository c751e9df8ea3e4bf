//! The span of one delivery (feature `tracing`): `authgear_webhook.delivery`, made by the
//! verifying layer's future and entered on each of its polls, so that what replay
//! protection, the inbox and the handler log while answering it is inside. Its fields `id`
//! and `event_type` are recorded once the body is verified (with feature `event` or
//! `replay`, which read the envelope's head; the layers after read the same parsed head).
//!
//! Without a subscriber that wants it, the span is disabled: making it is one check of a
//! cached interest, and nothing is parsed or recorded.

use crate::Envelope;

/// One delivery's span; nothing without the feature.
#[derive(Debug)]
pub(crate) struct DeliverySpan {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

/// What [`DeliverySpan::enter`] returns: the span is left when it is dropped.
#[cfg(feature = "tracing")]
pub(crate) type Entered<'a> = tracing::span::Entered<'a>;
#[cfg(not(feature = "tracing"))]
pub(crate) type Entered<'a> = std::marker::PhantomData<&'a ()>;

impl DeliverySpan {
    pub(crate) fn new() -> Self {
        Self {
            #[cfg(feature = "tracing")]
            span: tracing::info_span!(
                "authgear_webhook.delivery",
                id = tracing::field::Empty,
                event_type = tracing::field::Empty,
            ),
        }
    }

    /// Enters the span until the guard is dropped: for the length of one poll.
    pub(crate) fn enter(&self) -> Entered<'_> {
        #[cfg(feature = "tracing")]
        return self.span.enter();
        #[cfg(not(feature = "tracing"))]
        std::marker::PhantomData
    }

    /// Records the verified delivery's `id` and `type`, if anyone listens.
    pub(crate) fn record(&self, envelope: &Envelope) {
        #[cfg(all(feature = "tracing", any(feature = "event", feature = "replay")))]
        if !self.span.is_disabled() {
            self.span.record("id", envelope.id());
            self.span.record("event_type", envelope.event_type());
        }
        let _ = envelope;
    }
}
