//! Random inputs: arbitrary bytes, mutated tars and random sequences of hostile entries
//! never panic, never touch anything outside the root, and the two resolvers (openat2
//! and the fallback walk) always agree.

use proptest::prelude::*;
use strata_layer::{ApplyOptions, Error, Ownership, Resolver};
use strata_testkit::{Compare, Tree};

use crate::util::*;

/// Names an attacker would try, and a few ordinary ones.
const NAMES: &[&str] = &[
    "a",
    "a/b",
    "a/b/c",
    "b",
    "d/e",
    ".",
    "./",
    "/",
    "..",
    "../x",
    "a/../../x",
    "/a/b",
    ".wh.a",
    "a/.wh.b",
    ".wh..wh..opq",
    "a/.wh..wh..opq",
    ".wh..",
    ".wh...",
    ".wh.../x",
    "l",
    "l/x",
    "l/a/b",
    "m/x",
    "h",
    "CANARY/secret",
    "CANARY/new",
    "dev/x",
];
/// Link targets: inside, outside, loops, the root.
const TARGETS: &[&str] = &[
    "a",
    "a/b",
    "/",
    "..",
    "../..",
    "../../..",
    "/CANARY",
    "/CANARY/secret",
    "CANARY/secret",
    "l",
    "m",
    ".",
    "",
    "/a/../..",
    "b",
];

fn entry() -> impl Strategy<Value = (u8, usize, usize, Vec<u8>)> {
    (0u8..8, 0..NAMES.len(), 0..TARGETS.len(), proptest::collection::vec(any::<u8>(), 0..16))
}

fn build(sb: &Sandbox, spec: &[(u8, usize, usize, Vec<u8>)]) -> Vec<E> {
    let canary = sb.canary_str();
    let canary_rel = canary.trim_start_matches('/').to_string();
    let fix = |s: &str| s.replace("/CANARY", &canary).replace("CANARY", &canary_rel);
    spec.iter()
        .map(|(kind, n, t, data)| {
            let name = fix(NAMES[*n]);
            let target = fix(TARGETS[*t]);
            match kind {
                0 | 1 => file(&name, data),
                2 => dir(&name).mode(0o700 | u32::from(data.first().copied().unwrap_or(0))),
                3 => sym(&name, &target),
                4 => link(&name, &target),
                5 => fifo(&name),
                6 => chr(&name, 1, 3),
                _ => wh(&name),
            }
        })
        .collect()
}

/// Apply and capture the outcome: the error's variant, or the tree.
fn outcome(root: &std::path::Path, layers: &[Vec<E>], opts: &ApplyOptions) -> Result<Tree, String> {
    match apply(root, layers, opts) {
        Ok(_) => Ok(Tree::capture(root).unwrap()),
        Err(e) => {
            // Every error names its layer.
            assert!(e.to_string().contains("layer "), "{e}");
            Err(match e {
                Error::UnsafeEntry { .. } => "unsafe".into(),
                Error::InvalidTar { .. } => "invalid".into(),
                Error::LimitExceeded { .. } => "limit".into(),
                Error::Apply { op, source, .. } => format!("apply {op}: {:?}", source.raw_os_error()),
                other => format!("{other}"),
            })
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..strata_testkit::proptest_config(256) })]

    #[test]
    fn random_hostile_layers_stay_inside_and_both_resolvers_agree(
        layers in proptest::collection::vec(proptest::collection::vec(entry(), 1..10), 1..4),
        rootless in any::<bool>(),
    ) {
        let ownership = if rootless { Ownership::Record } else { Ownership::Auto };
        let mut results = Vec::new();
        let sb = Sandbox::new();
        let built: Vec<Vec<E>> = layers.iter().map(|l| build(&sb, l)).collect();
        for (resolver, root) in [(Resolver::Openat2, &sb.root), (Resolver::Fallback, &sb.root2)] {
            let opts = ApplyOptions::default().resolver(resolver).ownership(ownership);
            results.push(outcome(root, &built, &opts));
            sb.assert_outside_unchanged(&format!("{resolver:?}"));
        }
        match (&results[0], &results[1]) {
            (Ok(a), Ok(b)) => {
                // Mtimes of directories touched by whiteouts differ run to run; all else
                // must be the same.
                let d = a.diff(b, &Compare { file_mtime: false, ..Compare::default() });
                prop_assert!(d.is_empty(), "resolvers disagree: {d:?}");
            }
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "resolvers disagree: {:?} vs {:?}", a.as_ref().map(|_| ()), b.as_ref().map(|_| ())),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000), gz in any::<bool>()) {
        let sb = Sandbox::new();
        let blob = if gz { gzip(&bytes) } else { bytes };
        let _ = apply_blobs(&sb.root, &[blob], &ApplyOptions::default().single_thread(true));
        sb.assert_outside_unchanged("arbitrary bytes");
    }

    #[test]
    fn mutated_tars_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), fix_checksums in any::<bool>()) {
        let sb = Sandbox::new();
        let c = sb.canary_str();
        let mut t = tar(&[
            dir("a"),
            file("a/f", b"data").xattr("user.x", b"1"),
            sym("l", &c),
            link("h", "a/f"),
            file(&"long/".repeat(40), b"long").gnu(),
            chr("dev/null", 1, 3),
            wh("a/g"),
            opq("a"),
        ]);
        for (i, v) in flips {
            let i = i.index(t.len());
            t[i] = v;
        }
        if fix_checksums {
            for block in t.chunks_mut(512) {
                if block.len() == 512 && block.iter().any(|&b| b != 0) {
                    let mut h = tar::Header::new_old();
                    h.as_mut_bytes().copy_from_slice(block);
                    h.set_cksum();
                    block.copy_from_slice(h.as_bytes());
                }
            }
        }
        let _ = apply_blobs(&sb.root, &[t], &ApplyOptions::default());
        sb.assert_outside_unchanged("mutated tar");
    }
}
