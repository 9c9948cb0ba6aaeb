//! The laws strata-layer rests on, over generated trees (the writer tests' fixtures):
//!
//! - applying `diff::trees(a, b)`, written with `Changes::write_layer`, on top of
//!   `layer(a)` with `apply_layers` gives `b`: types, contents, modes, owners, link
//!   targets and counts, xattrs, file and directory mtimes;
//! - the same for `diff::since(snapshot of a, a mutated in place into b)`;
//! - the merged view of `[layer(a), diff(a, b)]` is exactly `b`, read back through it;
//! - its export, unpacked onto an empty directory, is `b` (hard link counts included).

use proptest::prelude::*;
use strata_layer::diff::{self, DiffOptions};
use strata_layer::{ApplyOptions, Snapshot, WriteOptions, apply_layers, write_tree};
use strata_spec::Compression;
use strata_testkit::{Compare, Tree};

use crate::common::{export, merge_blobs, root_user, view};
use crate::fixture::{self, arb_ops, arb_spec};

fn plain() -> WriteOptions {
    WriteOptions::default().compression(Compression::None)
}

/// Everything but the root's own metadata.
fn exact() -> Compare {
    Compare { dir_mtime: true, ..Compare::default() }
}

fn unpacked(blobs: &[Vec<u8>]) -> Tree {
    let d = fixture::scratch();
    let layers = blobs.iter().enumerate().map(|(i, b)| strata_layer::LayerSource::new(format!("layer {i}"), &b[..]));
    apply_layers(d.path(), layers, &ApplyOptions::default()).unwrap();
    Tree::capture(d.path()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..strata_testkit::proptest_config(40) })]

    #[test]
    fn diff_then_apply_gives_the_new_tree(a in arb_spec(), ops in arb_ops()) {
        if !root_user() {
            // The fixtures set owners (lchown) and compare them.
            return Ok(());
        }
        let b = a.mutate(&ops);
        let tmp = fixture::scratch();
        let (da, db) = (fixture::subdir(tmp.path(), "a"), fixture::subdir(tmp.path(), "b"));
        a.build(&da);
        b.build(&db);
        let want = Tree::capture(&db).unwrap();
        let mut base = Vec::new();
        write_tree(&da, &mut base, &plain()).unwrap();
        let opts = DiffOptions::default();

        // trees(a, b)
        let changes = diff::trees(&da, &db, &opts).unwrap();
        let mut top = Vec::new();
        changes.write_layer(&db, &mut top, &plain()).unwrap();
        let layers = vec![base.clone(), top];
        let d = want.diff(&unpacked(&layers), &exact());
        prop_assert!(d.is_empty(), "apply(trees(a, b)) != b ({:?}): {:?}", ops, d);

        // The merged view of the same two layers is b, and so is its export unpacked.
        let m = merge_blobs(&layers, 2).unwrap();
        let d = want.diff(&view(&m, &layers), &exact());
        prop_assert!(d.is_empty(), "merged view != b ({:?}): {:?}", ops, d);
        let (flat, _) = export(&m, &layers);
        let d = want.diff(&unpacked(&[flat]), &exact());
        prop_assert!(d.is_empty(), "export != b ({:?}): {:?}", ops, d);

        // since(snapshot of a, a turned into b in place)
        let snap = Snapshot::capture(&da).unwrap();
        a.sync(&b, &da);
        let changes = diff::since(&snap, &da, &opts).unwrap();
        let mut top = Vec::new();
        changes.write_layer(&da, &mut top, &plain()).unwrap();
        let layers = vec![base, top];
        let d = want.diff(&unpacked(&layers), &exact());
        prop_assert!(d.is_empty(), "apply(since(a, b)) != b ({:?}): {:?}", ops, d);
        let m = merge_blobs(&layers, 1).unwrap();
        let d = want.diff(&view(&m, &layers), &exact());
        prop_assert!(d.is_empty(), "merged view of since != b ({:?}): {:?}", ops, d);
    }
}
