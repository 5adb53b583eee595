//! When the next operation happens and which worker gets it: Jepsen's
//! stagger, time limit, round-robin thread choice and the nemesis flip-flop.

use hearsay_core::rng::{Rng, RngExt};

/// Which stream a due operation comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    Client,
    /// The partition stream: start, stop, start, ...
    Nemesis,
    /// The process-fault stream (kill / pause and their undoing).
    Process,
}

/// What the main-phase generator wants at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Dispatch this now.
    Dispatch(Due),
    /// Nothing before this time (or before a worker frees up, if `None`).
    Wait(Option<u64>),
    /// The time limit has passed: the main phase is over.
    Exhausted,
}

#[derive(Debug)]
pub struct Schedule {
    threads: usize,
    /// Jepsen rotates through threads (nemesis included) one step per
    /// dispatch, so ops spread evenly over workers.
    next_thread: usize,
    free: Vec<bool>,
    free_count: usize,
    /// When a worker last became available after all were busy.
    free_since: u64,
    stagger_ns: u64,
    stagger_next: Option<u64>,
    nemesis_ns: Option<u64>,
    nemesis_next: Option<u64>,
    nemesis_starts: bool,
    process_ns: Option<u64>,
    process_next: Option<u64>,
    time_limit_ns: u64,
    cutoff: Option<u64>,
    rate_zero: bool,
}

impl Schedule {
    /// `rate` is total ops/s; `nemesis_interval` (s) is `Some` with the
    /// partition nemesis. Process faults, when wanted, get their own stream
    /// with [`Schedule::with_process_faults`].
    pub fn new(
        threads: usize,
        rate: f64,
        nemesis_interval: Option<f64>,
        time_limit_ns: u64,
        now: u64,
    ) -> Self {
        let rate_zero = rate <= 0.0;
        Schedule {
            threads,
            next_thread: 0,
            free: vec![true; threads],
            free_count: threads,
            free_since: now,
            stagger_ns: if rate_zero { 0 } else { (2e9 / rate) as u64 },
            stagger_next: None,
            nemesis_ns: nemesis_interval.map(|i| (2e9 * i) as u64),
            nemesis_next: None,
            nemesis_starts: true,
            process_ns: None,
            process_next: None,
            time_limit_ns,
            // With no client ops the client stream is one sleep for the whole
            // time limit, committed at once.
            cutoff: rate_zero.then_some(now + time_limit_ns),
            rate_zero,
        }
    }

    /// Jepsen's `nemesis.combined` process faults: a stream staggered on
    /// its own, independent of partitions (gaps uniform in
    /// [0, 2·interval) s, the first at once).
    pub fn with_process_faults(mut self, interval: f64) -> Self {
        self.process_ns = Some((2e9 * interval) as u64);
        self
    }

    pub fn next(&self, now: u64) -> Next {
        if self.rate_zero && self.cutoff.is_some_and(|c| now >= c) {
            return Next::Exhausted;
        }
        let client = (!self.rate_zero && self.free_count > 0)
            .then(|| self.stagger_next.unwrap_or(now).max(now));
        let nemesis = self
            .nemesis_ns
            .map(|_| self.nemesis_next.unwrap_or(now).max(now));
        let process = self
            .process_ns
            .map(|_| self.process_next.unwrap_or(now).max(now));
        // Ties go to the nemesis streams, partitions first.
        let soonest = [
            nemesis.map(|t| (t, Due::Nemesis)),
            process.map(|t| (t, Due::Process)),
            client.map(|t| (t, Due::Client)),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|&(t, due)| (t, due != Due::Nemesis, due == Due::Client));
        let Some((t, due)) = soonest else {
            return Next::Wait(self.cutoff.filter(|_| self.rate_zero));
        };
        let cutoff = self.cutoff.unwrap_or(t + self.time_limit_ns);
        if t >= cutoff {
            // Past the limit. A busy client stream might still produce an
            // earlier op once a worker frees up, unless time is up anyway.
            return if client.is_some() || self.rate_zero || now >= cutoff {
                if self.rate_zero {
                    Next::Wait(Some(cutoff))
                } else {
                    Next::Exhausted
                }
            } else {
                Next::Wait(None)
            };
        }
        if t > now {
            Next::Wait(Some(t))
        } else {
            Next::Dispatch(due)
        }
    }

    /// Commits a client op at `now`: picks the worker and draws the next
    /// stagger gap. Returns (thread, how late the op is against its schedule).
    pub fn take_client(&mut self, now: u64, rng: &mut Rng) -> (usize, u64) {
        self.cutoff.get_or_insert(now + self.time_limit_ns);
        let scheduled = self.stagger_next.unwrap_or(now).max(self.free_since);
        let gap = if self.stagger_ns > 0 {
            rng.random_range(0..self.stagger_ns)
        } else {
            0
        };
        self.stagger_next = Some(now + gap);
        let start = self.next_thread.min(self.threads);
        let thread = (start..self.threads)
            .chain(0..start)
            .find(|&i| self.free[i])
            .expect("take_client needs a free worker");
        self.busy(thread);
        (thread, now.saturating_sub(scheduled))
    }

    /// Commits a nemesis op at `now`; true for start-partition.
    pub fn take_nemesis(&mut self, now: u64, rng: &mut Rng) -> bool {
        self.cutoff.get_or_insert(now + self.time_limit_ns);
        let dt = self.nemesis_ns.unwrap_or(0);
        let gap = if dt > 0 { rng.random_range(0..dt) } else { 0 };
        self.nemesis_next = Some(now + gap);
        self.rotate();
        let start = self.nemesis_starts;
        self.nemesis_starts = !start;
        start
    }

    /// Commits a process-fault op at `now` (the caller decides which).
    pub fn take_process(&mut self, now: u64, rng: &mut Rng) {
        self.cutoff.get_or_insert(now + self.time_limit_ns);
        let dt = self.process_ns.unwrap_or(0);
        let gap = if dt > 0 { rng.random_range(0..dt) } else { 0 };
        self.process_next = Some(now + gap);
        self.rotate();
    }

    fn rotate(&mut self) {
        self.next_thread = (self.next_thread + 1) % (self.threads + 1);
    }

    /// Marks a worker busy outside the main generator (final ops).
    pub fn busy(&mut self, thread: usize) {
        debug_assert!(self.free[thread]);
        self.free[thread] = false;
        self.free_count -= 1;
        self.rotate();
    }

    pub fn release(&mut self, thread: usize, now: u64) {
        if !self.free[thread] {
            self.free[thread] = true;
            self.free_count += 1;
            if self.free_count == 1 {
                self.free_since = now;
            }
        }
    }

    pub fn all_free(&self) -> bool {
        self.free_count == self.threads
    }

    pub fn is_free(&self, thread: usize) -> bool {
        self.free[thread]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearsay_core::rng::child;

    const S: u64 = 1_000_000_000;

    #[test]
    fn stagger_averages_the_rate_and_stops_at_the_time_limit() {
        let mut rng = child(1, "t");
        let mut s = Schedule::new(1000, 100.0, None, 20 * S, 0);
        let mut now = 0;
        let mut ops = 0;
        loop {
            match s.next(now) {
                Next::Dispatch(Due::Client) => {
                    let (t, lag) = s.take_client(now, &mut rng);
                    assert_eq!(lag, 0);
                    s.release(t, now);
                    ops += 1;
                }
                Next::Wait(Some(t)) => now = t,
                Next::Exhausted => break,
                other => panic!("{other:?}"),
            }
        }
        assert!((1850..2150).contains(&ops), "{ops} ops in 20 s at rate 100");
        assert!(now < 20 * S);
    }

    #[test]
    fn workers_are_chosen_round_robin() {
        let mut rng = child(2, "t");
        let mut s = Schedule::new(3, 1000.0, None, S, 0);
        let picks: Vec<usize> = (0..7)
            .map(|_| {
                let (t, _) = s.take_client(0, &mut rng);
                s.release(t, 0);
                t
            })
            .collect();
        // Four slots (three workers plus the nemesis) rotate; slot 3 wraps to 0.
        assert_eq!(picks, [0, 1, 2, 0, 0, 1, 2]);
    }

    #[test]
    fn nemesis_starts_first_and_flip_flops() {
        let mut rng = child(3, "t");
        let mut s = Schedule::new(1, 0.0, Some(1.0), 10 * S, 0);
        assert_eq!(s.next(0), Next::Dispatch(Due::Nemesis));
        assert!(s.take_nemesis(0, &mut rng));
        let Next::Wait(Some(t)) = s.next(0) else {
            panic!()
        };
        assert!(t < 2 * S);
        assert!(!s.take_nemesis(t, &mut rng));
        // With rate 0 the phase lasts exactly the time limit.
        assert_eq!(s.next(10 * S), Next::Exhausted);
    }

    #[test]
    fn ops_wait_for_a_free_worker_and_report_no_lag_for_it() {
        let mut rng = child(4, "t");
        let mut s = Schedule::new(1, 1000.0, None, 10 * S, 0);
        let (t, _) = s.take_client(0, &mut rng);
        assert_eq!(s.next(5_000_000), Next::Wait(None));
        s.release(t, 7_000_000);
        assert_eq!(s.next(7_000_000), Next::Dispatch(Due::Client));
        let (_, lag) = s.take_client(7_100_000, &mut rng);
        assert_eq!(
            lag, 100_000,
            "lateness counts from when the worker freed up"
        );
    }
}
