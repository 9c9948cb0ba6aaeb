//! The container monitor as a program of its own: `strata-monitor STORE ID [--attached]
//! [--console-socket PATH]` (what `strata container-monitor` runs). See
//! `strata_image::containers`.

fn main() {
    std::process::exit(strata_image::containers::monitor_main(std::env::args_os().skip(1)));
}
