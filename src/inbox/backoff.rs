//! The retry schedule: exponential backoff with jitter, then a dead letter.

use std::time::Duration;

/// When a failed event is tried again, and how many attempts it gets before it becomes a
/// dead letter.
///
/// The delay after attempt `n` is `first * 2^(n-1)`, capped at `max_delay`, then moved by a
/// random jitter of up to ±`jitter` of itself (so that events that failed together do not
/// all come back at once).
///
/// The default, 30 attempts, 2 s after the first failure, doubling up to 6 hours, ±20 %,
/// keeps retrying for about 4 days (99 hours): a downstream outage from a Friday evening
/// to the Monday morning, when nobody is there to fix it, loses nothing, and an event is
/// retried within 6 hours of the fix (re-drive the dead letters to have them at once). A
/// shorter window dead-letters every event of a long outage; Sidekiq retries for about 21
/// days, but a webhook's effects (a welcome email, a CRM row) are rarely worth making days
/// later. Set your own with [`new`](Self::new) and [`attempts`](Self::attempts).
///
/// ```
/// use std::time::Duration;
/// use authgear_webhook::inbox::Backoff;
///
/// let backoff = Backoff::default();
/// assert_eq!(backoff.max_attempts(), 30);
/// assert!(backoff.total() > Duration::from_secs(4 * 24 * 3600));
///
/// // A short schedule for tests: 3 attempts, 10 ms then 20 ms, no jitter.
/// let short = Backoff::new(Duration::from_millis(10), Duration::from_secs(1))
///     .attempts(3)
///     .jitter(0.0);
/// assert_eq!(short.delay(1), Some(Duration::from_millis(10)));
/// assert_eq!(short.delay(2), Some(Duration::from_millis(20)));
/// assert_eq!(short.delay(3), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    first: Duration,
    max_delay: Duration,
    attempts: u32,
    jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_secs(2), Duration::from_secs(6 * 3600)).attempts(30)
    }
}

impl Backoff {
    /// `first` after the first failure, doubling up to `max_delay`; 15 attempts, ±20 %.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let backoff = authgear_webhook::inbox::Backoff::new(
    ///     Duration::from_secs(1),
    ///     Duration::from_secs(600),
    /// );
    /// ```
    pub fn new(first: Duration, max_delay: Duration) -> Self {
        Self {
            first,
            max_delay: max_delay.max(first),
            attempts: 15,
            jitter: 0.2,
        }
    }

    /// How many attempts an event gets in all (at least 1) before it becomes a dead letter.
    ///
    /// ```
    /// let backoff = authgear_webhook::inbox::Backoff::default().attempts(5);
    /// assert_eq!(backoff.max_attempts(), 5);
    /// ```
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The jitter, as a fraction of the delay (clamped to 0..=1; default 0.2).
    ///
    /// ```
    /// let backoff = authgear_webhook::inbox::Backoff::default().jitter(0.5);
    /// ```
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// How many attempts an event gets in all.
    ///
    /// ```
    /// assert_eq!(authgear_webhook::inbox::Backoff::default().max_attempts(), 30);
    /// ```
    pub fn max_attempts(&self) -> u32 {
        self.attempts
    }

    /// The delay after failed attempt `attempt` (1 for the first), before jitter, or `None`
    /// if it was the last attempt.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let backoff = authgear_webhook::inbox::Backoff::default();
    /// assert_eq!(backoff.delay(1), Some(Duration::from_secs(2)));
    /// assert_eq!(backoff.delay(14), Some(Duration::from_secs(16_384)));
    /// assert_eq!(backoff.delay(29), Some(Duration::from_secs(6 * 3600)));
    /// assert_eq!(backoff.delay(30), None);
    /// ```
    pub fn delay(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.attempts {
            return None;
        }
        let doublings = attempt.saturating_sub(1).min(40);
        let delay = self.first.saturating_mul(1u32 << doublings.min(31));
        Some(delay.min(self.max_delay))
    }

    /// The delay with jitter applied: what the worker waits.
    pub(crate) fn jittered(&self, attempt: u32) -> Option<Duration> {
        let delay = self.delay(attempt)?;
        let factor = 1.0 + self.jitter * (fastrand::f64() * 2.0 - 1.0);
        Some(delay.mul_f64(factor.max(0.0)))
    }

    /// The sum of all delays, before jitter: how long an event is retried at least.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let backoff = authgear_webhook::inbox::Backoff::new(
    ///     Duration::from_secs(1),
    ///     Duration::from_secs(4),
    /// ).attempts(4);
    /// assert_eq!(backoff.total(), Duration::from_secs(1 + 2 + 4));
    /// ```
    pub fn total(&self) -> Duration {
        (1..self.attempts)
            .filter_map(|attempt| self.delay(attempt))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps_then_stops() {
        let backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(60)).attempts(8);
        let delays: Vec<_> = (1..=8)
            .map(|n| backoff.delay(n).map(|d| d.as_secs()))
            .collect();
        assert_eq!(
            delays,
            [
                Some(2),
                Some(4),
                Some(8),
                Some(16),
                Some(32),
                Some(60),
                Some(60),
                None
            ]
        );
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(10)).jitter(0.2);
        for _ in 0..1000 {
            let delay = backoff.jittered(1).map(|d| d.as_secs_f64());
            assert!(
                delay.is_some_and(|d| (8.0..=12.0).contains(&d)),
                "{delay:?}"
            );
        }
    }

    #[test]
    fn default_survives_a_weekend() {
        let total = Backoff::default().total();
        // Friday 18:00 to Monday 09:00 is 63 hours.
        assert!(total > Duration::from_secs(63 * 3600), "{total:?}");
        assert!(total < Duration::from_secs(5 * 24 * 3600), "{total:?}");
    }
}
