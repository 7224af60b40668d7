//! How a run, and a rollback of it, spaces and sizes its batches for the application beside
//! it: the spec's `pause` after every batch and, while another session is busy on the
//! database, its `yield`: batches shrink until each takes about the `yield` time. Alone, a
//! run takes whole batches and a rollback restores whole backup records.
//!
//! Why the size and not a sleep: an application transaction that runs while a batch does
//! waits behind it (for the CPU, the WAL, a lock), so the application's slowest transactions
//! are slowed by about one batch's length, however long the run sleeps between batches.
//! Measured in BENCHMARKS.md: sleeping 1.5 to 3 times each batch's time left the
//! application's p99 at 2x idle; batches a tenth as long, back to back, at 1.3x.
//!
//! Where `mig.toml` sets `max_replica_lag`, no batch starts while a replica streaming from
//! the database has more WAL than that left to replay: a backfill writes as much WAL as the
//! application may in hours, and a replica behind serves reads that old.

use crate::store::{ReplicaLag, Store, StoreError, BUSY_SAMPLE_EVERY};
use std::time::{Duration, Instant};

/// The first batch of a run that starts beside a busy session, before any batch has shown
/// the pace: small enough to be short on any table mig walks (a few milliseconds at most),
/// and doubled batch by batch until batches take the `yield` time.
const FIRST_BUSY_BATCH: u64 = 100;

pub struct Throttle {
    pause: Duration,
    yield_after: Option<Duration>,
    /// The spec's batch size, which no batch exceeds.
    batch: u64,
    busy: bool,
    sampled_at: Option<Instant>,
    /// The rows a batch takes while others are busy, learned from the batches so far.
    busy_size: Option<u64>,
    report: YieldReport,
    longest: Duration,
    /// The rows this call's batches processed.
    rows: u64,
    rest_as_long_as_held: bool,
    max_replica_lag: Option<u64>,
    replicas: ReplicaWaits,
}

/// How long a run waited for its replicas (`max_replica_lag`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReplicaWaits {
    /// The times a batch waited.
    pub waits: u64,
    pub waited: Duration,
    /// The most WAL a replica had left to replay while a batch waited, in bytes.
    pub furthest: u64,
}

/// Workers wait for the replicas each on their own; a run's report is the sum of theirs.
impl std::iter::Sum for ReplicaWaits {
    fn sum<I: Iterator<Item = ReplicaWaits>>(reports: I) -> ReplicaWaits {
        reports.fold(ReplicaWaits::default(), |a, b| ReplicaWaits {
            waits: a.waits + b.waits,
            waited: a.waited + b.waited,
            furthest: a.furthest.max(b.furthest),
        })
    }
}

/// How often a waiting batch asks again how far the replicas are: often enough that a run
/// resumes soon after they catch up, seldom enough to cost the server nothing.
const REPLICA_POLL: Duration = Duration::from_millis(100);

/// What `yield` did in a run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct YieldReport {
    /// Batches sized for a busy database: run while another session was busy.
    pub busy_batches: u64,
    /// The rows those batches processed.
    pub busy_rows: u64,
}

/// Workers size their own batches, so a run's report is the sum of theirs.
impl std::iter::Sum for YieldReport {
    fn sum<I: Iterator<Item = YieldReport>>(reports: I) -> YieldReport {
        reports.fold(YieldReport::default(), |a, b| YieldReport {
            busy_batches: a.busy_batches + b.busy_batches,
            busy_rows: a.busy_rows + b.busy_rows,
        })
    }
}

/// How a call's batches went, for its summary.
pub struct Pace {
    /// The rows the batches processed (a resumed run's earlier rows are not among them).
    pub rows: u64,
    /// The longest any batch held its transaction.
    pub longest_batch: Duration,
    /// What `yield` did; `None` when the spec does not yield.
    pub yielded: Option<YieldReport>,
    /// How long batches waited for replicas; `None` when `max_replica_lag` is not set.
    pub replicas: Option<ReplicaWaits>,
}

impl Throttle {
    pub fn new(pause: Duration, yield_after: Option<Duration>, batch: u64) -> Throttle {
        Throttle {
            pause,
            yield_after,
            batch,
            busy: false,
            sampled_at: None,
            busy_size: None,
            report: YieldReport::default(),
            longest: Duration::ZERO,
            rows: 0,
            rest_as_long_as_held: false,
            max_replica_lag: None,
            replicas: ReplicaWaits::default(),
        }
    }

    /// Waits before each batch while a replica has more than `max` bytes of WAL to replay.
    pub fn watching_replicas(mut self, max: Option<u64>) -> Throttle {
        self.max_replica_lag = max;
        self
    }

    /// Returns once no replica is more than `max_replica_lag` behind, or a stop is asked for
    /// (which the caller then sees); tells `waiting` how far behind at each look meanwhile.
    pub fn wait_for_replicas(
        &mut self,
        store: &mut dyn Store,
        waiting: &mut dyn FnMut(u64),
    ) -> Result<(), StoreError> {
        let Some(max) = self.max_replica_lag else {
            return Ok(());
        };
        let started = Instant::now();
        let mut waited = false;
        while let ReplicaLag::Behind { bytes, .. } = store.replica_lag()? {
            if bytes <= max || super::stop::requested().is_some() {
                break;
            }
            if !waited {
                waited = true;
                self.replicas.waits += 1;
            }
            self.replicas.furthest = self.replicas.furthest.max(bytes);
            waiting(bytes);
            super::stop::sleep(REPLICA_POLL);
        }
        if waited {
            self.replicas.waited += started.elapsed();
        }
        Ok(())
    }

    /// Where a batch locks every other writer out (SQLite), a yielding run rests after each
    /// batch as long as the batch held the lock: the lock is no queue, and a waiting
    /// writer's busy handler tries again at moments of its own (up to 100 ms apart), which
    /// batches following one another at once almost never leave it free for.
    pub fn resting(mut self, locks_every_writer_out: bool) -> Throttle {
        self.rest_as_long_as_held = locks_every_writer_out;
        self
    }

    /// The rows the next batch should take: the spec's batch, or fewer while another session
    /// is busy.
    pub fn next_size(&mut self, store: &mut dyn Store) -> Result<u64, StoreError> {
        if self.yield_after.is_some() {
            self.sample(store)?;
        }
        Ok(self.size())
    }

    /// Whether the batch `next_size` sized is one for a busy database.
    pub fn yielding(&self) -> bool {
        self.yield_after.is_some() && self.busy
    }

    /// Learns from a batch that processed `rows` and held its transaction for `held`, then
    /// sleeps the pause.
    pub fn after_batch(&mut self, rows: u64, held: Duration) {
        self.longest = self.longest.max(held);
        self.rows += rows;
        self.learn(rows, held);
        let rest = if self.rest_as_long_as_held && self.yielding() {
            held
        } else {
            Duration::ZERO
        };
        let rest = self.pause.max(rest);
        if !rest.is_zero() {
            super::stop::sleep(rest);
        }
    }

    /// How the batches so far went.
    pub fn pace(&self) -> Pace {
        Pace {
            rows: self.rows,
            longest_batch: self.longest,
            yielded: self.yield_after.map(|_| self.report),
            replicas: self.max_replica_lag.map(|_| self.replicas),
        }
    }

    fn size(&self) -> u64 {
        if self.yield_after.is_none() || !self.busy {
            return self.batch;
        }
        self.busy_size
            .unwrap_or(FIRST_BUSY_BATCH)
            .clamp(1, self.batch)
    }

    /// Between busy batches the size moves by half or double at most (`resize`); a batch
    /// taken alone, faster than one beside the application, gives the first busy batch its
    /// size at once, so a run the application joins does not walk down from whole batches.
    fn learn(&mut self, rows: u64, held: Duration) {
        let Some(target) = self.yield_after else {
            return;
        };
        if self.busy {
            self.report.busy_batches += 1;
            self.report.busy_rows += rows;
        }
        if rows > 0 {
            let next = if self.busy {
                resize(rows, held, target)
            } else {
                at_pace(rows, held, target)
            };
            self.busy_size = Some(next.clamp(1, self.batch));
        }
    }

    /// Asks the store whether others are busy, unless it was asked within
    /// `BUSY_SAMPLE_EVERY`. A store that cannot see other sessions counts them busy: the spec
    /// asked to yield.
    fn sample(&mut self, store: &mut dyn Store) -> Result<(), StoreError> {
        if self
            .sampled_at
            .is_none_or(|at| at.elapsed() >= BUSY_SAMPLE_EVERY)
        {
            self.busy = store.others_busy()?.unwrap_or(true);
            self.sampled_at = Some(Instant::now());
        }
        Ok(())
    }
}

/// The size of the next batch after one of `rows` rows that took `held`: as many rows as take
/// `target` at that pace, but at most half as many or twice as many, so one batch slowed by
/// something else (a checkpoint's disk flush) does not shrink the run to single rows.
fn resize(rows: u64, held: Duration, target: Duration) -> u64 {
    let (least, most) = ((rows / 2).max(1), rows.saturating_mul(2));
    at_pace(rows, held, target).clamp(least, most)
}

/// The rows that take `target` at the pace of `rows` rows in `held`.
fn at_pace(rows: u64, held: Duration, target: Duration) -> u64 {
    let rows = rows as f64 * target.as_secs_f64() / held.as_secs_f64().max(1e-6);
    rows.round().min(u64::MAX as f64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A resumed run's summary gives the rate of this call's rows: counting the rows of the
    /// calls before it as well once reported 4,322,606 rows/s for a run resumed near its end.
    /// A yielding run on a store whose batches lock every writer out rests as long as each
    /// batch held the lock; on a store that locks rows, or not yielding, it goes straight on.
    #[test]
    fn a_yielding_run_rests_as_long_as_a_batch_held_the_whole_database() {
        let held = ms(40);
        let took = |throttle: &mut Throttle| {
            let started = Instant::now();
            throttle.after_batch(100, held);
            started.elapsed()
        };
        let mut resting = Throttle::new(Duration::ZERO, Some(ms(2)), 100).resting(true);
        resting.busy = true;
        assert!(took(&mut resting) >= held);
        let mut on_rows = Throttle::new(Duration::ZERO, Some(ms(2)), 100).resting(false);
        on_rows.busy = true;
        let not_yielding = Throttle::new(Duration::ZERO, None, 100).resting(true);
        assert!(!on_rows.rest_as_long_as_held && on_rows.yielding());
        assert!(not_yielding.rest_as_long_as_held && !not_yielding.yielding());
    }

    #[test]
    fn the_pace_counts_the_rows_of_this_calls_batches_only() {
        let mut throttle = Throttle::new(Duration::ZERO, None, 100);
        assert_eq!(throttle.pace().rows, 0);
        throttle.after_batch(100, ms(2));
        throttle.after_batch(37, ms(5));
        let pace = throttle.pace();
        assert_eq!(pace.rows, 137);
        assert_eq!(pace.longest_batch, ms(5));
    }

    #[test]
    fn a_batch_is_resized_to_take_the_target_time_at_its_pace() {
        assert_eq!(resize(1000, ms(4), ms(3)), 750);
        assert_eq!(resize(300, ms(2), ms(3)), 450);
        assert_eq!(resize(1000, ms(1), ms(1)), 1000);
    }

    #[test]
    fn one_slow_or_fast_batch_moves_the_size_by_half_or_double_at_most() {
        assert_eq!(resize(1000, ms(500), ms(1)), 500);
        assert_eq!(resize(100, Duration::ZERO, ms(1)), 200);
        assert_eq!(resize(1, ms(10), ms(1)), 1);
    }

    /// 0.3 ms a batch plus 3 us a row: 1 ms is 233 rows.
    fn held(rows: u64) -> Duration {
        Duration::from_micros(300 + 3 * rows)
    }

    /// The sizes of `n` batches of a run at `held`'s pace, busy as `busy` says for each.
    fn sizes(throttle: &mut Throttle, busy: impl Fn(usize) -> bool, n: usize) -> Vec<u64> {
        (0..n)
            .map(|i| {
                throttle.busy = busy(i);
                let size = throttle.size();
                throttle.after_batch(size, held(size));
                size
            })
            .collect()
    }

    #[test]
    fn a_run_that_starts_beside_a_busy_session_starts_small_and_grows() {
        let mut throttle = Throttle::new(Duration::ZERO, Some(ms(1)), 1000);
        assert_eq!(
            sizes(&mut throttle, |_| true, 6),
            [100, 167, 208, 225, 231, 233]
        );
        assert_eq!(throttle.pace().yielded.unwrap().busy_batches, 6);
    }

    #[test]
    fn a_run_alone_takes_whole_batches_and_sizes_its_first_busy_batch_from_their_pace() {
        let mut throttle = Throttle::new(Duration::ZERO, Some(ms(1)), 1000);
        assert_eq!(
            sizes(&mut throttle, |i| i >= 3, 5),
            [1000, 1000, 1000, 303, 251]
        );
        assert_eq!(
            throttle.pace().yielded,
            Some(YieldReport {
                busy_batches: 2,
                busy_rows: 554
            })
        );
    }

    #[test]
    fn without_yield_every_batch_is_whole() {
        let mut throttle = Throttle::new(Duration::ZERO, None, 1000);
        assert_eq!(sizes(&mut throttle, |_| true, 3), [1000, 1000, 1000]);
        assert_eq!(throttle.pace().yielded, None);
        assert!(!throttle.yielding(), "a run without yield never yields");
    }

    #[test]
    fn a_batch_yields_only_beside_a_busy_session() {
        let mut throttle = Throttle::new(Duration::ZERO, Some(ms(1)), 1000);
        throttle.busy = false;
        assert!(!throttle.yielding());
        throttle.busy = true;
        assert!(throttle.yielding());
    }

    #[test]
    fn sizes_converge_on_the_target_when_a_batch_costs_a_fixed_time_plus_its_rows() {
        let mut size = 1000;
        for _ in 0..20 {
            size = resize(size, held(size), ms(1));
        }
        assert!((220..=245).contains(&size), "{size}");
    }
}
