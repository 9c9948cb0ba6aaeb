//! One configuration for every property test of the workspace: repeatable under CI,
//! exploring locally, and always saying how to repeat a run.

use std::hash::{BuildHasher, Hasher};

use proptest::test_runner::{Config, RngSeed};

/// The seed of every property test when `CI` is set (and `PROPTEST_RNG_SEED` is not): a
/// CI run tries the same cases each time, so it fails only when the code changed. New
/// seeds are tried by local runs and by the soak script (`benches/soak.sh`).
pub const CI_SEED: u64 = 0x5354_5241_5441_0001;

/// Multiplies each test's own number of cases (`STRATA_PROPTEST_SCALE=50`: fifty times
/// as many); how the soak script runs every property test longer, each in proportion to
/// its cost.
pub const SCALE_VAR: &str = "STRATA_PROPTEST_SCALE";

/// The configuration for a property test of `cases` cases (use it as
/// `#![proptest_config(strata_testkit::proptest_config(64))]`, or with
/// `..strata_testkit::proptest_config(64)` to change more fields).
///
/// - Cases: `cases`, times `STRATA_PROPTEST_SCALE` when set; `PROPTEST_CASES` replaces
///   the number outright.
/// - Seed: `PROPTEST_RNG_SEED` when set; else [`CI_SEED`] when `CI` is set; else a
///   fresh random seed. Either way the seed is printed (the test harness shows it when
///   the test fails), so that `PROPTEST_RNG_SEED=<seed>` repeats the run exactly.
/// - Everything else as proptest's default (which reads the other `PROPTEST_*`
///   variables), failures persisted under `proptest-regressions/` included.
pub fn proptest_config(cases: u32) -> Config {
    let config = configure(cases, |name| std::env::var(name).ok());
    if let RngSeed::Fixed(seed) = config.rng_seed {
        eprintln!("proptest: {} cases, seed {seed} (PROPTEST_RNG_SEED={seed} repeats this run)", config.cases);
    }
    config
}

/// [`proptest_config`] with the environment read through `var`.
fn configure(cases: u32, var: impl Fn(&str) -> Option<String>) -> Config {
    let number = |name: &str| var(name).and_then(|v| v.trim().parse::<u64>().ok());
    let cases = match number("PROPTEST_CASES") {
        Some(n) => u32::try_from(n).unwrap_or(u32::MAX),
        None => {
            let scale = number(SCALE_VAR).map_or(1, |s| u32::try_from(s.max(1)).unwrap_or(u32::MAX));
            cases.saturating_mul(scale)
        }
    };
    let seed = match number("PROPTEST_RNG_SEED") {
        Some(seed) => seed,
        None if var("CI").is_some() => CI_SEED,
        None => random_seed(),
    };
    // proptest's default (with the other PROPTEST_* variables applied) for the rest.
    Config { cases, rng_seed: RngSeed::Fixed(seed), ..Config::default() }
}

/// A random seed: std's hasher keys are drawn from the OS once per thread (and stepped
/// for each new hasher), and hashing the time of day spreads them further.
fn random_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    h.write_u128(now.as_nanos());
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn ci_has_one_seed_local_runs_fresh_ones_and_the_variables_win() {
        let c = configure(7, env(&[("CI", "1")]));
        assert_eq!((c.cases, c.rng_seed), (7, RngSeed::Fixed(CI_SEED)));
        let c = configure(7, env(&[("CI", "1"), ("PROPTEST_RNG_SEED", "42"), (SCALE_VAR, "10")]));
        assert_eq!((c.cases, c.rng_seed), (70, RngSeed::Fixed(42)));
        let c = configure(7, env(&[("PROPTEST_CASES", "5000"), (SCALE_VAR, "10")]));
        assert_eq!(c.cases, 5000);
        let (a, b) = (configure(7, env(&[])), configure(7, env(&[])));
        assert!(matches!(a.rng_seed, RngSeed::Fixed(s) if s != CI_SEED));
        assert_ne!(a.rng_seed, b.rng_seed);
        assert_eq!(configure(7, env(&[(SCALE_VAR, "0")])).cases, 7);
    }
}
