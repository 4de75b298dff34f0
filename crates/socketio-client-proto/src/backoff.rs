//! The reconnection delays: exponential, bounded, randomised, as the official client's `Backoff`.

use std::time::Duration;

/// A small deterministic generator (SplitMix64), seeded by the binding.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A number in `[0, 1)`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The delay before reconnection attempt `attempt` (counted from 0):
/// `min * 2^attempt`, moved by up to `jitter` of itself either way, then capped at `max`.
pub(crate) fn delay(
    min: Duration,
    max: Duration,
    jitter: f64,
    attempt: u32,
    rng: &mut Rng,
) -> Duration {
    let base = min.as_secs_f64() * 1000.0 * 2f64.powi(attempt.min(64) as i32);
    let mut ms = base;
    let jitter = jitter.clamp(0.0, 1.0);
    if jitter > 0.0 {
        let r = rng.next_f64();
        let deviation = (r * jitter * base).floor();
        // The reference picks the direction from a digit of the same number.
        if ((r * 10.0).floor() as u64) & 1 == 0 {
            ms = base - deviation;
        } else {
            ms = base + deviation;
        }
    }
    let max_ms = max.as_secs_f64() * 1000.0;
    let ms = ms.min(max_ms).max(0.0);
    Duration::from_millis(ms as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_maximum_within_the_randomisation() {
        let mut rng = Rng::new(7);
        let min = Duration::from_secs(1);
        let max = Duration::from_secs(5);
        for attempt in 0..10 {
            for _ in 0..100 {
                let d = delay(min, max, 0.5, attempt, &mut rng).as_millis() as f64;
                let base = 1000.0 * 2f64.powi(attempt as i32);
                assert!(
                    d >= (base * 0.5).min(5000.0) - 1.0,
                    "attempt {attempt}: {d}"
                );
                assert!(d <= (base * 1.5).min(5000.0), "attempt {attempt}: {d}");
            }
        }
        let fixed: Vec<u128> = (0..4)
            .map(|a| delay(min, max, 0.0, a, &mut rng).as_millis())
            .collect();
        assert_eq!(fixed, [1000, 2000, 4000, 5000]);
    }

    #[test]
    fn randomness_moves_both_ways() {
        let mut rng = Rng::new(1);
        let d: Vec<u128> = (0..200)
            .map(|_| {
                delay(
                    Duration::from_secs(1),
                    Duration::from_secs(5),
                    0.5,
                    0,
                    &mut rng,
                )
                .as_millis()
            })
            .collect();
        assert!(d.iter().any(|&x| x < 1000));
        assert!(d.iter().any(|&x| x > 1000));
    }
}
