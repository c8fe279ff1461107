//! The statistics of repeated runs: a race is a probability, not a yes or
//! no. A catch probability with its 95 % interval, medians and maxima of
//! times, and the number of runs a bisection step needs before a miss on a
//! bad commit is unlikely.

use serde::{Deserialize, Serialize};

/// The two-sided 95 % normal quantile, z(0.975).
pub const Z95: f64 = 1.959_963_984_540_054;

/// A proportion `k` of `n` with its Wilson score interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Proportion {
    pub k: u32,
    pub n: u32,
    /// `k / n`; None when nothing was observed.
    pub p: Option<f64>,
    /// The 95 % Wilson score interval; `[0, 1]` when `n` is 0.
    pub lo: f64,
    pub hi: f64,
}

impl Proportion {
    pub fn new(k: u32, n: u32) -> Self {
        assert!(k <= n, "{k} of {n}");
        let (lo, hi) = wilson(k, n, Z95);
        Proportion {
            k,
            n,
            p: (n > 0).then(|| f64::from(k) / f64::from(n)),
            lo,
            hi,
        }
    }

    /// The estimate to plan with: Laplace's rule of succession,
    /// `(k + 1) / (n + 2)`, the mean of p's posterior under a uniform
    /// prior. Unlike `k / n` it never says 1 (or 0) from a few runs: 4
    /// catches in 4 runs give 0.83, not a certainty that one run per
    /// commit would settle. None when nothing was observed.
    pub fn succession(&self) -> Option<f64> {
        (self.n > 0).then(|| f64::from(self.k + 1) / f64::from(self.n + 2))
    }

    /// `3/8 = 0.38 [0.14, 0.69]`.
    pub fn describe(&self) -> String {
        match self.p {
            Some(p) => format!(
                "{}/{} = {p:.2} [{:.2}, {:.2}]",
                self.k, self.n, self.lo, self.hi
            ),
            None => "0/0 (no run said anything about the kernel)".into(),
        }
    }
}

/// The Wilson score interval of `k` successes in `n` trials at normal
/// quantile `z`. Unlike the plain normal approximation it stays inside
/// `[0, 1]` and is not empty at `k = 0` or `k = n`, the usual case for a
/// race that is always or never caught.
pub fn wilson(k: u32, n: u32, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (f64::from(k), f64::from(n));
    let p = k / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // At k = 0 (or n) the bound is 0 (or 1) exactly; rounding must not
    // leave it a hair off.
    let lo = if k == 0.0 { 0.0 } else { centre - half };
    let hi = if k == n { 1.0 } else { centre + half };
    (lo.max(0.0), hi.min(1.0))
}

/// Median, minimum and maximum of some times (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub n: usize,
    pub median: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Spread {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = match n {
            0 => None,
            _ if n % 2 == 1 => Some(v[n / 2]),
            _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
        };
        Spread {
            n,
            median,
            min: v.first().copied(),
            max: v.last().copied(),
        }
    }

    /// `2.4 s [0.8..7.9] (n=5)`, or `-` when empty.
    pub fn describe(&self) -> String {
        match (self.median, self.min, self.max) {
            (Some(m), Some(a), Some(b)) => {
                format!("{m:.1} s [{a:.1}..{b:.1}] (n={})", self.n)
            }
            _ => "-".into(),
        }
    }
}

/// Runs needed so that a bad commit whose runs catch the bug with
/// probability `p` is missed by all of them with probability below `miss`:
/// the smallest `n` with `(1 - p)^n < miss`. None when `p` is not in
/// `(0, 1]` (no run can promise anything).
pub fn runs_for_miss_below(p: f64, miss: f64) -> Option<u32> {
    let open_unit = |x: f64| x > 0.0 && x < 1.0;
    if !(open_unit(p) || p == 1.0) || !open_unit(miss) {
        return None;
    }
    if p >= 1.0 {
        return Some(1);
    }
    let n = (miss.ln() / (1.0 - p).ln()).floor() + 1.0;
    Some(n.max(1.0) as u32)
}

/// The chance that `n` runs of a commit that does have the bug (each
/// catching it with probability `p`) catch it at least once:
/// `1 - (1 - p)^n`. A "good" verdict after `n` clean runs is right with at
/// least this probability, syz-bisect's per-step confidence.
pub fn detect_chance(p: f64, n: u32) -> f64 {
    1.0 - (1.0 - p.clamp(0.0, 1.0)).powi(n as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, eps: f64) -> bool {
        (a - b).abs() <= eps
    }

    /// Reference values: Newcombe (1998), "Two-sided confidence intervals
    /// for the single proportion", Table I, method 3 (Wilson score without
    /// continuity correction), and R's `prop.test(..., correct = FALSE)`.
    #[test]
    fn wilson_matches_published_values() {
        for (k, n, lo, hi) in [
            (81, 263, 0.2553, 0.3662),
            (15, 148, 0.0624, 0.1605),
            (0, 20, 0.0, 0.1611),
            (1, 29, 0.0061, 0.1718),
            (5, 10, 0.2366, 0.7634),
            (0, 10, 0.0, 0.2775),
            (10, 10, 0.7225, 1.0),
        ] {
            let (l, h) = wilson(k, n, Z95);
            assert!(
                close(l, lo, 1e-4) && close(h, hi, 1e-4),
                "{k}/{n}: got [{l:.4}, {h:.4}], want [{lo}, {hi}]"
            );
        }
        assert_eq!(wilson(0, 0, Z95), (0.0, 1.0));
    }

    #[test]
    fn proportion_describes_itself() {
        let p = Proportion::new(3, 8);
        assert_eq!(p.p, Some(0.375));
        assert_eq!(p.describe(), "3/8 = 0.38 [0.14, 0.69]");
        assert_eq!(Proportion::new(0, 0).p, None);
        assert_eq!(Proportion::new(4, 4).succession(), Some(5.0 / 6.0));
        assert_eq!(Proportion::new(0, 3).succession(), Some(0.2));
        assert_eq!(Proportion::new(0, 0).succession(), None);
    }

    #[test]
    fn spread_median_of_odd_and_even() {
        let s = Spread::of([5.0, 1.0, 3.0]);
        assert_eq!(
            (s.n, s.median, s.min, s.max),
            (3, Some(3.0), Some(1.0), Some(5.0))
        );
        assert_eq!(Spread::of([4.0, 1.0, 2.0, 3.0]).median, Some(2.5));
        let e = Spread::of([]);
        assert_eq!((e.n, e.median, e.max), (0, None, None));
        assert_eq!(e.describe(), "-");
        assert_eq!(Spread::of([f64::NAN, 2.0]).n, 1);
        assert_eq!(s.describe(), "3.0 s [1.0..5.0] (n=3)");
    }

    #[test]
    fn runs_needed_for_a_one_percent_miss() {
        // (1 - 0.5)^7 = 0.0078 < 0.01 but (1 - 0.5)^6 = 0.0156.
        assert_eq!(runs_for_miss_below(0.5, 0.01), Some(7));
        // (0.9)^44 = 0.00969, (0.9)^43 = 0.01077.
        assert_eq!(runs_for_miss_below(0.1, 0.01), Some(44));
        assert_eq!(runs_for_miss_below(1.0, 0.01), Some(1));
        // 0.2 exactly: (0.8)^20 = 0.0115, (0.8)^21 = 0.0092.
        assert_eq!(runs_for_miss_below(0.2, 0.01), Some(21));
        assert_eq!(runs_for_miss_below(0.0, 0.01), None);
        assert_eq!(runs_for_miss_below(0.5, 0.0), None);
        for p in [0.05, 0.3, 0.77, 0.99] {
            let n = runs_for_miss_below(p, 0.01).unwrap();
            assert!(1.0 - detect_chance(p, n) < 0.01, "{p}: {n}");
            assert!(n == 1 || 1.0 - detect_chance(p, n - 1) >= 0.01, "{p}: {n}");
        }
    }

    #[test]
    fn detect_chance_values() {
        assert!(close(detect_chance(0.5, 3), 0.875, 1e-12));
        assert_eq!(detect_chance(0.3, 0), 0.0);
        assert_eq!(detect_chance(1.0, 1), 1.0);
    }
}
