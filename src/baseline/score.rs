//! The graded anomaly score: how far a sample lies from its band's centre, in the method's
//! standard deviations, mapped to [0, 1] the same way for every method, so scores of an EWMA
//! check and a seasonal check can be ranked together. `z²/(z²+9)`: 0 at the centre, 0.1 at 1σ,
//! 0.5 at 3σ, 0.9 at 9σ, never quite 1 — it keeps ranking far-out samples instead of saturating.

use super::Direction;

/// The score of a distance of `z` standard deviations (its sign is ignored).
pub fn from_z(z: f64) -> f64 {
    if z.is_nan() {
        return 0.0;
    }
    if z.is_infinite() {
        return 1.0;
    }
    let z2 = z * z;
    z2 / (z2 + 9.0)
}

/// The signed distance of `x` from `center` in units of `sigma`, 0 on the side `direction`
/// does not watch. A zero spread makes any difference infinitely far.
pub fn directed_z(x: f64, center: f64, sigma: f64, direction: Direction) -> f64 {
    let d = x - center;
    let watched = match direction {
        Direction::Both => true,
        Direction::Up => d > 0.0,
        Direction::Down => d < 0.0,
    };
    if !watched || d == 0.0 {
        return 0.0;
    }
    if sigma > 0.0 && sigma.is_finite() {
        d / sigma
    } else {
        d.signum() * f64::INFINITY
    }
}

/// The score of `x` against a band centred on `center` with spread `sigma`.
pub fn score(x: f64, center: f64, sigma: f64, direction: Direction) -> f64 {
    from_z(directed_z(x, center, sigma, direction))
}

/// The two-sided normal quantile of a prediction-interval `level` (0.99 → 2.576): the number
/// of standard deviations from the centre to the interval's edge.
pub fn z_of_level(level: f64) -> f64 {
    normal_quantile(0.5 + level.clamp(0.0, 0.999_999_999) / 2.0)
}

/// The inverse of the standard normal CDF (Acklam's rational approximation, relative error
/// below 1.2e-9 over (0, 1)).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const LOW: f64 = 0.024_25;
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < LOW {
        return tail((-2.0 * p.ln()).sqrt());
    }
    if p > 1.0 - LOW {
        return -tail((-2.0 * (1.0 - p).ln()).sqrt());
    }
    let q = p - 0.5;
    let r = q * q;
    (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
        / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_score_is_graded_and_ranks_far_out_samples() {
        assert_eq!(from_z(0.0), 0.0);
        assert!((from_z(3.0) - 0.5).abs() < 1e-12);
        assert!((from_z(-1.0) - 0.1).abs() < 1e-12);
        assert!(from_z(20.0) < from_z(40.0) && from_z(40.0) < 1.0);
        assert_eq!(from_z(f64::INFINITY), 1.0);
        assert_eq!(from_z(f64::NAN), 0.0);
    }

    #[test]
    fn direction_zeroes_the_unwatched_side() {
        assert_eq!(directed_z(5.0, 10.0, 1.0, Direction::Up), 0.0);
        assert_eq!(directed_z(15.0, 10.0, 1.0, Direction::Up), 5.0);
        assert_eq!(directed_z(5.0, 10.0, 1.0, Direction::Down), -5.0);
        assert_eq!(directed_z(10.0, 10.0, 0.0, Direction::Both), 0.0);
        assert_eq!(directed_z(11.0, 10.0, 0.0, Direction::Both), f64::INFINITY);
    }

    #[test]
    fn level_quantiles_match_the_tables() {
        assert!((z_of_level(0.95) - 1.959_964).abs() < 1e-5);
        assert!((z_of_level(0.99) - 2.575_829).abs() < 1e-5);
        assert!((z_of_level(0.999) - 3.290_527).abs() < 1e-5);
        assert!((normal_quantile(0.5)).abs() < 1e-12);
        assert!((normal_quantile(0.01) + 2.326_348).abs() < 1e-5);
    }
}
