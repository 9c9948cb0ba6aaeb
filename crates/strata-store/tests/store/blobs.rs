//! Blob reads and writes, on both stores.

use std::io::{BufRead, Read, Seek, SeekFrom, Write};

use strata_store::spec::{Algorithm, Descriptor, Digest, MediaType};
use strata_store::{Backend, BlobStore, Error, Expected, MAX_DOCUMENT_SIZE, MemoryStore, OciDir};

use crate::common::{ErrCheck, stores};

#[test]
fn write_then_read_gives_the_bytes_under_their_digest() {
    for (name, store, _dir) in stores() {
        for data in [&b""[..], b"x", &vec![0xa5u8; 1 << 20][..], &(0..700_000u32).map(|i| i as u8).collect::<Vec<_>>()]
        {
            let mut w = store.begin_write().unwrap();
            // Uneven chunks exercise the writer's buffering.
            for chunk in data.chunks(7919) {
                w.write_all(chunk).unwrap();
            }
            assert_eq!(w.bytes_written(), data.len() as u64);
            let info = w.commit(Expected::none()).unwrap();
            assert_eq!(info.digest, Digest::sha256_of(data), "{name}");
            assert_eq!(info.size, data.len() as u64);
            assert!(!info.existed);
            assert_eq!(store.stat(&info.digest).unwrap(), Some(data.len() as u64));
            assert_eq!(store.read_blob(&info.digest, u64::MAX).unwrap(), data, "{name}");
            // Read in small pieces through BufRead too.
            let mut r = store.open(&info.digest).unwrap();
            let mut got = Vec::new();
            loop {
                let buf = r.fill_buf().unwrap();
                if buf.is_empty() {
                    break;
                }
                let n = buf.len().min(513);
                got.extend_from_slice(&buf[..n]);
                r.consume(n);
            }
            assert!(r.is_verified());
            assert_eq!(got, data);
        }
        assert_eq!(store.list().unwrap().len(), 4, "{name}");
    }
}

#[test]
fn commit_checks_expectations_and_leaves_nothing_on_mismatch() {
    let data = b"some blob bytes";
    let right = Digest::sha256_of(data);
    let wrong = Digest::sha256_of(b"other");
    let cases: Vec<(&str, Expected, ErrCheck)> = vec![
        ("right digest and size", Expected { digest: Some(right.clone()), size: Some(15) }, |_| false),
        ("wrong digest", Expected::digest(wrong.clone()), |e| matches!(e, Error::DigestMismatch { .. })),
        ("wrong size", Expected { digest: None, size: Some(16) }, |e| matches!(e, Error::SizeMismatch { .. })),
        ("right digest, wrong size", Expected { digest: Some(right.clone()), size: Some(14) }, |e| {
            matches!(e, Error::SizeMismatch { expected: 14, actual: 15, .. })
        }),
        ("sha512 expected from a sha256 writer", Expected::digest(Digest::of(Algorithm::Sha512, data)), |e| {
            matches!(e, Error::AlgorithmMismatch { .. })
        }),
    ];
    for (name, store, dir) in stores() {
        for (case, expected, is_expected_error) in &cases {
            let mut w = store.begin_write().unwrap();
            w.write_all(data).unwrap();
            match w.commit(expected.clone()) {
                Ok(info) => {
                    assert_eq!(*case, "right digest and size", "{name}: {case} should have failed");
                    assert_eq!(info.digest, right);
                    store.delete(&right).unwrap();
                }
                Err(e) => {
                    assert!(is_expected_error(&e), "{name}: {case}: unexpected error {e}");
                    assert!(store.list().unwrap().is_empty(), "{name}: {case} left a blob");
                }
            }
        }
        if let Some(dir) = dir {
            let tmp = dir.path().join("layout/.strata/tmp");
            assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "{name}: temp files left behind");
        }
    }
}

#[test]
fn sha512_blobs_live_beside_sha256() {
    for (name, store, _dir) in stores() {
        let mut w = store.begin_write_with(Algorithm::Sha512).unwrap();
        w.write_all(b"abc").unwrap();
        let info = w.commit(Expected::digest(Digest::of(Algorithm::Sha512, b"abc"))).unwrap();
        assert!(info.digest.as_str().starts_with("sha512:ddaf35a1"), "{name}");
        assert_eq!(store.read_blob(&info.digest, 100).unwrap(), b"abc");
        assert_eq!(store.list().unwrap(), vec![info.digest], "{name}");
    }
}

#[test]
fn writing_an_existing_blob_is_cheap_and_keeps_it() {
    for (name, store, _dir) in stores() {
        let first = store.put_blob(b"same").unwrap();
        let second = store.put_blob(b"same").unwrap();
        assert!(!first.existed && second.existed, "{name}");
        assert_eq!(first.digest, second.digest);
        assert_eq!(store.list().unwrap().len(), 1);
    }
}

#[test]
fn an_existing_blob_of_the_wrong_size_is_replaced_by_a_verified_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = OciDir::create(dir.path().join("l")).unwrap();
    let digest = Digest::sha256_of(b"full content");
    std::fs::write(store.blob_path(&digest), b"full").unwrap(); // a truncated copy
    let info = store.put_blob(b"full content").unwrap();
    assert!(!info.existed);
    assert_eq!(std::fs::read(store.blob_path(&digest)).unwrap(), b"full content");
}

#[test]
fn dropping_an_uncommitted_writer_removes_its_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = OciDir::create(dir.path().join("l")).unwrap();
    let tmp = dir.path().join("l/.strata/tmp");
    let mut w = store.begin_write().unwrap();
    w.write_all(&vec![1u8; 1 << 20]).unwrap();
    w.flush().unwrap();
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 1);
    drop(w);
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    assert!(store.list().unwrap().is_empty());
}

/// Read everything, returning the error a reader gives instead of EOF.
fn read_err(store: &dyn BlobStore, digest: &Digest, chunk: usize) -> Error {
    let mut r = store.open(digest).unwrap();
    let mut buf = vec![0u8; chunk];
    loop {
        match r.read(&mut buf) {
            Ok(0) => panic!("clean EOF from a bad blob {digest}"),
            Ok(_) => {}
            Err(e) => {
                // Every later read fails the same way.
                assert!(r.read(&mut buf).is_err());
                return Error::from_io(e, "read", "test");
            }
        }
    }
}

#[test]
fn readers_never_end_cleanly_on_bad_bytes() {
    let good = vec![7u8; 300_000];
    let digest = Digest::sha256_of(&good);
    let mut flipped = good.clone();
    flipped[150_000] ^= 1;
    let mut longer = good.clone();
    longer.push(0);
    let cases: Vec<(&str, Vec<u8>, ErrCheck)> = vec![
        ("one bit flipped", flipped, |e| matches!(e, Error::DigestMismatch { .. })),
        ("truncated", good[..299_999].to_vec(), |e| matches!(e, Error::DigestMismatch { .. })),
        ("one byte longer", longer, |e| matches!(e, Error::DigestMismatch { .. })),
    ];
    for (case, bytes, check) in cases {
        // Memory store.
        let mem = MemoryStore::new();
        mem.insert_unverified(digest.clone(), bytes.clone());
        // OCI layout: the file under blobs/ holds the bad bytes.
        let dir = tempfile::tempdir().unwrap();
        let oci = OciDir::create(dir.path().join("l")).unwrap();
        std::fs::write(oci.blob_path(&digest), &bytes).unwrap();
        for store in [&mem as &dyn BlobStore, &oci] {
            for chunk in [1, 512, 1 << 20] {
                let e = read_err(store, &digest, chunk);
                assert!(check(&e), "{case}, chunk {chunk}: {e}");
            }
            // Against a descriptor of the right size, a wrong-sized blob fails before reading.
            let desc = Descriptor::new(MediaType::OciLayer, digest.clone(), good.len() as u64);
            let e = store.read_descriptor(&desc, u64::MAX).unwrap_err();
            if bytes.len() == good.len() {
                assert!(matches!(e, Error::DigestMismatch { .. }), "{case}: {e}");
            } else {
                assert!(matches!(e, Error::SizeMismatch { .. }), "{case}: {e}");
            }
        }
    }
}

#[test]
fn without_digest_check_still_enforces_the_size() {
    let good = vec![7u8; 300_000];
    let digest = Digest::sha256_of(&good);
    let desc = Descriptor::new(MediaType::OciLayer, digest.clone(), good.len() as u64);
    let mut flipped = good.clone();
    flipped[150_000] ^= 1;
    let mut longer = good.clone();
    longer.push(0);
    // (bytes in the store, whether reading them without the digest check succeeds)
    let cases: Vec<(&str, Vec<u8>, Option<ErrCheck>)> = vec![
        ("good", good.clone(), None),
        // The point of the option: the caller checks the content another way.
        ("one bit flipped", flipped, None),
        ("truncated", good[..299_999].to_vec(), Some(|e| matches!(e, Error::SizeMismatch { .. }))),
        ("one byte longer", longer, Some(|e| matches!(e, Error::SizeMismatch { .. }))),
    ];
    for (case, bytes, check) in cases {
        let mem = MemoryStore::new();
        mem.insert_unverified(digest.clone(), bytes.clone());
        let dir = tempfile::tempdir().unwrap();
        let oci = OciDir::create(dir.path().join("l")).unwrap();
        std::fs::write(oci.blob_path(&digest), &bytes).unwrap();
        for store in [&mem as &dyn BlobStore, &oci] {
            // A file of the wrong size fails at open (stat), a memory blob while reading.
            let mut out = Vec::new();
            let got = store.open_descriptor(&desc).and_then(|r| {
                let mut r = r.without_digest_check();
                let n = r.read_to_end(&mut out).map_err(|e| Error::from_io(e, "read", "test"))?;
                assert!(!r.is_verified(), "{case}: nothing was verified");
                Ok(n)
            });
            match (check, got) {
                (None, Ok(n)) => {
                    assert_eq!(n, bytes.len(), "{case}");
                    assert_eq!(out, bytes, "{case}");
                }
                (Some(check), Err(e)) => assert!(check(&e), "{case}: {e}"),
                (check, got) => panic!("{case}: expected failure {}, got {got:?}", check.is_some()),
            }
        }
    }
}

#[test]
fn a_reader_without_the_digest_check_seeks_forward() {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    for (name, store, _dir) in stores() {
        let info = store.put_blob(&data).unwrap();
        // With the digest check on, skipped bytes could not be hashed: no seeking.
        let mut r = store.open(&info.digest).unwrap();
        let e = r.seek(SeekFrom::Current(10)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::Unsupported, "{name}");
        assert_eq!(r.stream_position().unwrap(), 0, "{name}: asking where it is works");

        let mut r = store.open(&info.digest).unwrap().without_digest_check();
        let mut b = [0u8; 4];
        r.read_exact(&mut b).unwrap();
        // Within the buffer, past it, to an absolute position, and where it is.
        for (to, at) in
            [(SeekFrom::Current(6), 10u64), (SeekFrom::Current(200_000), 200_014), (SeekFrom::Start(250_000), 250_000)]
        {
            assert_eq!(r.seek(to).unwrap(), at, "{name}");
            r.read_exact(&mut b).unwrap();
            assert_eq!(b[..], data[at as usize..at as usize + 4], "{name} at {at}");
        }
        assert_eq!(r.stream_position().unwrap(), 250_004);
        // Backwards and past the end: refused, and nothing moved.
        assert_eq!(r.seek(SeekFrom::Start(5)).unwrap_err().kind(), std::io::ErrorKind::Unsupported, "{name}");
        assert_eq!(r.seek(SeekFrom::End(1)).unwrap_err().kind(), std::io::ErrorKind::InvalidInput, "{name}");
        assert_eq!(r.seek(SeekFrom::End(-6)).unwrap(), 299_994);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, data[299_994..], "{name}");
    }
}

#[test]
fn small_reads_are_capped() {
    for (name, store, _dir) in stores() {
        let info = store.put_blob(&[0u8; 1000]).unwrap();
        let e = store.read_blob(&info.digest, 999).unwrap_err();
        assert!(matches!(e, Error::TooLarge { size: 1000, limit: 999, .. }), "{name}: {e}");
        let desc = Descriptor::new(MediaType::OciConfig, info.digest.clone(), MAX_DOCUMENT_SIZE + 1);
        let e = store.read_descriptor(&desc, MAX_DOCUMENT_SIZE).unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{name}: {e}");
    }
}

#[test]
fn missing_blobs_are_not_found() {
    for (name, store, _dir) in stores() {
        let d = Digest::sha256_of(b"absent");
        assert_eq!(store.stat(&d).unwrap(), None);
        assert!(matches!(store.open(&d), Err(Error::NotFound(x)) if x == d), "{name}");
        assert!(!store.delete(&d).unwrap());
    }
}

#[test]
fn junk_under_blobs_is_not_listed_or_followed() {
    let dir = tempfile::tempdir().unwrap();
    let store = OciDir::create(dir.path().join("l")).unwrap();
    let real = store.put_blob(b"real").unwrap();
    let blobs = dir.path().join("l/blobs");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, b"outside").unwrap();
    let linked = Digest::sha256_of(b"outside");
    std::os::unix::fs::symlink(&secret, store.blob_path(&linked)).unwrap();
    std::fs::write(blobs.join("sha256/not-a-digest"), b"x").unwrap();
    std::fs::write(blobs.join("sha256").join("A".repeat(64)), b"x").unwrap();
    std::fs::create_dir(blobs.join("md5")).unwrap();
    std::fs::write(blobs.join("README"), b"x").unwrap();
    assert_eq!(store.list().unwrap(), vec![real.digest]);
    let e = store.open(&linked).unwrap_err();
    assert!(matches!(e, Error::InvalidLayout { .. }), "{e}");
    assert!(store.stat(&linked).is_err());
    let report = store.fsck().unwrap();
    assert_eq!(report.problems.len(), 5, "{report}");
}

#[test]
fn a_fifo_in_blobs_does_not_hang_a_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = OciDir::create(dir.path().join("l")).unwrap();
    let d = Digest::sha256_of(b"fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        store.blob_path(&d),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    assert!(matches!(store.open(&d), Err(Error::InvalidLayout { .. })));
}

#[test]
fn usable_as_trait_objects() {
    let dir = tempfile::tempdir().unwrap();
    let stores: Vec<std::sync::Arc<dyn Backend>> =
        vec![std::sync::Arc::new(MemoryStore::new()), std::sync::Arc::new(OciDir::create(dir.path()).unwrap())];
    for s in stores {
        let blobs: &dyn BlobStore = &*s;
        let info = blobs.put_blob(b"dyn").unwrap();
        assert!(s.contains(&info.digest).unwrap());
        // Writers are Send: a writer can move to another thread.
        let mut w = s.begin_write().unwrap();
        let w2 = std::thread::spawn(move || {
            w.write_all(b"threaded").unwrap();
            w
        })
        .join()
        .unwrap();
        assert_eq!(w2.commit(Expected::none()).unwrap().digest, Digest::sha256_of(b"threaded"));
    }
}

#[test]
fn large_blobs_written_on_a_second_thread_are_exact() {
    // Past 16 MiB the file writes move to a writer thread: the bytes, the digest, the
    // failure cases and the clean-up on drop must be the same as on the direct path.
    let dir = tempfile::tempdir().unwrap();
    let store = OciDir::create(dir.path().join("l")).unwrap();
    let tmp = dir.path().join("l/.strata/tmp");
    let data: Vec<u8> = (0..40u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let digest = Digest::sha256_of(&data);

    // Odd chunk sizes straddle the pipeline's buffers.
    let mut w = store.begin_write().unwrap();
    for chunk in data.chunks(3 << 20 | 17) {
        w.write_all(chunk).unwrap();
    }
    let info = w.commit(Expected { digest: Some(digest.clone()), size: Some(data.len() as u64) }).unwrap();
    assert_eq!(info.digest, digest);
    assert_eq!(std::fs::read(store.blob_path(&digest)).unwrap(), data);
    store.delete(&digest).unwrap();

    // A mismatch after pipelining leaves no blob and no temp file.
    let mut w = store.begin_write().unwrap();
    w.write_all(&data).unwrap();
    let e = w.commit(Expected::digest(Digest::sha256_of(b"x"))).unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }));
    assert!(store.list().unwrap().is_empty());
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);

    // Dropped mid-way: the temp file is gone when drop returns.
    let mut w = store.begin_write().unwrap();
    w.write_all(&data[..30 << 20]).unwrap();
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 1);
    drop(w);
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}
