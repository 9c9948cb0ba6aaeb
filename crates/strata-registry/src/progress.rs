//! Progress events of a pull or push, for per-blob progress bars: the one progress
//! trait of strata ([`strata_spec::progress`]), whose `Blob*`, `ManifestDone` and
//! `Retrying` events a transfer reports.

pub use strata_spec::progress::{Event, NoProgress, Progress, SkipReason};
