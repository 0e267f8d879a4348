//! Quantiles of samples.

/// The `q`-quantile (`0.0..=1.0`) of sorted samples, linearly interpolated
/// between the two nearest ranks (so `q = 0.5` is the usual median).
/// `None` for no samples.
pub fn quantile(sorted: &[u64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let pos = q.clamp(0.0, 1.0) * last as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let a = *sorted.get(lo)? as f64;
    let b = *sorted.get(hi)? as f64;
    Some(a + (b - a) * (pos - lo as f64))
}

/// Summary of one sample set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Smallest sample.
    pub min: f64,
    /// Median.
    pub median: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Largest sample.
    pub max: f64,
}

/// Summarises samples (in any order); `None` for no samples.
pub fn summarize(samples: &[u64]) -> Option<Summary> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    Some(Summary {
        n: sorted.len(),
        min: quantile(&sorted, 0.0)?,
        median: quantile(&sorted, 0.5)?,
        p90: quantile(&sorted, 0.9)?,
        max: quantile(&sorted, 1.0)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[7], 0.9), Some(7.0));
        assert_eq!(quantile(&[1, 2, 3], 0.5), Some(2.0));
        assert_eq!(quantile(&[1, 2, 3, 4], 0.5), Some(2.5));
        let v: Vec<u64> = (1..=11).collect();
        assert_eq!(quantile(&v, 0.9), Some(10.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 1.0), Some(11.0));
    }

    #[test]
    fn summary_sorts() {
        let s = summarize(&[5, 1, 4, 2, 3]).unwrap();
        assert_eq!((s.n, s.min, s.median, s.max), (5, 1.0, 3.0, 5.0));
        assert_eq!(summarize(&[]), None);
    }
}
