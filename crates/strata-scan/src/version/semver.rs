//! Semantic versioning 2.0.0 precedence (npm, and OSV's `SEMVER` ranges):
//! `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`; build metadata is ignored; a pre-release
//! is older than its release; pre-release identifiers compare numerically when both
//! are numbers, numbers before words, and a longer list wins a tie. A leading `v` and
//! missing minor or patch numbers (`1.2`) are accepted, as OSV data has them.

use std::cmp::Ordering;

fn split(v: &str) -> (Vec<u64>, Option<&str>) {
    let v = v.trim().trim_start_matches(['v', 'V', '=']);
    let v = v.split_once('+').map_or(v, |(a, _)| a);
    let (core, pre) = match v.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (v, None),
    };
    let mut nums: Vec<u64> = core.split('.').map(|n| n.parse().unwrap_or(0)).collect();
    nums.resize(3.max(nums.len()), 0);
    (nums, pre)
}

fn cmp_ident(a: &str, b: &str) -> Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// Compare two semantic versions by precedence.
pub fn compare(a: &str, b: &str) -> Ordering {
    let ((na, pa), (nb, pb)) = (split(a), split(b));
    na.cmp(&nb).then_with(|| match (pa, pb) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => {
            let (xs, ys): (Vec<&str>, Vec<&str>) = (x.split('.').collect(), y.split('.').collect());
            for (p, q) in xs.iter().zip(&ys) {
                match cmp_ident(p, q) {
                    Ordering::Equal => {}
                    o => return o,
                }
            }
            xs.len().cmp(&ys.len())
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn spec_example_order() {
        // The ordering example of semver.org, section 11.
        let v = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        for w in v.windows(2) {
            assert_eq!(super::compare(w[0], w[1]), std::cmp::Ordering::Less, "{} < {}", w[0], w[1]);
        }
        assert_eq!(super::compare("1.0.0+build.1", "1.0.0"), std::cmp::Ordering::Equal);
    }
}
