//! Integration tests of the union merge onto disk (one test binary, modules by topic).

mod hostile;
mod parallel;
mod peer;
mod random;
mod semantics;
mod util;
