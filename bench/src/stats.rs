//! Quantiles of samples.

/// The `q`-quantile (`0.0..=1.0`) of sorted samples, linearly interpolated
/// between the two nearest ranks (so `q = 0.5` is the usual median).
/// `None` for no samples.
pub fn quantile(sorted: &[u64], q: f64) -> Option<f64> {
    interpolate(sorted.len(), q, |i| sorted[i] as f64)
}

/// The `q`-quantile of `len` sorted values, `at(i)` the `i`-th.
fn interpolate(len: usize, q: f64, at: impl Fn(usize) -> f64) -> Option<f64> {
    let last = len.checked_sub(1)?;
    let pos = q.clamp(0.0, 1.0) * last as f64;
    let lo = (pos.floor() as usize).min(last);
    let hi = (pos.ceil() as usize).min(last);
    let (a, b) = (at(lo), at(hi));
    Some(a + (b - a) * (pos - lo as f64))
}

/// The `q`-quantile of sorted numbers, as [`quantile`] does for integers.
/// `None` for no numbers.
pub fn quantile_f64(sorted: &[f64], q: f64) -> Option<f64> {
    interpolate(sorted.len(), q, |i| sorted[i])
}

/// `values` without NaNs (a measurement that could not be made), sorted.
pub fn sorted(values: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// The median of `values` in any order, NaNs left out (the mean of the
/// two middle ones for an even count). `None` when nothing is left.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    quantile_f64(&sorted(values), 0.5)
}

/// The median of integer samples in any order; `None` for no samples.
pub fn median_u64(samples: &[u64]) -> Option<f64> {
    let mut s = samples.to_vec();
    s.sort_unstable();
    quantile(&s, 0.5)
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
    fn medians_of_numbers() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, f64::NAN, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median([f64::NAN]), None);
        assert_eq!(median(std::iter::empty()), None);
        assert_eq!(median_u64(&[9, 1, 5]), Some(5.0));
        assert_eq!(median_u64(&[]), None);
        assert_eq!(quantile_f64(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.25), Some(2.0));
        assert_eq!(sorted([2.0, f64::NAN, -1.0]), [-1.0, 2.0]);
    }

    #[test]
    fn summary_sorts() {
        let s = summarize(&[5, 1, 4, 2, 3]).unwrap();
        assert_eq!((s.n, s.min, s.median, s.max), (5, 1.0, 3.0, 5.0));
        assert_eq!(summarize(&[]), None);
    }
}
