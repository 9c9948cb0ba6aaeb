//! Unpacking with a plan made from the layers' headers: what a later layer deletes or
//! replaces is not written, and the tree is the one unpacked without a plan (the
//! differential tests of `semantics::agree` check that on every stack they try, random
//! ones included); a plan is only good for the layers it was made from.

use std::io::Cursor;
use std::sync::Arc;

use strata_layer::{ApplyOptions, Error, LayerSource, Limits, MergeOptions, Plan, apply_layers};

use crate::common::*;
use crate::semantics::agree;
use crate::util::*;

fn stack() -> Vec<Vec<E>> {
    vec![
        vec![
            file("big", &[1u8; 4096]),
            file("keep", b"kept"),
            dir("d"),
            file("d/x", &[2u8; 100]),
            file("h1", &[3u8; 200]),
            link("h1l", "h1"),
            file("g", &[4u8; 300]),
            link("gl", "g"),
            sym("s", "d"),
            file("over", &[5u8; 50]),
            file("twice", &[6u8; 10]),
            file("twice", &[7u8; 20]),
        ],
        vec![
            wh("big"),
            opq("d"),
            file("over", b"replaced"),
            // h1 goes, but its hard link keeps the contents: h1 must be written.
            wh("h1"),
            // g and its only link both go: neither is written.
            wh("g"),
            wh("gl"),
            // Through the symlink s -> d: lands in d, after the opaque marker.
            file("s/new", b"new"),
        ],
    ]
}

#[test]
fn a_plan_skips_what_later_layers_delete_or_replace() {
    let blobs = blobs(&stack());
    let p = plan(&blobs).unwrap();
    assert_eq!(p.layers(), 2);
    // big, d/x, over, g, gl (a link to a dead file) and the first `twice`.
    assert_eq!((p.skipped_entries(), p.skipped_bytes()), (6, 4096 + 100 + 50 + 300 + 10));
    let (planned, report) = unpack_planned(&blobs, p).unwrap();
    assert_eq!((report.layers[0].skipped, report.layers[0].skipped_bytes), (6, 4556));
    assert_eq!((report.layers[1].skipped, report.layers[1].skipped_bytes), (0, 0));
    let unpacked = unpack(&blobs).unwrap();
    assert_same(&unpacked, &planned, "planned vs unplanned");
    let file_of = |p: &str| planned.entries.get(std::path::Path::new(p)).map(|e| (e.size, e.nlink));
    assert_eq!(file_of("h1l"), Some((200, 1)));
    assert_eq!(file_of("d/new"), Some((3, 1)));
    assert_eq!(file_of("over"), Some((8, 1)));
    assert_eq!(file_of("twice"), Some((20, 1)));
    for gone in ["big", "d/x", "g", "gl", "h1"] {
        assert!(file_of(gone).is_none(), "{gone}");
    }
    agree(&blobs, "the plan stack");
}

#[test]
fn a_dead_file_leaves_nothing_a_later_entry_could_see() {
    // Each stack kills a file in a way where the path must end up as if the file had
    // been written and then removed (see `agree` for the comparison without a plan).
    let cases: Vec<(&str, Vec<Vec<E>>, u64)> = vec![
        ("replaced by a directory", vec![vec![file("a", b"x")], vec![dir("a"), file("a/b", b"y")]], 1),
        (
            "a directory replaced by a file that is then replaced by a directory",
            vec![vec![dir("a"), file("a/old", b"o")], vec![file("a", b"x")], vec![dir("a")]],
            2,
        ),
        ("under a directory whited out", vec![vec![dir("a"), file("a/f", b"x")], vec![wh("a")]], 1),
        ("under a directory made a symlink", vec![vec![dir("a"), file("a/f", b"x")], vec![sym("a", "/b")]], 1),
        (
            "written through a symlink, removed by its real name",
            vec![vec![dir("r"), sym("l", "r"), file("l/f", b"x")], vec![wh("r/f")]],
            1,
        ),
        (
            "a hard link made in a later layer, both removed",
            vec![vec![file("f", b"x")], vec![link("h", "f")], vec![wh("f"), wh("h")]],
            2,
        ),
        (
            "a hard link made in a later layer keeps it",
            vec![vec![file("f", b"x")], vec![link("h", "f")], vec![wh("f")]],
            0,
        ),
        ("removed in the same layer by a duplicate", vec![vec![file("f", b"1"), file("f", b"22")]], 1),
        ("opaque in the same layer keeps it", vec![vec![dir("a"), file("a/f", b"x"), opq("a")]], 0),
    ];
    for (case, layers, skipped) in cases {
        let blobs = blobs(&layers);
        let p = plan(&blobs).unwrap();
        assert_eq!(p.skipped_entries(), skipped, "{case}");
        let (_, report) = unpack_planned(&blobs, p).unwrap();
        assert_eq!(report.layers.iter().map(|l| l.skipped).sum::<u64>(), skipped, "{case}");
        agree(&blobs, case).unwrap_or_else(|| panic!("{case}: expected success"));
    }
}

#[test]
fn a_plan_is_only_good_for_the_layers_it_was_made_from() {
    let blobs = blobs(&stack());
    let other = crate::common::blobs(&[stack()[0].clone(), vec![wh("keep")]]);
    let apply = |blobs: &[Vec<u8>], p: Plan| {
        let d = tempfile::tempdir().unwrap();
        apply_layers(d.path(), sources(blobs), &ApplyOptions::default().plan(Arc::new(p)))
    };
    // Other headers in the second layer: found at its end.
    let err = apply(&other, plan(&blobs).unwrap()).unwrap_err();
    assert!(matches!(&err, Error::LayerChanged { layer, .. } if layer == "layer 1"), "{err}");
    // More layers than planned.
    let err = apply(&blobs, plan(&blobs[..1]).unwrap()).unwrap_err();
    assert!(matches!(&err, Error::LayerChanged { layer, reason } if layer == "layer 1" && reason.contains("has 1")));
    // Fewer: what the missing layer was to delete was not written, so that is an error.
    let err = apply(&blobs[..1], plan(&blobs).unwrap()).unwrap_err();
    assert!(
        matches!(&err, Error::LayerChanged { reason, .. } if reason.contains("1 layers applied, the plan is of 2"))
    );
    // The same headers with other contents are the diff_id's business, not the plan's.
    let mut same_names = stack();
    same_names[1][2] = file("over", b"REPLACED");
    let (planned, _) = unpack_planned(&crate::common::blobs(&same_names), plan(&blobs).unwrap()).unwrap();
    assert_eq!(planned.entries.get(std::path::Path::new("over")).map(|e| e.size), Some(8));
}

#[test]
fn compressed_layers_are_planned_by_decompressing_them() {
    let plain = blobs(&stack());
    let gz: Vec<Vec<u8>> = plain.iter().map(|b| gzip(b)).collect();
    let tars = |blobs: &[Vec<u8>]| {
        let v: Vec<_> = blobs
            .iter()
            .enumerate()
            .map(|(i, b)| LayerSource::new(format!("layer {i}"), Cursor::new(b.clone())))
            .collect();
        v
    };
    let err = Plan::from_tars(tars(&gz), &Limits::default()).unwrap_err();
    assert!(err.to_string().contains("needs an uncompressed tar"), "{err}");
    let p = Plan::from_layers(sources(&gz), &MergeOptions::default()).unwrap();
    let q = plan(&plain).unwrap();
    assert_eq!((p.skipped_entries(), p.skipped_bytes()), (q.skipped_entries(), q.skipped_bytes()));
    let (planned, report) = unpack_planned(&gz, p).unwrap();
    assert_eq!(report.layers[0].skipped, 6);
    assert_same(&unpack(&gz).unwrap(), &planned, "gzip, planned vs unplanned");
}

/// Few names, several layers, mostly files, whiteouts, hard links and opaque markers:
/// stacks where later layers kill what earlier ones wrote, through symlinks (`l`) and
/// hard links.
fn killing_stack() -> impl proptest::strategy::Strategy<Value = Vec<Vec<E>>> {
    use proptest::prelude::*;
    const FILES: &[&str] = &["a/f", "a/g", "b", "h", "l/f", "l/g", "c/f"];
    const DIRS: &[&str] = &["a", "c"];
    let files = || prop::sample::select(FILES);
    let data = || proptest::collection::vec(any::<u8>(), 0..8);
    // Each op is one entry or two (a hard link, most often to a file just written).
    let op = prop_oneof![
        5 => (files(), data()).prop_map(|(n, d)| vec![file(n, &d)]),
        3 => prop_oneof![files(), prop::sample::select(DIRS)].prop_map(|n| vec![wh(n)]),
        1 => (files(), files()).prop_map(|(n, t)| vec![link(n, t)]),
        2 => (files(), files(), data()).prop_map(|(n, t, d)| vec![file(t, &d), link(n, t)]),
        1 => prop::sample::select(DIRS).prop_map(|d| vec![opq(d)]),
        1 => prop::sample::select(&["a", "c", "/a"][..]).prop_map(|t| vec![sym("l", t)]),
        1 => prop::sample::select(DIRS).prop_map(|d| vec![dir(d)]),
    ];
    let layer = proptest::collection::vec(op, 1..6).prop_map(|ops| ops.into_iter().flatten().collect::<Vec<E>>());
    proptest::collection::vec(layer, 2..5)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        failure_persistence: None,
        ..strata_testkit::proptest_config(200)
    })]

    /// The planned unpack is the unpack, on stacks made to kill files (see `agree`).
    #[test]
    fn planned_unpacks_agree_on_random_killing_stacks(layers in killing_stack()) {
        agree(&crate::common::blobs(&layers), &format!("{layers:?}"));
    }
}

#[test]
fn random_killing_stacks_skip_files() {
    // Guard against a generator whose plans never skip anything.
    use proptest::strategy::{Strategy, ValueTree};
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = killing_stack();
    let (mut skipping, mut failing) = (0, 0);
    for _ in 0..100 {
        let layers = strategy.new_tree(&mut runner).unwrap().current();
        match plan(&crate::common::blobs(&layers)) {
            Ok(p) if p.skipped_entries() > 0 => skipping += 1,
            Ok(_) => {}
            Err(_) => failing += 1,
        }
    }
    assert!(skipping >= 30 && failing <= 50, "of 100 plans, {skipping} skip anything, {failing} fail");
}

#[test]
fn a_truncated_layer_still_fails_with_a_plan() {
    // Headers read by seeking cannot see that the data runs past the end: the plan is
    // made, and the apply reads every byte and fails as it does without one.
    let mut blobs = blobs(&[vec![file("a", &[1u8; 5000]), file("b", b"b")], vec![wh("a")]]);
    blobs[0].truncate(3000);
    let p = plan(&blobs);
    let unplanned = unpack(&blobs).unwrap_err();
    match p {
        Ok(p) => {
            let planned = unpack_planned(&blobs, p).unwrap_err();
            assert_eq!(crate::semantics::class(&planned), crate::semantics::class(&unplanned));
        }
        Err(e) => panic!("the plan of a truncated layer: {e}"),
    }
    assert!(matches!(unplanned, Error::InvalidTar { .. }), "{unplanned}");
}
