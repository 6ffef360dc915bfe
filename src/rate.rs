//! A token bucket: at most `burst` events at once, refilled at `rate` per
//! second. Time is passed in, so it is tested without a clock.

use std::time::Instant;

/// Tokens for events: each takes one; they come back at a steady rate up
/// to the burst.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    /// Tokens per second.
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `per_second` (at least
    /// one token, whatever the arguments).
    pub(crate) fn new(per_second: u32, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: f64::from(per_second),
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes a token if there is one.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(50, 100, t0);
        assert_eq!((0..150).filter(|_| b.try_take(t0)).count(), 100);
        assert!(!b.try_take(t0));
        // The next token comes 1/50 s later.
        assert!(!b.try_take(t0 + Duration::from_millis(19)));
        assert!(b.try_take(t0 + Duration::from_millis(20)));
        // One second later: 50 more, not 100.
        let t1 = t0 + Duration::from_millis(1020);
        assert_eq!((0..150).filter(|_| b.try_take(t1)).count(), 50);
        // A long pause refills to the burst only.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!((0..150).filter(|_| b.try_take(t2)).count(), 100);
    }

    #[test]
    fn a_steady_stream_at_the_rate_passes() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(50, 100, t0);
        for i in 0..1000u32 {
            assert!(
                b.try_take(t0 + Duration::from_millis(u64::from(i) * 20)),
                "event {i}"
            );
        }
    }

    #[test]
    fn time_going_backwards_gives_nothing() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = TokenBucket::new(1, 1, t0);
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0 - Duration::from_secs(5)));
        assert!(!b.try_take(t0 + Duration::from_millis(500)));
        assert!(b.try_take(t0 + Duration::from_secs(1)));
        let mut never = TokenBucket::new(0, 1, t0);
        assert!(never.try_take(t0));
        assert!(!never.try_take(t0 + Duration::from_secs(3600)));
    }
}
