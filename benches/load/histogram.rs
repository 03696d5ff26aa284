//! A log-linear latency histogram in the spirit of HdrHistogram.
//!
//! Values (nanoseconds) below 128 get one bucket each; above that every power of two is split
//! into 64 equal buckets, so any recorded value is known to within 1/64 (≈1.6 %). Recording is
//! a leading-zero count and an increment: cheap enough to do for every delivered message in
//! the load generator's hot path. The 3,776 buckets cover the whole `u64` range, so nothing is
//! ever clamped.

/// Sub-buckets per power of two above the linear range.
const SUB: u64 = 64;
/// Values below this get a bucket of their own.
const LINEAR: u64 = 2 * SUB;
/// Buckets needed to cover `u64::MAX`: shift 57 is the largest (64 − 7).
const BUCKETS: usize = ((57 + 1) * SUB + SUB) as usize;

/// Counts of values by log-linear bucket, plus the exact minimum, maximum and sum.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    min: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }
}

/// The bucket holding `v`.
fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let msb = 63 - u64::from(v.leading_zeros());
    // Chosen so that `v >> shift` lands in [SUB, 2·SUB).
    let shift = msb - 6;
    ((shift + 1) * SUB + (v >> shift) - SUB) as usize
}

/// The largest value that falls into bucket `i` (what a percentile reports, as HDR does).
fn upper_bound(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let shift = i / SUB - 1;
    let sub = i % SUB + SUB;
    ((sub + 1) << shift).wrapping_sub(1)
}

impl Histogram {
    /// Records one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.counts[index(v)] += 1;
        self.total += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += u128::from(v);
    }

    /// Adds every value recorded in `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// The largest value recorded (exact), 0 when empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The mean of the recorded values, 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        self.sum as f64 / self.total as f64
    }

    /// The value at percentile `p` (0–100): the upper bound of the bucket holding the
    /// ⌈p·n/100⌉-th smallest value, never above the exact maximum. 0 when empty.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper_bound(i).min(self.max).max(self.min);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_u64() {
        for i in 0..BUCKETS - 1 {
            assert_eq!(index(upper_bound(i)), i);
            assert_eq!(index(upper_bound(i) + 1), i + 1);
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_are_within_precision() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v * 1000);
        }
        let p50 = h.percentile(50.0) as f64;
        assert!((p50 / 50_000_000.0 - 1.0).abs() < 0.02, "{p50}");
        assert_eq!(h.percentile(100.0), 100_000_000);
    }
}
