//! The index table (`.strata/index.table`): lookups and ref changes through it give what
//! the whole `index.json` says, whoever edited it last, and `index.json` stays the
//! canonical index another tool reads.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use strata_store::spec::{ANNOTATION_REF_NAME, Descriptor, Index, Platform};
use strata_store::{Backend, Error, IndexEntries, MemoryStore, OciDir};

use crate::common::write_image;

fn index_file(root: &Path) -> Vec<u8> {
    fs::read(root.join("index.json")).unwrap()
}

/// The same ref changes on an `OciDir` and on a `MemoryStore` give the same index, and
/// `index.json` is the canonical form of it after each.
#[test]
fn ref_changes_through_the_table_match_the_whole_index_model() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("l");
    let oci = OciDir::create(&root).unwrap();
    let mem = MemoryStore::new();
    let imgs: Vec<_> =
        (0..4).map(|i| (write_image(&oci, &format!("i{i}")), write_image(&mem, &format!("i{i}")))).collect();
    // An untagged entry with more than the table holds, which must survive byte for byte.
    let mut odd = imgs[3].0.manifest.clone();
    odd.platform = Some(Platform::parse("linux/arm64/v8").unwrap());
    odd.set_annotation("org.example.note", "keep \"me\" \u{e9}");
    for s in [&oci as &dyn Backend, &mem] {
        s.update_index(&mut |i| {
            i.manifests.push(odd.clone());
            Ok(())
        })
        .unwrap();
    }
    let mut step = 0;
    let mut check = |what: &str| {
        step += 1;
        let (a, b) = (oci.index().unwrap(), mem.index().unwrap());
        assert_eq!(a, b, "step {step} ({what})");
        let bytes = index_file(&root);
        assert_eq!(bytes, b.to_canonical_json(), "step {step} ({what}): index.json is not canonical");
        assert_eq!(Index::from_slice(&bytes).unwrap(), b);
        // The entries by target say the same as the whole index.
        let entries = oci.index_entries().unwrap();
        assert_eq!(entries, IndexEntries::of(b.manifests.clone()), "step {step} ({what})");
        let back: Vec<Descriptor> = (0..entries.entries.len()).map(|i| entries.descriptor(i)).collect();
        assert_eq!(back, b.manifests, "step {step} ({what})");
    };
    for round in 0..3 {
        for (k, (o, m)) in imgs.iter().enumerate() {
            let name = format!("r{}:t{}", k % 2, round);
            let p1 = oci.set_ref(&name, &o.manifest).unwrap();
            let p2 = mem.set_ref(&name, &m.manifest).unwrap();
            assert_eq!(p1, p2);
            check("set");
        }
        // Re-pointing a tag keeps its place; the same tag again changes nothing.
        oci.set_ref("r0:t0", &imgs[2].0.manifest).unwrap();
        mem.set_ref("r0:t0", &imgs[2].1.manifest).unwrap();
        check("re-point");
        let before = index_file(&root);
        oci.set_ref("r0:t0", &imgs[2].0.manifest).unwrap();
        assert_eq!(index_file(&root), before);
        assert_eq!(oci.remove_ref(&format!("r1:t{round}")).unwrap(), mem.remove_ref(&format!("r1:t{round}")).unwrap());
        check("remove");
        assert_eq!(oci.remove_ref_if_shared("r0:t0").unwrap(), mem.remove_ref_if_shared("r0:t0").unwrap());
        check("remove if shared");
    }
    assert_eq!(oci.refs().unwrap(), mem.refs().unwrap());
    assert_eq!(oci.index_targets().unwrap(), mem.index_targets().unwrap());
    let name = oci.refs().unwrap()[0].0.clone();
    assert_eq!(oci.resolve_ref(&name).unwrap(), mem.resolve_ref(&name).unwrap());
    assert!(root.join(".strata/index.table").is_file());
}

/// Another tool edits `index.json` right after strata wrote it: in place with the same
/// size (one letter of a ref name), by renaming a new file over it, or by removing the
/// table; lookups and changes see the edit.
#[test]
fn an_edited_index_json_is_never_answered_from_a_stale_table() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("l");
    let store = OciDir::create(&root).unwrap();
    let a = write_image(&store, "a");
    let b = write_image(&store, "b");
    store.set_ref("x:aaaa", &a.manifest).unwrap();
    store.set_ref("x:bbbb", &b.manifest).unwrap();
    assert_eq!(store.resolve_ref("x:aaaa").unwrap().digest, a.manifest.digest);

    // In place, same size, at once: `aaaa` becomes `cccc`.
    let text = String::from_utf8(index_file(&root)).unwrap().replace("x:aaaa", "x:cccc");
    let mut f = OpenOptions::new().write(true).open(root.join("index.json")).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    drop(f);
    assert!(matches!(store.resolve_ref("x:aaaa"), Err(Error::RefNotFound(_))));
    assert_eq!(store.resolve_ref("x:cccc").unwrap().digest, a.manifest.digest);
    let names = |e: IndexEntries| e.entries.into_iter().map(|e| e.name.unwrap()).collect::<Vec<_>>();
    assert_eq!(names(store.index_entries().unwrap()), ["x:cccc", "x:bbbb"]);
    // A change goes from the edited index, not the old table.
    store.set_ref("x:dddd", &b.manifest).unwrap();
    let listed: Vec<String> = store.refs().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(listed, ["x:cccc", "x:bbbb", "x:dddd"]);
    assert_eq!(Index::from_slice(&index_file(&root)).unwrap(), store.index().unwrap());

    // A new file renamed over it (as umoci and skopeo write), with the entries swapped.
    let mut index = store.index().unwrap();
    index.manifests.reverse();
    let tmp = root.join("index.json.new");
    fs::write(&tmp, index.to_canonical_json()).unwrap();
    fs::rename(&tmp, root.join("index.json")).unwrap();
    let listed: Vec<String> = store.refs().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(listed, ["x:dddd", "x:bbbb", "x:cccc"]);
    assert_eq!(names(store.index_entries().unwrap()), listed);
    store.remove_ref("x:bbbb").unwrap();
    assert_eq!(store.index().unwrap().manifests.len(), 2);

    // A damaged or missing table is rebuilt.
    let table = root.join(".strata/index.table");
    for damage in [Some(&b"junk"[..]), None] {
        match damage {
            Some(bytes) => fs::write(&table, bytes).unwrap(),
            None => fs::remove_file(&table).unwrap(),
        }
        assert_eq!(store.resolve_ref("x:cccc").unwrap().digest, a.manifest.digest);
        assert!(matches!(store.resolve_ref("x:bbbb"), Err(Error::RefNotFound(_))));
    }
    // A damaged byte anywhere in the table (here: in the key) is caught by its checksum.
    store.set_ref("x:eeee", &a.manifest).unwrap();
    let mut bytes = fs::read(&table).unwrap();
    bytes[30] ^= 1;
    fs::write(&table, &bytes).unwrap();
    assert_eq!(store.resolve_ref("x:eeee").unwrap().digest, a.manifest.digest);
}

/// An index that does not parse fails lookups and changes with the same error as before
/// there was a table, and a change leaves it as it was.
#[test]
fn a_damaged_index_json_fails_through_the_table_too() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("l");
    let store = OciDir::create(&root).unwrap();
    let a = write_image(&store, "a");
    store.set_ref("v1", &a.manifest).unwrap();
    let bad = br#"{"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:nothex","size":1}],"schemaVersion":2}"#;
    fs::write(root.join("index.json"), bad).unwrap();
    assert!(matches!(store.resolve_ref("v1"), Err(Error::BadIndex { .. })));
    assert!(matches!(store.set_ref("v2", &a.manifest), Err(Error::BadIndex { .. })));
    assert!(matches!(store.remove_ref("v1"), Err(Error::BadIndex { .. })));
    assert_eq!(index_file(&root), bad);
}

/// Entries that name the same content several times: `remove_ref_if_shared` removes a
/// tag only while another tag keeps the content.
#[test]
fn remove_if_shared_keeps_the_last_tag() {
    let dir = tempfile::tempdir().unwrap();
    let store = OciDir::create(dir.path().join("l")).unwrap();
    let a = write_image(&store, "a");
    store.set_ref("one", &a.manifest).unwrap();
    store.set_ref("two", &a.manifest).unwrap();
    assert!(store.remove_ref_if_shared("one").unwrap().is_some());
    assert!(store.remove_ref_if_shared("two").unwrap().is_none());
    assert!(store.remove_ref_if_shared("none").unwrap().is_none());
    let left: Vec<Descriptor> = store.refs().unwrap().into_iter().map(|(_, d)| d).collect();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].annotation(ANNOTATION_REF_NAME), Some("two"));
}

/// A cache file (`Backend::cache`) gives back exactly the bytes kept; a damaged or
/// truncated one reads as none; nothing is kept in a layout strata never wrote to, nor
/// under a name that could leave `.strata/`.
#[test]
fn a_cache_reads_back_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("l");
    OciDir::create(&root).unwrap();
    // A layout another tool wrote (no `.strata/`): reading it keeps nothing.
    let _ = fs::remove_dir_all(root.join(".strata"));
    let oci = OciDir::open(&root).unwrap();
    oci.put_cache("c", b"x");
    assert!(!root.join(".strata").exists());
    assert_eq!(oci.cache("c"), None);
    write_image(&oci, "i");
    let body: Vec<u8> = (0..10_000u32).flat_map(|i| i.to_le_bytes()).collect();
    oci.put_cache("c", &body);
    assert_eq!(oci.cache("c").as_deref(), Some(&body[..]));
    for bad in ["", "../c", "a/b", "c.cache", "c\0"] {
        oci.put_cache(bad, b"y");
        assert_eq!(oci.cache(bad), None, "{bad}");
    }
    let path = root.join(".strata/c.cache");
    let good = fs::read(&path).unwrap();
    for at in [0, 5, good.len() / 2, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x40;
        fs::write(&path, &bad).unwrap();
        assert_eq!(oci.cache("c"), None, "byte {at} flipped");
    }
    for len in [0, 7, good.len() - 1] {
        fs::write(&path, &good[..len]).unwrap();
        assert_eq!(oci.cache("c"), None, "truncated to {len}");
    }
    // Kept again whole; a store without caches has none.
    oci.put_cache("c", &body);
    assert_eq!(oci.cache("c").as_deref(), Some(&body[..]));
    let mem = MemoryStore::new();
    mem.put_cache("c", &body);
    assert_eq!(mem.cache("c"), None);
}

/// `refs_to` (by digest, through the table's targets) answers as `refs_where` does.
#[test]
fn refs_to_answers_as_refs_where() {
    let dir = tempfile::tempdir().unwrap();
    let oci = OciDir::create(dir.path().join("l")).unwrap();
    let mem = MemoryStore::new();
    for s in [&oci as &dyn Backend, &mem] {
        let imgs: Vec<_> = (0..3).map(|i| write_image(s, &format!("i{i}"))).collect();
        for (k, img) in imgs.iter().enumerate() {
            for t in 0..=k {
                s.set_ref(&format!("r{k}:{t}"), &img.manifest).unwrap();
            }
        }
        let mut untagged = imgs[1].manifest.clone();
        untagged.annotations = None;
        s.update_index(&mut |i| {
            i.manifests.push(untagged.clone());
            Ok(())
        })
        .unwrap();
        let (a, b) = (&imgs[1].manifest.digest, &imgs[2].manifest.digest);
        let got = s.refs_to(&[a, b]).unwrap();
        assert_eq!(got, s.refs_where(&mut |_, d| d == a || d == b).unwrap());
        assert_eq!(got.len(), 5);
        assert!(s.refs_to(&[]).unwrap().is_empty());
        // By whole name and by part of a name, as the scan of every name answers.
        for name in ["r1:0", "r2:1", "r2:2", "nope", ""] {
            assert_eq!(s.refs_named(name).unwrap(), s.refs_where(&mut |n, _| n == name).unwrap(), "{name}");
        }
        for part in ["r", "2:", ":1", "1:1", "x", ""] {
            let scan = s.refs_where(&mut |n, _| n.contains(part)).unwrap();
            assert_eq!(s.refs_containing(part).unwrap(), scan, "{part}");
        }
    }
}

/// A table of the first format (or any that does not decode) under the current key is
/// not read: lookups answer from `index.json`, and the lookup keeps a table of the
/// current format in its place.
#[test]
fn a_table_of_an_older_format_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("l");
    let store = OciDir::create(&root).unwrap();
    let imgs: Vec<_> = (0..3).map(|i| write_image(&store, &format!("i{i}"))).collect();
    for k in 0..300 {
        store.set_ref(&format!("r{}:t{k}", k % 7), &imgs[k % 3].manifest).unwrap();
    }
    let table = root.join(".strata/index.table");
    let current = fs::read(&table).unwrap();
    let magic = b"strata index table 3\n";
    assert!(current.starts_with(magic));
    let mut old = b"strata index table 2\n".to_vec();
    old.extend_from_slice(&current[magic.len()..]);
    fs::write(&table, &old).unwrap();
    // Settled (a reader keeps only a table of an index older than a timestamp tick),
    // and this process's table of the layout forgotten (it keeps one, of the layout
    // looked at last): the lookups below read the table file.
    std::thread::sleep(std::time::Duration::from_millis(30));
    let other = OciDir::create(dir.path().join("m")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(30));
    assert!(other.refs().unwrap().is_empty());
    let again = OciDir::open(&root).unwrap();
    for k in [0, 150, 299] {
        let name = format!("r{}:t{k}", k % 7);
        assert_eq!(again.resolve_ref(&name).unwrap().digest, imgs[k % 3].manifest.digest, "{name}");
    }
    assert_eq!(again.refs_containing("r3:").unwrap().len(), 43);
    assert!(fs::read(&table).unwrap().starts_with(magic), "the table was not rebuilt");
}
