//! Progress of the image model's long operations: the one progress trait of strata
//! ([`strata_spec::progress`]), re-exported here with its shared handle.

pub use strata_spec::progress::{Event, NoProgress, Progress, ProgressHook, ProgressReader, SkipReason};

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn unpack_reports_every_layer_to_its_end() {
        use crate::{CommitOptions, LayerInput, Store, UnpackOptions};
        let work = tempfile::tempdir().unwrap();
        let store = Store::in_memory();
        let root = work.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/a"), vec![1u8; 300_000]).unwrap();
        let base = store.import(LayerInput::Dir(&root), &CommitOptions::default()).unwrap();
        std::fs::write(root.join("etc/b"), b"b").unwrap();
        let img = base.append(LayerInput::Dir(&root), &CommitOptions::default()).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let hook = ProgressHook::new(move |e: &Event<'_>| {
            if let Event::LayerDone { index, count, descriptor: Some(d), bytes } = e {
                s.lock().unwrap().push((*index, *count, *bytes, d.size, true));
            }
        });
        img.unpack_with(work.path().join("c"), &UnpackOptions::default().progress(hook)).unwrap();
        let seen = seen.lock().unwrap();
        // Layers may finish out of order (the last read of a blob can come late).
        let mut done: Vec<_> = seen.iter().filter(|s| s.4).collect();
        done.sort();
        assert_eq!(done.len(), 2, "{seen:?}");
        for (i, d) in done.iter().enumerate() {
            assert_eq!((d.0, d.1), (i, 2));
            assert_eq!(d.2, d.3, "a finished layer read its whole blob");
            assert_eq!(d.3, img.layers()[i].size);
        }
    }
}
