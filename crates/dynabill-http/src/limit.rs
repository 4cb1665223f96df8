//! Per-tenant rate limiting: a token bucket per tenant, refilled continuously.
//! A request finding its tenant's bucket empty is answered 429 before any work.

#![expect(clippy::float_arithmetic, reason = "tokens and seconds, never amounts")]

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dynabill_core::domain::TenantId;

/// The sustained rate and the burst a tenant may send.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

impl RateLimit {
    /// `per_second` sustained, with a burst of two seconds' worth (at least 1).
    pub fn per_second(per_second: u32) -> RateLimit {
        let rate = f64::from(per_second);
        RateLimit {
            per_second: rate,
            burst: (rate * 2.0).max(1.0),
        }
    }
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<TenantId, Bucket>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from the tenant's bucket; on refusal, how long until one is back.
    pub fn check(&self, tenant: TenantId, now: Instant) -> Result<(), Duration> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let bucket = buckets.entry(tenant).or_insert(Bucket {
            tokens: self.limit.burst,
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.limit.per_second).min(self.limit.burst);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let missing = 1.0 - bucket.tokens;
        Err(Duration::from_secs_f64(
            missing / self.limit.per_second.max(f64::MIN_POSITIVE),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_the_rate() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 2.0,
            burst: 2.0,
        });
        let t0 = Instant::now();
        let tenant = TenantId(1);
        assert!(limiter.check(tenant, t0).is_ok());
        assert!(limiter.check(tenant, t0).is_ok());
        let wait = limiter.check(tenant, t0).unwrap_err();
        assert!(wait <= Duration::from_millis(500) && wait > Duration::ZERO);
        assert!(
            limiter
                .check(tenant, t0 + Duration::from_millis(500))
                .is_ok()
        );
        // Tenants have buckets of their own.
        assert!(limiter.check(TenantId(2), t0).is_ok());
    }
}
