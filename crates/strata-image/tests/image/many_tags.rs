//! A store where a few images carry thousands of tags (issue 17): every command answers
//! as it does with one tag each, and each image is opened once, not once per tag (the
//! timings are in `benches/scale.sh`).

use strata_image::{Conflict, Error, RemoveOptions, Removed, Store};
use strata_spec::{ANNOTATION_REF_NAME, Descriptor};
use strata_store::Problem;

use crate::fixture::{E, import_tar, layer_tar, opts, scratch, write_files};

/// How many tags each image gets: enough that a scan per tag would show, few enough
/// for a debug test.
const TAGS: usize = 400;

/// Tag `desc` as `<repo>:t0` .. `<repo>:t{TAGS-1}` in one write of the index.
fn tag_many(store: &Store, repo: &str, desc: &Descriptor) {
    store
        .backend()
        .update_index(&mut |index| {
            for t in 0..TAGS {
                let mut d = desc.clone();
                d.annotations = None;
                d.set_annotation(ANNOTATION_REF_NAME, format!("{repo}:t{t}"));
                index.manifests.push(d);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn thousands_of_tags_list_inspect_remove_and_check_as_a_few() {
    let tmp = scratch();
    let store = Store::create(tmp.path().join("s")).unwrap();
    let base = import_tar(&store, &layer_tar(&[E::File("a", b"a\n", 0o644, 0)]), "base", 1_700_000_000);
    write_files(&tmp.path().join("extra"), &[("b", "bb\n")]);
    let child = base
        .append(strata_image::LayerInput::Dir(&tmp.path().join("extra")), &opts(1_700_000_100).tag("child"))
        .unwrap();
    let top = child.append(strata_image::LayerInput::Dir(&tmp.path().join("extra")), &opts(1_700_000_200)).unwrap();
    for (repo, img) in [("base", &base), ("child", &child), ("top", &top)] {
        tag_many(&store, repo, img.descriptor());
    }

    // images: one row per tag, each with its image's id and size, newest first.
    let rows = store.images().unwrap();
    assert_eq!(rows.len(), 2 + 3 * TAGS);
    for (repo, img) in [("top", &top), ("child", &child), ("base", &base)] {
        let mine: Vec<_> = rows.iter().filter(|r| r.repository == repo).collect();
        assert_eq!(mine.len(), TAGS + usize::from(repo != "top"), "{repo}");
        assert!(mine.iter().all(|r| r.id.as_ref() == Some(img.id()) && r.size == img.size().unwrap()), "{repo}");
    }
    assert_eq!(rows[0].repository, "top");

    // inspect: every tag, the parent.
    let i = store.image("child:t7").unwrap().inspect().unwrap();
    assert_eq!(i.repo_tags.len(), TAGS + 1);
    assert_eq!(i.parent, base.id().to_string());
    assert_eq!(store.image(&top.id().hex()[..12]).unwrap().id(), top.id());
    assert_eq!(store.image(top.id().as_str()).unwrap().id(), top.id());
    assert_eq!(top.history().unwrap()[1].image.as_ref(), Some(child.id()));

    // rmi: a tag of many goes alone; an image by id with children is refused; the last
    // tag of the top image deletes it.
    let r = store.remove(&["top:t3"], &RemoveOptions::default()).unwrap();
    assert_eq!(r.removed, [Removed::Untagged("top:t3".into())]);
    let r = store.remove(&[base.id().as_str()], &RemoveOptions::default().force(true)).unwrap();
    assert!(
        matches!(&r.failed[..], [(_, Error::Conflict { reason: Conflict::DependentChildren, .. })]),
        "{:?}",
        r.failed
    );
    let names: Vec<String> = (0..TAGS).filter(|&t| t != 3).map(|t| format!("top:t{t}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let r = store.remove(&names, &RemoveOptions::default()).unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(r.removed.iter().filter(|x| matches!(x, Removed::Untagged(_))).count(), TAGS - 1);
    assert!(r.removed.contains(&Removed::Image(top.id().clone())), "{:?}", &r.removed[TAGS - 1..]);
    assert!(store.image(top.id().as_str()).is_err());
    assert_eq!(store.images().unwrap().len(), 2 + 2 * TAGS);

    // fsck: clean; one name on two digests is one problem, however many names there are.
    assert!(store.fsck().unwrap().is_clean());
    let mut twin = base.descriptor().clone();
    twin.set_annotation(ANNOTATION_REF_NAME, "child:t9");
    store
        .backend()
        .update_index(&mut |index| {
            index.manifests.push(twin.clone());
            Ok(())
        })
        .unwrap();
    let report = store.fsck().unwrap();
    assert_eq!(report.problems, [Problem::AmbiguousRef { name: "child:t9".into(), count: 2 }], "{report}");
}
