//! The stage graph: independent stages build at the same time (their `RUN`s overlap),
//! stages that need another wait for it, the events say which stage each line is
//! from, and the image is the same as a serial build's.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use strata_build::{BuildOptions, RunSpec, Runner};
use strata_image::Store;

use crate::common::*;

/// Counts the commands running at once; each waits (a little) for company.
#[derive(Default)]
struct Overlap {
    state: Mutex<(usize, usize)>,
    changed: Condvar,
}

impl Runner for Overlap {
    fn run(&self, spec: &RunSpec<'_>, out: &mut dyn std::io::Write) -> strata_build::Result<i32> {
        {
            let mut s = self.state.lock().unwrap();
            s.0 += 1;
            s.1 = s.1.max(s.0);
            self.changed.notify_all();
            // Up to 2 s for another command to start.
            let _ = self.changed.wait_timeout_while(s, Duration::from_secs(2), |s| s.0 < 2).unwrap();
        }
        let last = spec.args.last().cloned().unwrap_or_default();
        std::fs::write(spec.rootfs.join("ran.txt"), &last).unwrap();
        out.write_all(format!("ran {last}\n").as_bytes()).unwrap();
        let mut s = self.state.lock().unwrap();
        s.0 -= 1;
        self.changed.notify_all();
        Ok(0)
    }
}

const DF: &str = "FROM base:1 AS left\nRUN work-left\nFROM base:1 AS right\nRUN work-right\n\
FROM base:1\nCOPY --from=left /ran.txt /left.txt\nCOPY --from=right /ran.txt /right.txt\n";

#[test]
fn independent_stages_run_at_the_same_time() {
    let store = Store::in_memory();
    base(&store, "base:1");
    let ctx = context(DF, &[]);

    let parallel = Arc::new(Overlap::default());
    let opts = BuildOptions::default().source_date_epoch(1_700_000_000).no_cache(true);
    let (built, log) = build_logged(&store, ctx.path(), &opts.clone().runner(parallel.clone()).jobs(2));
    let built = built.unwrap();
    assert_eq!(parallel.state.lock().unwrap().1, 2, "the two RUNs overlapped: {log:#?}");
    // Each stage's lines follow a line naming it.
    let mut current = String::new();
    let mut steps_of = std::collections::BTreeMap::<String, Vec<String>>::new();
    for l in &log {
        if let Some(name) = l.strip_prefix("Stage { name: \"").and_then(|r| r.strip_suffix("\" }")) {
            current = name.to_owned();
        } else if l.starts_with("Step ") {
            steps_of.entry(current.clone()).or_default().push(l.clone());
        }
    }
    assert_eq!(steps_of["left"], ["Step 1/7 : FROM base:1 AS left", "Step 2/7 : RUN work-left"], "{log:#?}");
    assert_eq!(steps_of["right"], ["Step 3/7 : FROM base:1 AS right", "Step 4/7 : RUN work-right"]);
    assert_eq!(steps_of["2"].len(), 3, "the last stage, after both: {log:#?}");

    // One at a time: no overlap, and the same image.
    let serial = Arc::new(Overlap::default());
    let one = build_logged(&store, ctx.path(), &opts.clone().runner(serial.clone()).jobs(1)).0.unwrap();
    assert_eq!(serial.state.lock().unwrap().1, 1);
    assert_eq!(one.image.id(), built.image.id(), "parallel and serial builds make the same image");
}
