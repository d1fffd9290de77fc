//! The record queue and batch shipper of the proxy-wasm plugin and the JS package: bounded queue
//! (oldest dropped and counted), NDJSON batches with a per-source sequence, bounded in-flight
//! calls and bounded retries. No I/O: the adapter feeds it ticks and call outcomes.

use std::collections::VecDeque;

use crate::config::CollectorConfig;

/// Limits of one shipper, from the plugin's `collector` configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most records in one batch.
    pub batch_max: usize,
    /// Most bytes in one batch body (a batch always takes at least one record).
    pub batch_max_bytes: usize,
    /// Most records waiting in the queue; past it the oldest are dropped.
    pub queue_capacity: usize,
    /// Retries after the first attempt before a batch's records count as dropped.
    pub max_retries: u32,
    /// Most batches dispatched and not yet answered.
    pub max_in_flight: usize,
    /// How long after dispatch an unanswered call counts as timed out, nanoseconds.
    pub call_deadline_ns: u64,
}

/// Most batches in flight per emitter. The collector remembers 128 sequences per source, so
/// retries arriving out of order within this window are still recognised.
pub const MAX_IN_FLIGHT: usize = 8;

impl Limits {
    /// The limits a config's `collector` section sets (the proxy-wasm plugin's and the npm
    /// package's), with [`MAX_IN_FLIGHT`] calls in flight.
    #[must_use]
    pub fn of_collector(c: &CollectorConfig) -> Self {
        Self {
            batch_max: c.batch_size,
            batch_max_bytes: c.max_batch_bytes,
            queue_capacity: c.queue_capacity,
            max_retries: c.max_retries,
            max_in_flight: MAX_IN_FLIGHT,
            // The host enforces the timeout; this only frees a slot a host never answered.
            call_deadline_ns: (c.timeout_ms + c.tick_ms + 1000) * 1_000_000,
        }
    }

    /// At least one record a batch, one queued record and one call in flight.
    fn normalized(self) -> Self {
        Self {
            batch_max: self.batch_max.max(1),
            queue_capacity: self.queue_capacity.max(1),
            max_in_flight: self.max_in_flight.max(1),
            ..self
        }
    }
}

/// How a dispatched batch ended, as the host reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// The host could not complete the call (`num_headers == 0`: connect failure, timeout).
    Failed,
    /// The collector answered with this HTTP status.
    Status(u16),
}

impl CallOutcome {
    fn verdict(self) -> Verdict {
        match self {
            Self::Status(200..=299) => Verdict::Delivered,
            Self::Failed | Self::Status(429 | 500..=599) => Verdict::Retry,
            Self::Status(_) => Verdict::Rejected,
        }
    }
}

#[derive(Clone, Copy)]
enum Verdict {
    Delivered,
    Retry,
    Rejected,
}

/// One batch: an NDJSON body with the sequence number it keeps across retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Per-source sequence, increasing with each new batch, kept by retries.
    pub sequence: u64,
    /// NDJSON: one encoded record per line, each ending in `\n`.
    pub body: Vec<u8>,
    /// Records in `body`.
    pub records: u64,
    /// Drops that `body` reports (in its first record's `dropped`).
    pub carried_drops: u64,
    /// Attempts so far (0 before the first dispatch).
    pub attempts: u32,
}

#[derive(Debug)]
struct InFlight {
    call_id: u32,
    deadline_ns: u64,
    batch: Batch,
}

/// Running totals, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records accepted into the queue.
    pub enqueued: u64,
    /// Records in batches the collector acknowledged.
    pub delivered: u64,
    /// Records lost (queue overflow, retries exhausted, rejected batches).
    pub dropped: u64,
    /// Dispatches that were retries of an earlier attempt.
    pub retries: u64,
    /// Dispatch attempts, first tries and retries.
    pub dispatches: u64,
}

/// Rewrites a batch's first encoded line (with its newline) to report `drops` earlier drops;
/// `None` leaves the line as it is and the drops for a later batch. For record lines this is
/// [`crate::record::add_dropped`].
pub type CarryDrops = fn(&[u8], u64) -> Option<Vec<u8>>;

/// The bounded queue and the batches leaving it.
#[derive(Debug)]
pub struct Shipper {
    limits: Limits,
    queue: VecDeque<Vec<u8>>,
    /// Drops not yet reported in any batch.
    unreported_drops: u64,
    retry: VecDeque<Batch>,
    in_flight: Vec<InFlight>,
    next_sequence: u64,
    carry: CarryDrops,
    stats: Stats,
}

impl Shipper {
    /// An empty shipper; `carry` writes a drop count into an encoded record line.
    #[must_use]
    pub fn new(limits: Limits, carry: CarryDrops) -> Self {
        let limits = limits.normalized();
        Self {
            limits,
            queue: VecDeque::with_capacity(limits.queue_capacity.min(1024)),
            unreported_drops: 0,
            retry: VecDeque::new(),
            in_flight: Vec::with_capacity(limits.max_in_flight),
            next_sequence: 1,
            carry,
            stats: Stats::default(),
        }
    }

    /// Queues one encoded record line (ending in `\n`). When the queue is full the oldest
    /// record is dropped and counted.
    pub fn push(&mut self, line: Vec<u8>) {
        if self.queue.len() >= self.limits.queue_capacity {
            self.queue.pop_front();
            self.drop_records(1);
        }
        self.queue.push_back(line);
        self.stats.enqueued += 1;
    }

    /// Takes the limits of a new configuration, keeping every queued record, batch, drop
    /// count and the sequence. A queue past the new capacity loses its oldest records, counted
    /// as dropped and reported by the next batch like any other drop.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits.normalized();
        while self.queue.len() > self.limits.queue_capacity {
            self.queue.pop_front();
            self.drop_records(1);
        }
    }

    /// Records waiting in the queue (not yet in a batch).
    #[must_use]
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Batches dispatched and not yet answered.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Batches waiting to be retried.
    #[must_use]
    pub fn pending_retries(&self) -> usize {
        self.retry.len()
    }

    /// Bytes held in queued lines and batch bodies (the shipper's variable memory).
    #[must_use]
    pub fn held_bytes(&self) -> usize {
        self.queue.iter().map(Vec::len).sum::<usize>()
            + self.retry.iter().map(|b| b.body.len()).sum::<usize>()
            + self
                .in_flight
                .iter()
                .map(|f| f.batch.body.len())
                .sum::<usize>()
    }

    /// Running totals.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// One tick: expires unanswered calls past their deadline, then dispatches batches
    /// (retries first, oldest sequence first) while the in-flight bound allows. `send`
    /// dispatches one batch and returns its call id, or `None` when the host refused it
    /// (counted as a failed attempt).
    pub fn tick(&mut self, now_ns: u64, mut send: impl FnMut(&Batch) -> Option<u32>) {
        let mut i = 0;
        while i < self.in_flight.len() {
            if self.in_flight[i].deadline_ns <= now_ns {
                let expired = self.in_flight.swap_remove(i);
                self.settle(expired.batch, Verdict::Retry);
            } else {
                i += 1;
            }
        }
        // Each batch goes out at most once per tick, so a refusing host cannot spin us.
        let mut budget = self.retry.len() + self.limits.max_in_flight;
        while self.in_flight.len() < self.limits.max_in_flight && budget > 0 {
            budget -= 1;
            let Some(mut batch) = self.retry.pop_front().or_else(|| self.next_batch()) else {
                break;
            };
            if batch.attempts > 0 {
                self.stats.retries += 1;
            }
            batch.attempts += 1;
            self.stats.dispatches += 1;
            match send(&batch) {
                Some(call_id) => self.in_flight.push(InFlight {
                    call_id,
                    deadline_ns: now_ns.saturating_add(self.limits.call_deadline_ns),
                    batch,
                }),
                None => self.settle(batch, Verdict::Retry),
            }
        }
    }

    /// The host's answer to call `call_id`. Unknown ids (already expired) are ignored.
    pub fn on_response(&mut self, call_id: u32, outcome: CallOutcome) {
        if let Some(pos) = self.in_flight.iter().position(|f| f.call_id == call_id) {
            let done = self.in_flight.swap_remove(pos);
            self.settle(done.batch, outcome.verdict());
        }
    }

    fn settle(&mut self, batch: Batch, verdict: Verdict) {
        match verdict {
            Verdict::Delivered => self.stats.delivered += batch.records,
            Verdict::Retry if batch.attempts <= self.limits.max_retries => {
                // Keep retries in sequence order so the collector sees sequences ascending.
                let pos = self
                    .retry
                    .iter()
                    .position(|b| b.sequence > batch.sequence)
                    .unwrap_or(self.retry.len());
                self.retry.insert(pos, batch);
            }
            Verdict::Retry | Verdict::Rejected => {
                self.drop_records(batch.records);
                // The drops this batch reported were never delivered: report them again.
                self.unreported_drops += batch.carried_drops;
            }
        }
    }

    fn drop_records(&mut self, n: u64) {
        self.unreported_drops += n;
        self.stats.dropped += n;
    }

    fn next_batch(&mut self) -> Option<Batch> {
        let first = self.queue.pop_front()?;
        let mut carried_drops = 0;
        let first = if self.unreported_drops > 0 {
            match (self.carry)(&first, self.unreported_drops) {
                Some(line) => {
                    carried_drops = std::mem::take(&mut self.unreported_drops);
                    line
                }
                None => first,
            }
        } else {
            first
        };
        let mut body = Vec::with_capacity(
            (first.len() * self.limits.batch_max.min(64)).min(self.limits.batch_max_bytes),
        );
        body.extend_from_slice(&first);
        let mut records = 1;
        while records < self.limits.batch_max as u64 {
            match self.queue.front() {
                Some(line) if body.len() + line.len() <= self.limits.batch_max_bytes => {}
                _ => break,
            }
            if let Some(line) = self.queue.pop_front() {
                body.extend_from_slice(&line);
                records += 1;
            }
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        Some(Batch {
            sequence,
            body,
            records,
            carried_drops,
            attempts: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn limits() -> Limits {
        Limits {
            batch_max: 3,
            batch_max_bytes: 1 << 20,
            queue_capacity: 5,
            max_retries: 2,
            max_in_flight: 1,
            call_deadline_ns: 5 * SEC,
        }
    }

    /// Test encoding: a line is `r<N>\n`; carrying drops makes it `r<N>+d<count>\n`.
    fn carry(line: &[u8], drops: u64) -> Option<Vec<u8>> {
        let mut out = line.strip_suffix(b"\n")?.to_vec();
        out.extend_from_slice(format!("+d{drops}\n").as_bytes());
        Some(out)
    }

    fn line(n: u32) -> Vec<u8> {
        format!("r{n}\n").into_bytes()
    }

    /// Runs one tick and returns what was sent, answering call ids from `next_id`.
    fn tick(s: &mut Shipper, now: u64, next_id: &mut u32) -> Vec<(u32, Batch)> {
        let mut sent = Vec::new();
        s.tick(now, |b| {
            *next_id += 1;
            sent.push((*next_id, b.clone()));
            Some(*next_id)
        });
        sent
    }

    fn body(b: &Batch) -> String {
        String::from_utf8(b.body.clone()).unwrap()
    }

    #[test]
    fn batches_are_ndjson_with_increasing_sequences_and_bounded_in_flight() {
        let mut s = Shipper::new(limits(), carry);
        for n in 1..=5 {
            s.push(line(n));
        }
        let mut id = 0;
        let sent = tick(&mut s, 0, &mut id);
        assert_eq!(sent.len(), 1, "one in flight at most");
        assert_eq!(body(&sent[0].1), "r1\nr2\nr3\n");
        assert_eq!(sent[0].1.sequence, 1);
        assert!(tick(&mut s, SEC, &mut id).is_empty(), "still in flight");
        s.on_response(sent[0].0, CallOutcome::Status(200));
        let sent = tick(&mut s, 2 * SEC, &mut id);
        assert_eq!(body(&sent[0].1), "r4\nr5\n");
        assert_eq!(sent[0].1.sequence, 2);
        s.on_response(sent[0].0, CallOutcome::Status(204));
        assert_eq!(s.stats().delivered, 5);
        assert!(tick(&mut s, 3 * SEC, &mut id).is_empty(), "nothing left");
    }

    #[test]
    fn retries_keep_the_sequence_then_count_drops_carried_by_the_next_batch() {
        let mut s = Shipper::new(limits(), carry);
        s.push(line(1));
        s.push(line(2));
        let mut id = 0;
        let mut now = 0;
        let mut attempts = Vec::new();
        for outcome in [
            CallOutcome::Status(500),
            CallOutcome::Failed,
            CallOutcome::Status(429),
        ] {
            let sent = tick(&mut s, now, &mut id);
            assert_eq!(sent.len(), 1);
            attempts.push((sent[0].1.sequence, sent[0].1.attempts, body(&sent[0].1)));
            s.on_response(sent[0].0, outcome);
            now += SEC;
        }
        assert_eq!(
            attempts,
            vec![
                (1, 1, "r1\nr2\n".to_owned()),
                (1, 2, "r1\nr2\n".to_owned()),
                (1, 3, "r1\nr2\n".to_owned()),
            ]
        );
        assert!(tick(&mut s, now, &mut id).is_empty(), "retries exhausted");
        assert_eq!(s.stats().dropped, 2);
        assert_eq!(s.stats().retries, 2);
        s.push(line(3));
        let sent = tick(&mut s, now, &mut id);
        assert_eq!(body(&sent[0].1), "r3+d2\n");
        assert_eq!(sent[0].1.sequence, 2);
        assert_eq!(sent[0].1.carried_drops, 2);
    }

    #[test]
    fn a_failed_batch_that_carried_drops_reports_them_again() {
        let mut s = Shipper::new(
            Limits {
                max_retries: 0,
                queue_capacity: 1,
                ..limits()
            },
            carry,
        );
        s.push(line(1));
        s.push(line(2)); // drops r1
        let mut id = 0;
        let sent = tick(&mut s, 0, &mut id);
        assert_eq!(body(&sent[0].1), "r2+d1\n");
        s.on_response(sent[0].0, CallOutcome::Status(503));
        s.push(line(3));
        let sent = tick(&mut s, SEC, &mut id);
        assert_eq!(body(&sent[0].1), "r3+d2\n", "r1 and r2 both lost");
        s.on_response(sent[0].0, CallOutcome::Status(200));
        assert_eq!(s.stats().dropped, 2);
        assert_eq!(s.stats().delivered, 1);
    }

    #[test]
    fn batches_respect_the_byte_limit_but_always_take_one_record() {
        let mut s = Shipper::new(
            Limits {
                batch_max_bytes: 7,
                ..limits()
            },
            carry,
        );
        s.push(b"a-long-record\n".to_vec());
        s.push(line(2));
        s.push(line(3));
        s.push(line(4));
        let mut id = 0;
        let sent = tick(&mut s, 0, &mut id);
        assert_eq!(body(&sent[0].1), "a-long-record\n");
        s.on_response(sent[0].0, CallOutcome::Status(200));
        let sent = tick(&mut s, 1, &mut id);
        assert_eq!(body(&sent[0].1), "r2\nr3\n");
    }

    #[test]
    fn overflow_drops_the_oldest() {
        let mut s = Shipper::new(limits(), carry);
        for n in 1..=8 {
            s.push(line(n));
        }
        assert_eq!(s.queued(), 5);
        let mut id = 0;
        let sent = tick(&mut s, 0, &mut id);
        assert_eq!(body(&sent[0].1), "r4+d3\nr5\nr6\n");
        assert_eq!(s.stats().dropped, 3);
    }

    #[test]
    fn unanswered_calls_expire_and_late_answers_are_ignored() {
        let mut s = Shipper::new(limits(), carry);
        s.push(line(1));
        let mut id = 0;
        let first = tick(&mut s, 0, &mut id);
        assert!(tick(&mut s, 4 * SEC, &mut id).is_empty());
        let second = tick(&mut s, 5 * SEC, &mut id);
        assert_eq!(second.len(), 1, "expired call retried");
        assert_eq!(second[0].1.sequence, first[0].1.sequence);
        s.on_response(first[0].0, CallOutcome::Status(200));
        assert_eq!(
            s.stats().delivered,
            0,
            "late answer to the expired call ignored"
        );
        s.on_response(second[0].0, CallOutcome::Status(200));
        assert_eq!(s.stats().delivered, 1);
    }

    #[test]
    fn refused_dispatches_count_as_attempts_and_do_not_spin() {
        let mut s = Shipper::new(limits(), carry);
        s.push(line(1));
        let mut calls = 0;
        for t in 0..3 {
            s.tick(t * SEC, |_| {
                calls += 1;
                None
            });
        }
        assert_eq!(calls, 3, "one attempt per tick");
        s.tick(3 * SEC, |_| panic!("retries exhausted"));
        assert_eq!(s.stats().dropped, 1);
    }

    #[test]
    fn client_errors_are_not_retried() {
        let mut s = Shipper::new(limits(), carry);
        s.push(line(1));
        let mut id = 0;
        let sent = tick(&mut s, 0, &mut id);
        s.on_response(sent[0].0, CallOutcome::Status(400));
        assert_eq!(s.pending_retries(), 0);
        assert_eq!(s.stats().dropped, 1);
    }

    #[test]
    fn retries_go_out_in_sequence_order_before_new_batches() {
        let mut s = Shipper::new(
            Limits {
                max_in_flight: 2,
                batch_max: 1,
                ..limits()
            },
            carry,
        );
        for n in 1..=4 {
            s.push(line(n));
        }
        let mut id = 0;
        let sent = tick(&mut s, 0, &mut id);
        assert_eq!(sent.len(), 2);
        s.on_response(sent[1].0, CallOutcome::Status(500));
        s.on_response(sent[0].0, CallOutcome::Status(500));
        let again = tick(&mut s, SEC, &mut id);
        let seqs: Vec<u64> = again.iter().map(|(_, b)| b.sequence).collect();
        assert_eq!(seqs, vec![1, 2]);
    }

    #[test]
    fn memory_stays_bounded_when_the_collector_is_down() {
        let mut s = Shipper::new(limits(), carry);
        let mut id = 0;
        for n in 0..10_000u32 {
            s.push(line(n));
            if n % 7 == 0 {
                for (call, _) in tick(&mut s, u64::from(n) * SEC, &mut id) {
                    s.on_response(call, CallOutcome::Failed);
                }
            }
        }
        assert!(s.queued() <= 5);
        assert!(s.pending_retries() + s.in_flight() <= 2);
        assert!(s.held_bytes() < 5 * 8 + 3 * 3 * 16);
        let st = s.stats();
        assert_eq!(st.enqueued, 10_000);
        assert!(st.dropped > 9_000, "collector down: almost all dropped");
        assert_eq!(
            st.dropped + st.delivered + s.queued() as u64 + held_records(&s),
            10_000,
            "every record is delivered, dropped or still held"
        );
    }

    #[test]
    fn new_limits_keep_queue_batches_and_sequence_and_count_what_no_longer_fits() {
        let mut s = Shipper::new(limits(), carry);
        for n in 1..=5 {
            s.push(line(n));
        }
        let mut id = 0;
        let first = tick(&mut s, 0, &mut id);
        assert_eq!(body(&first[0].1), "r1\nr2\nr3\n");
        s.set_limits(Limits {
            queue_capacity: 1,
            batch_max: 10,
            ..limits()
        });
        assert_eq!((s.queued(), s.in_flight()), (1, 1), "r5 kept, r4 dropped");
        assert_eq!(s.stats().dropped, 1);
        // The batch in flight before the change is still answered and counted.
        s.on_response(first[0].0, CallOutcome::Status(200));
        s.push(line(6));
        let next = tick(&mut s, SEC, &mut id);
        assert_eq!(
            body(&next[0].1),
            "r6+d2\n",
            "r4 dropped by the new capacity, r5 gave way to r6"
        );
        assert_eq!(next[0].1.sequence, 2, "the sequence continues");
        assert_eq!(s.stats().dropped, 2);
        assert_eq!(s.stats().delivered, 3);
    }

    fn held_records(s: &Shipper) -> u64 {
        s.retry.iter().map(|b| b.records).sum::<u64>()
            + s.in_flight.iter().map(|f| f.batch.records).sum::<u64>()
    }
}
