//! The stage graph: which stages need which (a `FROM` of a stage, `COPY --from`,
//! `RUN --mount=...,from=`), and the stages built in that order, independent ones at the
//! same time on threads of their own, as BuildKit solves its graph. Events of every
//! stage come back to the caller's thread, in the order they happen.

use std::collections::BTreeSet;
use std::sync::mpsc;

use strata_image::Image;
use strata_spec::Digest;

use crate::build::{Builder, Event, lock};
use crate::dockerfile::{Dockerfile, Instruction, Mount};
use crate::error::Result;

/// For each stage up to `last`, the earlier stages it needs. A reference that only a
/// variable names (`COPY --from=$STAGE`) needs every earlier stage.
pub(crate) fn dependencies(df: &Dockerfile, last: usize) -> Vec<BTreeSet<usize>> {
    let mut out = Vec::new();
    for (i, stage) in df.stages[..=last].iter().enumerate() {
        let mut deps = BTreeSet::new();
        let mut add = |name: &str| {
            if name.contains('$') {
                deps.extend(0..i);
            } else if let Some(j) = df.stage_index(name).filter(|j| *j < i) {
                deps.insert(j);
            }
        };
        if let Instruction::From { image, .. } = &stage.from.instruction {
            // Only a stage name counts here, not an index (`FROM 0` is an image).
            let lower = image.to_ascii_lowercase();
            if image.contains('$') {
                add(image);
            } else if let Some(j) = df.stages[..i].iter().position(|s| s.name.as_deref() == Some(lower.as_str())) {
                add(&j.to_string());
            }
        }
        for s in &stage.instructions {
            match &s.instruction {
                Instruction::Copy(c) => {
                    if let Some(f) = &c.from {
                        add(f);
                    }
                }
                Instruction::Run(r) => {
                    for m in &r.mounts {
                        match Mount::parse(m) {
                            Ok(m) => {
                                if let Some(f) = &m.from {
                                    add(f);
                                }
                            }
                            // Variables in the spec: it may name any stage.
                            Err(_) => add("$"),
                        }
                    }
                }
                _ => {}
            }
        }
        out.push(deps);
    }
    out
}

/// An event, owned, to cross from a stage's thread to the caller's.
enum Owned {
    ContextHashed(u64),
    Step { index: usize, total: usize, text: String },
    Triggers(usize),
    UsingCache,
    Running(String),
    Output(Vec<u8>),
    StepDone(Option<Digest>),
    Warning(String),
}

impl Owned {
    fn of(e: &Event<'_>) -> Option<Owned> {
        Some(match e {
            Event::ContextHashed(n) => Owned::ContextHashed(*n),
            Event::Step { index, total, text } => {
                Owned::Step { index: *index, total: *total, text: (*text).to_owned() }
            }
            Event::Triggers(n) => Owned::Triggers(*n),
            Event::UsingCache => Owned::UsingCache,
            Event::Running { command } => Owned::Running((*command).to_owned()),
            Event::Output(b) => Owned::Output(b.to_vec()),
            Event::StepDone { id } => Owned::StepDone(id.cloned()),
            Event::Warning(w) => Owned::Warning((*w).to_owned()),
            Event::Stage { .. } => return None,
        })
    }

    fn send(&self, observe: &mut dyn FnMut(&Event<'_>)) {
        match self {
            Owned::ContextHashed(n) => observe(&Event::ContextHashed(*n)),
            Owned::Step { index, total, text } => observe(&Event::Step { index: *index, total: *total, text }),
            Owned::Triggers(n) => observe(&Event::Triggers(*n)),
            Owned::UsingCache => observe(&Event::UsingCache),
            Owned::Running(c) => observe(&Event::Running { command: c }),
            Owned::Output(b) => observe(&Event::Output(b)),
            Owned::StepDone(id) => observe(&Event::StepDone { id: id.as_ref() }),
            Owned::Warning(w) => observe(&Event::Warning(w)),
        }
    }
}

enum Message {
    Event(usize, Owned),
    Done(usize, Box<Result<Option<Image>>>),
}

/// Build stages `0..=last`, each once every stage it needs is built; returns the last
/// one's image. With [`BuildOptions::jobs`](crate::BuildOptions) 1, or one stage, they
/// build one after the other on this thread.
pub(crate) fn build_stages(b: &Builder<'_>, last: usize, observe: &mut dyn FnMut(&Event<'_>)) -> Result<Option<Image>> {
    let df = b.df;
    let deps = dependencies(df, last);
    let jobs = match b.opts.jobs {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n,
    };
    let independent = deps.iter().enumerate().any(|(i, d)| d.len() < i);
    if jobs <= 1 || !independent {
        let mut result = None;
        for (i, stage) in df.stages[..=last].iter().enumerate() {
            let img = b.stage(i, stage, observe)?;
            lock(&b.stages)[i] = Some(img.clone());
            result = img;
        }
        return Ok(result);
    }
    let names: Vec<String> =
        df.stages.iter().enumerate().map(|(i, s)| s.name.clone().unwrap_or_else(|| i.to_string())).collect();
    let count = last + 1;
    let mut started = vec![false; count];
    let mut done = vec![false; count];
    let mut running = 0;
    let mut failed = None;
    let mut shown: Option<usize> = None;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Message>();
        loop {
            // Start what can start: stages in order, each once what it needs is done.
            if failed.is_none() {
                for i in 0..count {
                    if running >= jobs {
                        break;
                    }
                    if started[i] || !deps[i].iter().all(|d| done[*d]) {
                        continue;
                    }
                    started[i] = true;
                    running += 1;
                    let tx = tx.clone();
                    let stage = &df.stages[i];
                    scope.spawn(move || {
                        let events = tx.clone();
                        let mut forward = |e: &Event<'_>| {
                            if let Some(o) = Owned::of(e) {
                                let _ = events.send(Message::Event(i, o));
                            }
                        };
                        let r = b.stage(i, stage, &mut forward);
                        if let Ok(img) = &r {
                            lock(&b.stages)[i] = Some(img.clone());
                        }
                        let _ = tx.send(Message::Done(i, Box::new(r)));
                    });
                }
            }
            if running == 0 {
                break;
            }
            match rx.recv() {
                Ok(Message::Event(i, e)) => {
                    if shown != Some(i) {
                        observe(&Event::Stage { name: &names[i] });
                        shown = Some(i);
                    }
                    e.send(observe);
                }
                Ok(Message::Done(i, r)) => {
                    running -= 1;
                    done[i] = true;
                    if let Err(e) = *r
                        && failed.is_none()
                    {
                        failed = Some(e);
                    }
                }
                Err(_) => break,
            }
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(lock(&b.stages).get(last).cloned().flatten().flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graph_follows_from_copy_from_and_mounts() {
        let df = Dockerfile::parse(
            "Dockerfile",
            "FROM a AS one\nFROM b AS two\nFROM one AS three\nCOPY --from=two /x /x\n\
             FROM c\nRUN --mount=type=bind,from=one,target=/m true\nCOPY --from=$X /y /y\n\
             FROM d\nCOPY --from=0 /z /z\n",
        )
        .unwrap();
        let deps = dependencies(&df, 4);
        let want: Vec<BTreeSet<usize>> = vec![
            BTreeSet::new(),
            BTreeSet::new(),
            [0, 1].into(),
            [0, 1, 2].into(), // a variable may name any earlier stage
            [0].into(),
        ];
        assert_eq!(deps, want);
    }
}
