//! Progress bars on stderr, only when stderr is a terminal and `--quiet` is not given:
//! nothing at all on a pipe.

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use strata_registry::{Event, SkipReason};

use crate::ctx::Ctx;

/// How often spinners move.
const TICK: Duration = Duration::from_millis(120);

/// Makes bars, or hidden ones when progress is off.
#[derive(Clone, Copy)]
pub struct Bars {
    enabled: bool,
}

impl Bars {
    pub fn new(ctx: &Ctx) -> Bars {
        Bars { enabled: !ctx.quiet && std::io::stderr().is_terminal() }
    }

    /// A byte bar (`total` known) or a byte spinner (unknown): bytes done, rate, and a
    /// message (layers done, where it is known).
    pub fn bytes(&self, prefix: &str, total: Option<u64>) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        let (bar, template) = match total {
            Some(t) => (
                ProgressBar::new(t),
                "{prefix:.bold} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg} ({elapsed})",
            ),
            None => (
                ProgressBar::new_spinner(),
                "{prefix:.bold} {spinner} {bytes} {binary_bytes_per_sec} {msg} ({elapsed})",
            ),
        };
        bar.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(prefix.to_owned());
        bar.enable_steady_tick(TICK);
        bar
    }

    /// A spinner with the elapsed time, where no byte count is known.
    pub fn spinner(&self, msg: &str) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner();
        bar.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message(msg.to_owned());
        bar.enable_steady_tick(TICK);
        bar
    }

    /// Per-blob bars for a pull or push.
    pub fn transfer(&self) -> TransferBars {
        let multi = if self.enabled {
            MultiProgress::with_draw_target(ProgressDrawTarget::stderr())
        } else {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        };
        TransferBars { enabled: self.enabled, multi, bars: Mutex::new(HashMap::new()) }
    }
}

/// One bar per blob of a pull or push, fed by the registry's progress events.
pub struct TransferBars {
    enabled: bool,
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl TransferBars {
    pub fn event(&self, e: &Event<'_>) {
        if !self.enabled {
            return;
        }
        let Ok(mut bars) = self.bars.lock() else { return };
        match e {
            Event::BlobStarted { descriptor } => {
                let bar = self.multi.add(ProgressBar::new(descriptor.size));
                if let Ok(style) = ProgressStyle::with_template(
                    "{prefix} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
                ) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_prefix(descriptor.digest.short().to_owned());
                bars.insert(descriptor.digest.to_string(), bar);
            }
            Event::BlobProgress { descriptor, bytes } => {
                if let Some(b) = bars.get(descriptor.digest.as_str()) {
                    b.set_position(*bytes);
                }
            }
            Event::BlobDone { descriptor } => {
                if let Some(b) = bars.get(descriptor.digest.as_str()) {
                    b.set_position(descriptor.size);
                    b.finish_with_message("done");
                }
            }
            Event::BlobSkipped { descriptor, reason } => {
                let why = match reason {
                    SkipReason::Present => "already in the store",
                    SkipReason::Exists => "already in the registry",
                    SkipReason::Mounted => "mounted",
                    SkipReason::Foreign => "foreign layer, skipped",
                };
                let _ = self.multi.println(format!("{} {why}", descriptor.digest.short()));
            }
            Event::ManifestDone { descriptor } => {
                let _ = self.multi.println(format!("{} manifest {}", descriptor.digest.short(), descriptor.media_type));
            }
            Event::Retrying { attempt, delay, error, .. } => {
                let _ = self.multi.println(format!("retry {attempt} in {delay:?}: {error}"));
            }
            _ => {}
        }
    }

    /// Remove the bars from the terminal.
    pub fn clear(&self) {
        let _ = self.multi.clear();
    }
}

/// A reader that moves a bar by the bytes read.
pub struct CountingReader<R> {
    pub inner: R,
    pub bar: ProgressBar,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// A writer that moves a bar by the bytes written.
pub struct CountingWriter<W> {
    pub inner: W,
    pub bar: ProgressBar,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Seeking (a saved archive patches tar headers in place) counts nothing: the bar shows
/// bytes written, and a patched header is rewritten, not added.
impl<W: Write + std::io::Seek> std::io::Seek for CountingWriter<W> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}
