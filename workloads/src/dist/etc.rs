//! Facebook ETC: the key sizes, value sizes and inter-arrival gaps of Memcached's ETC pool
//! (Atikoglu et al., "Workload Analysis of a Large-Scale Key-Value Store", SIGMETRICS 2012),
//! as mutilate implements them (its `createFacebookKey`, `createFacebookValue` and
//! `createFacebookIA`), with the paper's parameters.

use super::continuous::gpd_quantile;

/// The discrete head of Facebook ETC's value sizes, bytes 0..=14 (mutilate's
/// `createFacebookValue`, from Atikoglu et al., SIGMETRICS 2012). The weights sum to 0.44155.
pub const ETC_VALUE_HEAD: [f64; 15] = [
    0.00536, 0.00047, 0.17820, 0.09239, 0.00018, 0.02740, 0.00065, 0.00606, 0.00023, 0.00837,
    0.00837, 0.08989, 0.00092, 0.00326, 0.01980,
];
/// ETC's value tail: generalized Pareto (location, scale, shape).
pub const ETC_VALUE_TAIL: (f64, f64, f64) = (15.0, 214.476, 0.348238);
/// ETC's key sizes: GEV (location, scale, shape).
pub const ETC_KEY: (f64, f64, f64) = (30.7984, 8.20449, 0.078688);
/// ETC's inter-arrival gap in microseconds: generalized Pareto (location, scale, shape).
pub const ETC_INTERARRIVAL_US: (f64, f64, f64) = (0.0, 16.0292, 0.154971);

/// The cumulative probabilities of value sizes 0..=14 ([`ETC_VALUE_HEAD`] summed).
pub fn head_cumulative() -> [f64; 15] {
    let mut cum = [0.0; 15];
    let mut sum = 0.0;
    for (c, w) in cum.iter_mut().zip(ETC_VALUE_HEAD) {
        sum += w;
        *c = sum;
    }
    cum
}

/// The ETC value size at uniform draw `u`, given [`head_cumulative`]: a head size when `u`
/// falls in the head's mass, otherwise the tail's quantile at `u` rescaled to the tail.
#[inline]
pub fn quantile(cum: &[f64; 15], u: f64) -> f64 {
    let head = cum[14];
    if u < head {
        cum.partition_point(|&c| c <= u) as f64
    } else {
        let (l, s, k) = ETC_VALUE_TAIL;
        gpd_quantile(l, s, k, (u - head) / (1.0 - head))
    }
}
