//! How the endpoint's lock is used, per place in the code that takes it:
//! how often, how often it was already held, how long callers waited and
//! how long they held it. Behind the `lock-profile` feature: every take
//! then reads the clock twice, which a production server should not pay.
//!
//! The endpoint's lock is the one lock every connection of a server may
//! meet (a link's lock is one connection's), so it is where a machine with
//! many cores would queue first: these figures say what each operation
//! costs it.

use std::collections::HashMap;
use std::panic::Location;
use std::sync::{Mutex, TryLockError};
use std::time::{Duration, Instant};

/// The use of the endpoint's lock at one place in the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockSite {
    /// The source file of the call that took the lock.
    pub file: &'static str,
    /// Its line.
    pub line: u32,
    /// How many times the lock was taken there.
    pub acquisitions: u64,
    /// How many of those found it held by another thread (a `try_lock`
    /// failed first).
    pub contended: u64,
    /// The time spent waiting for it, in all.
    pub waited: Duration,
    /// The time it was held, in all (the cluster operations and room
    /// events handed over before its release included).
    pub held: Duration,
    /// The longest single hold.
    pub held_max: Duration,
    /// The median hold, within an eighth (the holds are counted in
    /// buckets an eighth of a power of two wide). On a busy machine a
    /// thread may lose its core while it holds the lock, which lengthens a
    /// few holds by milliseconds: the median is not moved by them, the mean
    /// is.
    pub held_p50: Duration,
    /// The 99th percentile of the holds, within an eighth.
    pub held_p99: Duration,
}

impl LockSite {
    /// The mean hold, or zero when the lock was never taken here.
    pub fn mean_hold(&self) -> Duration {
        match u32::try_from(self.acquisitions) {
            Ok(0) => Duration::ZERO,
            Ok(n) => self.held / n,
            Err(_) => self.held / u32::MAX,
        }
    }
}

/// One hold under way: where it was taken and when it was granted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hold {
    site: &'static Location<'static>,
    granted: Instant,
}

/// The figures of one server's endpoint lock.
#[derive(Debug, Default)]
pub(crate) struct LockProfile {
    sites: Mutex<HashMap<&'static Location<'static>, Site>>,
}

/// One site's figures as they are gathered.
#[derive(Debug)]
struct Site {
    figures: LockSite,
    /// Holds counted by length in nanoseconds: bucket `8 * k + j` holds
    /// lengths from `(8 + j) << k >> 3` up to the next.
    holds: Box<[u64; BUCKETS]>,
}

const BUCKETS: usize = 8 * 64;

/// The bucket of a hold of `nanos` nanoseconds.
fn bucket(nanos: u64) -> usize {
    if nanos < 8 {
        return usize::try_from(nanos).unwrap_or(0);
    }
    let k = 63 - u64::from(nanos.leading_zeros()) - 3;
    let j = (nanos >> k) & 7;
    usize::try_from(8 * (k + 1) + j).unwrap_or(BUCKETS - 1)
}

/// The least length in bucket `b`, in nanoseconds.
fn bucket_floor(b: usize) -> u64 {
    let (k, j) = ((b / 8) as u64, (b % 8) as u64);
    if k == 0 { j } else { (8 + j) << (k - 1) }
}

impl Site {
    fn new(site: &'static Location<'static>) -> Site {
        Site {
            figures: LockSite {
                file: site.file(),
                line: site.line(),
                acquisitions: 0,
                contended: 0,
                waited: Duration::ZERO,
                held: Duration::ZERO,
                held_max: Duration::ZERO,
                held_p50: Duration::ZERO,
                held_p99: Duration::ZERO,
            },
            holds: Box::new([0; BUCKETS]),
        }
    }

    /// The hold at quantile `q`: the floor of the bucket it falls in.
    fn quantile(&self, q: f64) -> Duration {
        let total: u64 = self.holds.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        // The rank of the quantile, 1-based, rounded up.
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, n) in self.holds.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_nanos(bucket_floor(b));
            }
        }
        self.figures.held_max
    }

    fn snapshot(&self) -> LockSite {
        LockSite {
            held_p50: self.quantile(0.5),
            held_p99: self.quantile(0.99),
            ..self.figures.clone()
        }
    }
}

impl LockProfile {
    /// Takes a lock for `site` with `try_take` (`None` when it is held
    /// elsewhere), else with `take`, which waits, counting whether it had
    /// to wait and for how long; the hold is recorded by
    /// [`LockProfile::released`].
    pub(crate) fn take<G>(
        &self,
        site: &'static Location<'static>,
        try_take: impl FnOnce() -> Option<G>,
        take: impl FnOnce() -> G,
    ) -> (G, Hold) {
        let asked = Instant::now();
        let (guard, contended) = match try_take() {
            Some(guard) => (guard, false),
            None => (take(), true),
        };
        let granted = Instant::now();
        if contended {
            let mut sites = self.sites();
            let entry = &mut sites.entry(site).or_insert_with(|| Site::new(site)).figures;
            entry.contended += 1;
            entry.waited += granted - asked;
        }
        (guard, Hold { site, granted })
    }

    /// Records a hold that has just ended (called after the release, so
    /// that the bookkeeping is not held under the endpoint's lock).
    pub(crate) fn released(&self, hold: Hold) {
        let held = hold.granted.elapsed();
        let mut sites = self.sites();
        let site = sites
            .entry(hold.site)
            .or_insert_with(|| Site::new(hold.site));
        let nanos = u64::try_from(held.as_nanos()).unwrap_or(u64::MAX);
        site.holds[bucket(nanos)] += 1;
        let entry = &mut site.figures;
        entry.acquisitions += 1;
        entry.held += held;
        entry.held_max = entry.held_max.max(held);
    }

    /// Every site's figures, the longest total hold first.
    pub(crate) fn snapshot(&self) -> Vec<LockSite> {
        let mut all: Vec<LockSite> = self.sites().values().map(Site::snapshot).collect();
        all.sort_by(|a, b| b.held.cmp(&a.held).then(a.line.cmp(&b.line)));
        all
    }

    fn sites(&self) -> std::sync::MutexGuard<'_, HashMap<&'static Location<'static>, Site>> {
        self.sites.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A `try_lock` or `try_read`/`try_write` result as [`LockProfile::take`]
/// wants it: `None` only when the lock is held elsewhere (a poisoned lock
/// is taken as it is, as everywhere in this crate).
pub(crate) fn taken<G>(r: Result<G, TryLockError<G>>) -> Option<G> {
    match r {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    fn take<'a>(
        profile: &LockProfile,
        lock: &'a Mutex<u32>,
        site: &'static Location<'static>,
    ) -> (std::sync::MutexGuard<'a, u32>, Hold) {
        profile.take(
            site,
            || taken(lock.try_lock()),
            || lock.lock().expect("not poisoned"),
        )
    }

    #[test]
    fn buckets_are_an_eighth_of_a_power_of_two_wide() {
        for nanos in [0, 1, 7, 8, 9, 15, 16, 17, 100, 1000, 123_456, u64::MAX / 2] {
            let b = bucket(nanos);
            assert!(bucket_floor(b) <= nanos, "{nanos} in {b}");
            if b + 1 < BUCKETS {
                assert!(bucket_floor(b + 1) > nanos, "{nanos} in {b}");
            }
            // Within an eighth of the length.
            assert!(nanos - bucket_floor(b) <= nanos / 8, "{nanos} in {b}");
        }
        assert!(bucket(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles_come_from_the_holds() {
        let mut site = Site::new(Location::caller());
        for _ in 0..98 {
            site.holds[bucket(1_000)] += 1;
        }
        site.holds[bucket(50_000)] += 1;
        site.holds[bucket(4_000_000)] += 1;
        let s = site.snapshot();
        assert_eq!(
            s.held_p50,
            Duration::from_nanos(bucket_floor(bucket(1_000)))
        );
        assert!(s.held_p50 <= Duration::from_nanos(1_000));
        assert!(s.held_p50 >= Duration::from_nanos(875));
        assert!(
            s.held_p99 >= Duration::from_nanos(43_750)
                && s.held_p99 <= Duration::from_nanos(50_000)
        );
    }

    #[test]
    fn counts_holds_and_contention_per_site() {
        let profile = Arc::new(LockProfile::default());
        let lock = Arc::new(Mutex::new(0u32));
        let here = Location::caller();
        let mut rounds = 0;
        // A thread asks while this one holds the lock; it must find it held
        // unless it was not scheduled before the release, so a round that
        // loses that race is tried again.
        let theirs = loop {
            rounds += 1;
            let (mut guard, hold) = take(&profile, &lock, here);
            let barrier = Arc::new(Barrier::new(2));
            let waiter = {
                let (profile, lock, barrier) = (profile.clone(), lock.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let site = Location::caller();
                    barrier.wait();
                    let (mut g, h) = take(&profile, &lock, site);
                    *g += 1;
                    drop(g);
                    profile.released(h);
                    site
                })
            };
            barrier.wait();
            std::thread::sleep(Duration::from_millis(20));
            *guard += 1;
            drop(guard);
            profile.released(hold);
            let site = waiter.join().expect("the waiter ends");
            let all = profile.snapshot();
            let theirs = all
                .iter()
                .find(|s| s.line == site.line())
                .expect("their site")
                .clone();
            if theirs.contended > 0 || rounds == 50 {
                break theirs;
            }
        };
        assert_eq!(*lock.lock().expect("not poisoned"), 2 * rounds);
        let all = profile.snapshot();
        let mine = all.iter().find(|s| s.line == here.line()).expect("my site");
        assert_eq!((mine.acquisitions, mine.contended), (u64::from(rounds), 0));
        assert_eq!(theirs.acquisitions, u64::from(rounds));
        assert!(theirs.contended >= 1, "never found the lock held");
        assert!(theirs.waited > Duration::ZERO);
        assert!(mine.held_max >= mine.mean_hold());
        assert!(mine.held_max >= Duration::from_millis(20));
    }
}
