//! Laws of the differs and the writer, over generated trees and mutations.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use strata_layer::diff::{self, DiffOptions};
use strata_layer::{ChangeKind, Changes, Snapshot, WriteOptions};
use strata_spec::Compression;
use strata_testkit::{Compare, Tree};

use crate::fixture::{self, Spec, arb_ops, arb_spec};
use crate::layers::check_and_list;

fn as_map(c: &Changes) -> BTreeMap<String, ChangeKind> {
    c.iter().map(|c| (c.path.to_string_lossy().into_owned(), c.kind)).collect()
}

/// The entry names a layer for `c` must have: each change's written name, directories
/// with a trailing slash, deletions as whiteouts.
fn layer_names(c: &Changes) -> Vec<String> {
    c.iter()
        .map(|c| {
            let p = c.path.to_string_lossy().into_owned();
            match (&c.kind, &c.meta) {
                (ChangeKind::Deleted, _) => match p.rsplit_once('/') {
                    Some((d, n)) => format!("{d}/.wh.{n}"),
                    None => format!(".wh.{p}"),
                },
                (_, Some(m)) if m.kind == strata_layer::EntryKind::Dir => format!("{p}/"),
                _ => p,
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(strata_testkit::proptest_config(40))]

    /// - diff(a, a) is empty, for `trees` and for `since`;
    /// - `trees(a, b)` finds exactly the changes the mutations made;
    /// - `since(snapshot(a), a mutated in place into b)` finds those too, plus only
    ///   harmless rewrites of entries whose metadata moved without changing (directories
    ///   whose contents changed, files relinked);
    /// - the layer holds one entry per change, and is byte-identical at 1 and 3 threads.
    #[test]
    fn differ_laws(a in arb_spec(), ops in arb_ops()) {
        let b = a.mutate(&ops);
        let tmp = fixture::scratch();
        let (da, da2, db) =
            (fixture::subdir(tmp.path(), "a"), fixture::subdir(tmp.path(), "a2"), fixture::subdir(tmp.path(), "b"));
        a.build(&da);
        a.build(&da2);
        b.build(&db);
        let opts = DiffOptions::default();

        prop_assert!(diff::trees(&da, &da2, &opts).unwrap().is_empty());
        let snap = Snapshot::capture(&da).unwrap();
        prop_assert!(diff::since(&snap, &da, &opts).unwrap().is_empty());

        let expected = a.expected(&b);
        let t = diff::trees(&da2, &db, &opts).unwrap();
        prop_assert_eq!(as_map(&t), expected.clone(), "trees, ops {:?}", ops);

        // Turn `a` into `b` in place and check the fixture did what it says.
        a.sync(&b, &da);
        let cmp = Compare { dir_mtime: true, ..Compare::default() };
        let d = Tree::capture(&db).unwrap().diff(&Tree::capture(&da).unwrap(), &cmp);
        prop_assert!(d.is_empty(), "fixture sync: {:?}", d);
        let s = as_map(&diff::since(&snap, &da, &opts).unwrap());
        for (p, k) in &expected {
            prop_assert_eq!(s.get(p), Some(k), "since misses {} ({:?})", p, ops);
        }
        for (p, k) in &s {
            if !expected.contains_key(p) {
                prop_assert_eq!(*k, ChangeKind::Modified);
                let same = a.stat_view(p).is_some() && a.stat_view(p) == b.stat_view(p);
                prop_assert!(same, "since lists {} which did not change ({:?})", p, ops);
            }
        }

        for c in [Compression::Gzip, Compression::Zstd] {
            let write = |threads: usize| {
                let mut blob = Vec::new();
                let info = t.write_layer(&db, &mut blob, &WriteOptions::default().compression(c).threads(threads).block_size(4096)).unwrap();
                (info, blob)
            };
            let (i1, b1) = write(1);
            let (i3, b3) = write(3);
            prop_assert_eq!(&i1, &i3);
            prop_assert!(b1 == b3);
            let names: Vec<String> = check_and_list(&b1, &i1).into_iter().map(|s| s.name).collect();
            prop_assert_eq!(names, layer_names(&t));
        }
    }
}

#[test]
fn generated_trees_are_not_trivial() {
    // Guard against a generator that only makes empty trees.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut sizes = Vec::new();
    for _ in 0..20 {
        let s: Spec = arb_spec().new_tree(&mut runner).unwrap().current();
        sizes.push(s.0.len());
    }
    assert!(sizes.iter().sum::<usize>() > 60, "{sizes:?}");
}
