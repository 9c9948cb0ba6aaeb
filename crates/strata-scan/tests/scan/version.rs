//! Version ordering against the tools that define it: `dpkg --compare-versions` and
//! rpm's own `rpm.vercmp`, on thousands of generated pairs.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::process::Command;

use proptest::prelude::*;
use strata_scan::version;

use crate::fixture::{run, sh};

/// Version-ish strings built from the pieces that make orderings hard: digit runs with
/// leading zeros, letters, `~`, `+`, `.`, and (for dpkg) epochs and revisions.
fn piece() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        "[0-9]{1,3}",
        "0[0-9]",
        "[a-c]{1,2}",
        Just("~".to_owned()),
        Just("~rc".to_owned()),
        Just("+".to_owned()),
        Just(".".to_owned()),
        Just("+dfsg".to_owned()),
    ]
}

fn upstream() -> impl Strategy<Value = String> + Clone {
    ("[0-9]{1,2}", prop::collection::vec(piece(), 0..5)).prop_map(|(d, p)| format!("{d}{}", p.concat()))
}

fn deb_version() -> impl Strategy<Value = String> + Clone {
    (prop::option::of(0u8..3), upstream(), prop::option::of(prop::collection::vec(piece(), 1..3))).prop_map(
        |(e, u, r)| {
            let mut v = e.map(|e| format!("{e}:")).unwrap_or_default();
            v.push_str(&u);
            if let Some(r) = r {
                // A revision starting with a digit, without '-' (the last '-' splits).
                v.push_str(&format!("-1{}", r.concat()));
            }
            v
        },
    )
}

/// Pairs that are often close: the second is the first with a piece changed or added.
fn pairs(one: impl Strategy<Value = String> + Clone) -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        prop_oneof![
            (one.clone(), one.clone()),
            (one.clone(), piece()).prop_map(|(a, p)| (a.clone(), format!("{a}{p}"))),
            one.prop_map(|a| (a.clone(), a)),
        ],
        1000,
    )
}

fn ord(n: i32) -> Ordering {
    n.cmp(&0)
}

proptest! {
    #![proptest_config(strata_testkit::proptest_config(3))]

    /// 3 x 1,000 pairs per run.
    #[test]
    fn dpkg_agrees_with_dpkg_compare_versions(pairs in pairs(deb_version())) {
        if !strata_testkit::require_tool("dpkg") {
            return Ok(());
        }
        let mut script = String::new();
        for (a, b) in &pairs {
            writeln!(script, "if dpkg --compare-versions '{a}' lt '{b}'; then echo -1; elif dpkg --compare-versions '{a}' eq '{b}'; then echo 0; else echo 1; fi").unwrap();
        }
        let out = sh(&script);
        let want: Vec<i32> = out.lines().map(|l| l.parse().unwrap()).collect();
        prop_assert_eq!(want.len(), pairs.len());
        for ((a, b), w) in pairs.iter().zip(want) {
            prop_assert_eq!(version::dpkg::compare(a, b), ord(w), "{} vs {}", a, b);
        }
    }

    /// rpm's `rpmvercmp` through rpm's Lua `rpm.vercmp`, all pairs in one rpm process.
    #[test]
    fn rpm_agrees_with_rpm_vercmp(pairs in pairs(upstream())) {
        if !strata_testkit::require_tool("rpm") {
            return Ok(());
        }
        let mut lua = String::from("%{lua:\n");
        for (a, b) in &pairs {
            writeln!(lua, "print(rpm.vercmp('{a}', '{b}') .. ' ')").unwrap();
        }
        lua.push('}');
        let out = run(Command::new("rpm").arg("--eval").arg(&lua));
        let want: Vec<i32> = out.split_whitespace().map(|w| w.parse().unwrap()).collect();
        prop_assert_eq!(want.len(), pairs.len());
        for ((a, b), w) in pairs.iter().zip(want) {
            prop_assert_eq!(version::rpm::vercmp(a, b), ord(w), "{} vs {}", a, b);
        }
    }
}

#[test]
fn tricky_debian_versions() {
    assert_eq!(version::dpkg::compare("1:2.0~rc1-1", "2.0-1"), Ordering::Greater);
    assert_eq!(version::dpkg::compare("2.0~rc1-1", "2.0-1"), Ordering::Less);
}
