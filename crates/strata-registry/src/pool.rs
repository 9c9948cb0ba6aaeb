//! A small scoped worker pool for concurrent blob transfers.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// Run `f` on every item with up to `workers` threads, returning the results in item
/// order. At the first failure `cancel` is set (transfers in flight check it and stop
/// with [`Error::Cancelled`]), no new item starts, and that first failure is returned.
pub(crate) fn run<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    cancel: &AtomicBool,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(items.len()));
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let work = || {
        loop {
            if cancel.load(Ordering::Relaxed) {
                break;
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            match f(item) {
                Ok(r) => results.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((i, r)),
                Err(e) => {
                    cancel.store(true, Ordering::Relaxed);
                    let mut first = failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    // A transfer stopped because of another's failure is not the cause.
                    if first.is_none() || matches!(*first, Some(Error::Cancelled)) {
                        *first = Some(e);
                    }
                    break;
                }
            }
        }
    };
    let workers = workers.clamp(1, items.len().max(1));
    std::thread::scope(|s| {
        for n in 1..workers {
            // A thread that cannot be had is one worker fewer.
            let _ = std::thread::Builder::new().name(format!("strata-registry-{n}")).spawn_scoped(s, work);
        }
        // The calling thread works too (and alone if no thread could be had).
        work();
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        return Err(e);
    }
    let mut results = results.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    results.sort_by_key(|(i, _)| *i);
    Ok(results.into_iter().map(|(_, r)| r).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_everything_in_order_and_stops_at_the_first_error() {
        let cancel = AtomicBool::new(false);
        let items: Vec<u32> = (0..50).collect();
        let out = run(&items, 4, &cancel, |i| Ok(i * 2)).unwrap();
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        let err = run(&items, 3, &cancel, |i| {
            if *i == 7 { Err(Error::InvalidResponse { url: "u".into(), reason: "seven".into() }) } else { Ok(*i) }
        });
        assert!(matches!(err, Err(Error::InvalidResponse { .. })));
        assert!(cancel.load(Ordering::Relaxed));
        let none: Vec<u32> = Vec::new();
        assert!(run(&none, 3, &AtomicBool::new(false), |i| Ok(*i)).unwrap().is_empty());
    }
}
