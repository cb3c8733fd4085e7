//! Latency histogram in microseconds: exact below 128 µs, then 64 buckets per power of two
//! (under 1.6 % error). Fixed size, cheap to record into, mergeable across tasks.

const LINEAR: u64 = 128;
const SUB_BUCKETS: u64 = 64;
const BUCKETS: usize = (LINEAR + (64 - 7) * SUB_BUCKETS) as usize;

#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }
}

impl Histogram {
    pub fn record(&mut self, micros: u64) {
        self.counts[index(micros)] += 1;
        self.total += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value at quantile `q` (0..=1), as the middle of its bucket; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(midpoint(i));
            }
        }
        None
    }
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let exp = 63 - u64::from(v.leading_zeros()); // ≥ 7
    let mantissa = v >> (exp - 6); // 64..128
    (LINEAR + (exp - 7) * SUB_BUCKETS + (mantissa - SUB_BUCKETS)) as usize
}

fn midpoint(i: usize) -> f64 {
    let i = i as u64;
    if i < LINEAR {
        return i as f64;
    }
    let exp = (i - LINEAR) / SUB_BUCKETS + 7;
    let mantissa = (i - LINEAR) % SUB_BUCKETS + SUB_BUCKETS;
    let width = 1u64 << (exp - 6);
    (mantissa * width) as f64 + width as f64 / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_close() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        let p50 = h.quantile(0.5).unwrap();
        let p99 = h.quantile(0.99).unwrap();
        assert!((p50 - 5000.0).abs() / 5000.0 < 0.02, "{p50}");
        assert!((p99 - 9900.0).abs() / 9900.0 < 0.02, "{p99}");
        assert_eq!(Histogram::default().quantile(0.5), None);
        let mut big = Histogram::default();
        big.record(u64::MAX);
        assert!(big.quantile(1.0).unwrap() > 1e18);
    }
}
