//! Progress bars: drawn on stderr when it is a terminal (a pty from `script`), never on
//! a pipe, never with `--quiet`.

use std::process::Command;

use strata_testkit::require_tool;

use crate::common::{Env, run, tomcat_rootfs};

/// Run `strata --store STORE ARGS` with stdout and stderr on a pty; returns what the
/// terminal showed.
fn on_tty(env: &Env, args: &[&str]) -> String {
    let mut line = format!("{} --store {}", env!("CARGO_BIN_EXE_strata"), env.store().display());
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    let mut c = Command::new("script");
    c.args(["-qec", &line, "/dev/null"]).current_dir(env.dir.path());
    let r = run(c);
    assert_eq!(r.code, 0, "{line}: {}", r.stdout);
    r.stdout
}

#[test]
fn bars_on_a_terminal_only() {
    if !require_tool("script") {
        return;
    }
    let env = Env::new();
    tomcat_rootfs(&env.path("rootfs"));
    env.ok(&["import", "rootfs", "tomcat:latest"]);
    let shown = on_tty(&env, &["unpack", "tomcat:latest", "c"]);
    assert!(shown.contains("unpacking") && shown.contains("/1 layers"), "{shown:?}");
    assert!(shown.contains("Unpacked tomcat:latest"), "{shown:?}");
    let shown = on_tty(&env, &["save", "tomcat:latest", "--format", "oci-archive", "-o", "t.tar"]);
    assert!(shown.contains("saving"), "{shown:?}");
    let shown = on_tty(&env, &["load", "-i", "t.tar"]);
    assert!(shown.contains("loading") && shown.contains("Loaded image: tomcat:latest"), "{shown:?}");
    // --quiet: no bar on the terminal either.
    for args in [&["-q", "unpack", "tomcat:latest", "q"][..], &["-q", "load", "-i", "t.tar"]] {
        let shown = on_tty(&env, args);
        assert!(!shown.contains("unpacking") && !shown.contains("loading") && !shown.contains('\x1b'), "{shown:?}");
    }
    // A pipe: nothing on stderr.
    let r = env.run(&["load", "-i", "t.tar"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
}
