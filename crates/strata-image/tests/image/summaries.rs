//! Image summaries (`.strata/image-summaries.cache`, issue 17): `images`, `inspect`'s
//! parent and `history` answer from them exactly as a cold run that opens every image
//! does; a damaged or truncated cache is ignored and rebuilt; a blob removed since a
//! summary was kept, and an image another tool added to `index.json`, are seen.

use std::fs;
use std::path::{Path, PathBuf};

use strata_image::{HistoryRow, Image, ImageSummary, Inspect, LayerInput, Store};
use strata_spec::{ANNOTATION_REF_NAME, Index};

use crate::fixture::{E, import_tar, layer_tar, opts, scratch, write_files};

/// base <- child <- top, all tagged, plus an untagged entry for child (an intermediate
/// image: top is built on it) and an image `spare` built on top that the index does not
/// list yet.
fn chain(root: &Path, extra: &Path) -> (Store, [Image; 4]) {
    let store = Store::create(root).unwrap();
    let base = import_tar(&store, &layer_tar(&[E::File("a", b"a\n", 0o644, 0)]), "base", 1_700_000_000);
    write_files(extra, &[("b", "bb\n")]);
    let child = base.append(LayerInput::Dir(extra), &opts(1_700_000_100).tag("child")).unwrap();
    let top = child.append(LayerInput::Dir(extra), &opts(1_700_000_200).tag("top")).unwrap();
    let spare = top.append(LayerInput::Dir(extra), &opts(1_700_000_300)).unwrap();
    let mut untagged = child.descriptor().clone();
    untagged.annotations = None;
    store
        .backend()
        .update_index(&mut |index| {
            index.manifests.push(untagged.clone());
            Ok(())
        })
        .unwrap();
    (store, [base, child, top, spare])
}

/// What the summaries feed: the listing, and top's inspect and history.
fn observe(store: &Store) -> (Vec<ImageSummary>, Inspect, Vec<HistoryRow>) {
    let top = store.image("top").unwrap();
    (store.images().unwrap(), top.inspect().unwrap(), top.history().unwrap())
}

fn cache_file(root: &Path) -> PathBuf {
    root.join(".strata/image-summaries.cache")
}

#[test]
fn summaries_answer_as_a_cold_run_does() {
    let tmp = scratch();
    let root = tmp.path().join("s");
    let (store, [base, child, top, _]) = chain(&root, &tmp.path().join("extra"));
    let _ = fs::remove_file(cache_file(&root));
    let cold = observe(&store);
    let kept = fs::read(cache_file(&root)).expect("the cold run keeps the summaries");
    let warm = observe(&store);
    assert_eq!(cold, warm);
    assert_eq!(fs::read(cache_file(&root)).unwrap(), kept, "nothing new: not rewritten");

    // And the answers are the right ones.
    let (rows, inspect, history) = warm;
    assert_eq!(inspect.parent, child.id().to_string());
    assert_eq!(history[0].image.as_ref(), Some(top.id()));
    assert_eq!(history[1].image.as_ref(), Some(child.id()));
    assert_eq!(history[2].image.as_ref(), Some(base.id()));
    assert_eq!(rows.len(), 4);
    for (img, name) in
        [(&top, Some("top:latest")), (&child, Some("child:latest")), (&child, None), (&base, Some("base:latest"))]
    {
        let row = rows.iter().find(|r| r.name.as_deref() == name && r.id.as_ref() == Some(img.id())).unwrap();
        assert_eq!(row.size, img.size().unwrap());
        assert_eq!(row.stored_size, img.stored_size());
        assert_eq!(row.created, img.config().created);
        assert_eq!(row.intermediate, name.is_none(), "{name:?}");
        assert_eq!(row.problem, None);
    }
}

#[test]
fn a_damaged_or_truncated_summary_cache_is_ignored_and_rebuilt() {
    let tmp = scratch();
    let root = tmp.path().join("s");
    let (store, _) = chain(&root, &tmp.path().join("extra"));
    let cold = observe(&store);
    let good = fs::read(cache_file(&root)).unwrap();
    let mut damaged: Vec<Vec<u8>> = vec![Vec::new(), good[..good.len() / 2].to_vec(), good[..good.len() - 1].to_vec()];
    for at in [3, good.len() / 3, good.len() / 2, good.len() - 2] {
        let mut bad = good.clone();
        bad[at] ^= 0x20;
        damaged.push(bad);
    }
    damaged.push(b"strata cache 2\nnot summaries at all".to_vec());
    for (k, bad) in damaged.iter().enumerate() {
        fs::write(cache_file(&root), bad).unwrap();
        assert_eq!(observe(&store), cold, "damage {k}");
        assert_eq!(fs::read(cache_file(&root)).unwrap(), good, "damage {k}: rebuilt");
    }
}

#[test]
fn a_blob_removed_since_its_summary_was_kept_is_noticed() {
    let tmp = scratch();
    let root = tmp.path().join("s");
    let (store, [base, child, _, _]) = chain(&root, &tmp.path().join("extra"));
    observe(&store);
    assert!(cache_file(&root).exists());
    fs::remove_file(root.join("blobs/sha256").join(child.id().hex())).unwrap();
    let warm = observe(&store);
    fs::remove_file(cache_file(&root)).unwrap();
    let cold = observe(&store);
    assert_eq!(warm, cold);
    let (rows, inspect, _) = warm;
    assert_eq!(inspect.parent, base.id().to_string(), "child cannot be opened: base is the closest");
    let child_rows: Vec<_> = rows.iter().filter(|r| r.digest == child.descriptor().digest).collect();
    assert_eq!(child_rows.len(), 2);
    assert!(child_rows.iter().all(|r| r.id.is_none() && r.problem.is_some()), "{child_rows:?}");
}

#[test]
fn an_image_another_tool_added_to_index_json_is_listed() {
    let tmp = scratch();
    let root = tmp.path().join("s");
    let (store, [_, _, top, spare]) = chain(&root, &tmp.path().join("extra"));
    observe(&store);
    // As umoci or skopeo would: index.json rewritten with one more tagged entry.
    let path = root.join("index.json");
    let mut index = Index::from_slice(&fs::read(&path).unwrap()).unwrap();
    let mut entry = spare.descriptor().clone();
    entry.set_annotation(ANNOTATION_REF_NAME, "spare:1");
    index.manifests.push(entry);
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(&path, index.to_canonical_json()).unwrap();
    let (rows, _, _) = observe(&store);
    let row = rows.iter().find(|r| r.name.as_deref() == Some("spare:1")).expect("listed");
    assert_eq!(row.id.as_ref(), Some(spare.id()));
    assert_eq!(row.size, spare.size().unwrap());
    assert_eq!(store.image("spare:1").unwrap().inspect().unwrap().parent, top.id().to_string());
}

/// Right after strata changed a tag, another tool rewrites `index.json` with the same
/// size (two tags renamed: in place, then by renaming a new file over it): the listing,
/// lookups and inspect's tags follow `index.json`, not strata's table.
#[test]
fn index_json_rewritten_by_another_tool_between_commands_is_seen() {
    let tmp = scratch();
    let root = tmp.path().join("s");
    let (store, [base, child, _, _]) = chain(&root, &tmp.path().join("extra"));
    let path = root.join("index.json");
    for in_place in [true, false] {
        // strata writes (its table and summaries are kept), then the other tool at once.
        store.tag(&base, "base:latest").unwrap();
        observe(&store);
        let text = String::from_utf8(fs::read(&path).unwrap()).unwrap();
        let edited = text.replace("\"base:latest\"", "\"bass:latest\"").replace("\"child:latest\"", "\"chill:latest\"");
        assert_eq!(edited.len(), text.len());
        assert_ne!(edited, text);
        if in_place {
            let mut f = fs::OpenOptions::new().write(true).open(&path).unwrap();
            std::io::Write::write_all(&mut f, edited.as_bytes()).unwrap();
        } else {
            let tmp_index = root.join("index.json.tmp");
            fs::write(&tmp_index, &edited).unwrap();
            fs::rename(&tmp_index, &path).unwrap();
        }
        let what = format!("in place: {in_place}");
        let rows = store.images().unwrap();
        let id_of = |name: &str| rows.iter().find(|r| r.name.as_deref() == Some(name)).and_then(|r| r.id.clone());
        assert_eq!(id_of("bass:latest").as_ref(), Some(base.id()), "{what}");
        assert_eq!(id_of("chill:latest").as_ref(), Some(child.id()), "{what}");
        assert_eq!((id_of("base:latest"), id_of("child:latest")), (None, None), "{what}");
        assert!(store.image("base").is_err(), "{what}");
        assert_eq!(store.image("chill").unwrap().inspect().unwrap().repo_tags, ["chill:latest"], "{what}");
        // Back to strata's names for the next round.
        store.untag("bass:latest").unwrap();
        store.untag("chill:latest").unwrap();
        store.tag(&child, "child:latest").unwrap();
    }
}
