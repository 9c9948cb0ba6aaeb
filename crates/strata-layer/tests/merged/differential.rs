//! Random layers, hostile ones included: the merged view and the applier always agree
//! (the same tree, or the same error), on one thread and on two, and the export of the
//! merged view unpacks to the same tree.

use proptest::prelude::*;

use crate::semantics::agree;
use crate::util::*;

/// Names, with symlinks to be planted on the way (`l`, `m`)...
const NAMES: &[&str] =
    &["a", "a/b", "a/b/c", "b", "d/e", "l", "l/x", "l/a", "l/a/b", "m", "m/x", "h", "c", "c/d", "x/y", "/a/b"];
/// ...and the hostile ones, drawn less often: the root, whiteout names, `..`.
const HOSTILE: &[&str] = &["./", "/", ".wh..", "..", "a/.wh..wh..opq", "a/../b", ".wh.../x"];
/// Link targets: inside, the root, climbing, loops, missing.
const TARGETS: &[&str] =
    &["a", "a/b", "b", "a/b/c", "h", "c/d", "x", "/a", "l", "m", "/", "..", "../..", ".", "", "nowhere"];

fn name() -> impl Strategy<Value = &'static str> {
    prop_oneof![60 => prop::sample::select(NAMES), 1 => prop::sample::select(HOSTILE)]
}

fn target() -> impl Strategy<Value = &'static str> {
    prop_oneof![6 => prop::sample::select(&TARGETS[..7]), 1 => prop::sample::select(&TARGETS[7..])]
}

fn entry() -> impl Strategy<Value = (u8, &'static str, &'static str, Vec<u8>)> {
    (0u8..11, name(), target(), proptest::collection::vec(any::<u8>(), 0..40))
}

fn build(spec: &[(u8, &str, &str, Vec<u8>)]) -> Vec<E> {
    spec.iter()
        .map(|&(kind, name, target, ref data)| {
            let m = u32::from(data.first().copied().unwrap_or(0));
            match kind {
                0 | 1 => {
                    file(name, data).mode(0o600 | (m & 0o177)).owner(u64::from(m % 3), 0).mtime(1_000 + u64::from(m))
                }
                2 => dir(name).mode(0o700 | (m & 0o77)),
                3 => sym(name, target),
                4 => link(name, target),
                5 => fifo(name),
                6 if crate::common::root_user() => chr(name, 1, m),
                6 | 7 => wh(name),
                8 => opq(name.trim_start_matches('/')),
                9 => file(name, data).xattr("user.t", &data[..data.len().min(3)]),
                _ => sparse_file(name, data, u64::from(m) * 37),
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..strata_testkit::proptest_config(200) })]

    #[test]
    fn merged_view_and_applier_agree_on_random_layers(
        layers in proptest::collection::vec(proptest::collection::vec(entry(), 1..10), 1..4),
    ) {
        let built: Vec<Vec<E>> = layers.iter().map(|l| build(l)).collect();
        agree(&crate::common::blobs(&built), &format!("{built:?}"));
    }
}

#[test]
fn random_layers_both_unpack_and_fail() {
    // Guard against a generator whose layers always fail (or never do): both outcomes
    // must be common for the agreement above to mean anything.
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = proptest::collection::vec(proptest::collection::vec(entry(), 1..10), 1..4);
    let (mut ok, mut err) = (0, 0);
    for _ in 0..100 {
        let layers = strategy.new_tree(&mut runner).unwrap().current();
        let built: Vec<Vec<E>> = layers.iter().map(|l| build(l)).collect();
        match crate::common::merge_blobs(&crate::common::blobs(&built), 1) {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
    }
    assert!(ok >= 25 && err >= 10, "{ok} unpacked, {err} failed");
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..strata_testkit::proptest_config(256) })]

    /// Bytes that are not a layer, and layers with bytes flipped: an error or a tree,
    /// never a panic, on one thread or two, and the export of whatever folds works.
    #[test]
    fn arbitrary_and_mutated_layers_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..3000),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        gz in any::<bool>(),
        fix_checksums in any::<bool>(),
    ) {
        let mut t = tar(&[
            dir("a"),
            file("a/f", b"data").xattr("user.x", b"1"),
            sym("l", "a"),
            link("h", "a/f"),
            file(&"long/".repeat(40), b"long").gnu(),
            fifo("p"),
            wh("a/g"),
            opq("a"),
            file("l/x", b"through l"),
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
        for blob in [bytes, t] {
            let blob = if gz { gzip(&blob) } else { blob };
            let blobs = vec![blob.clone(), blob];
            for threads in [1, 2] {
                if let Ok(m) = crate::common::merge_blobs(&blobs, threads) {
                    let _ = crate::common::view(&m, &blobs);
                    let _ = crate::common::export(&m, &blobs);
                }
            }
        }
    }
}
