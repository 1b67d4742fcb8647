//! Distributions: median, p90, p99, max.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    /// Nearest-rank percentiles of `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
        Some(Self { n: sorted.len(), median: rank(0.5), p90: rank(0.9), p99: rank(0.99), max: rank(1.0) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&values).expect("values");
        assert_eq!((s.median, s.p90, s.p99, s.max), (50.0, 90.0, 99.0, 100.0));
        let one = Summary::of(&[3.0]).expect("one");
        assert_eq!((one.median, one.p99), (3.0, 3.0));
        assert!(Summary::of(&[]).is_none());
    }
}
