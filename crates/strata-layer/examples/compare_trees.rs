//! Compare two directory trees as the peer tests do (contents, types, modes, owners, link
//! counts, symlink targets, xattrs, file mtimes; `--dir-mtimes` adds directory mtimes).
//! Prints the differences; exits 1 when there are any.
//!
//! usage: compare_trees EXPECTED ACTUAL [--dir-mtimes]

use std::path::Path;

use strata_testkit::{Compare, Tree};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [expected, actual, ..] = &args[1..] else {
        eprintln!("usage: compare_trees EXPECTED ACTUAL [--dir-mtimes]");
        std::process::exit(2);
    };
    let a = Tree::capture(Path::new(expected))?;
    let b = Tree::capture(Path::new(actual))?;
    let cmp = Compare { dir_mtime: args.iter().any(|a| a == "--dir-mtimes"), ..Compare::default() };
    let diff = a.diff(&b, &cmp);
    println!("{} vs {} entries: {} differences", a.entries.len(), b.entries.len(), diff.len());
    for d in diff.iter().take(50) {
        println!("  {d}");
    }
    if !diff.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
