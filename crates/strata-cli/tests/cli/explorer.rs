//! `strata dive`'s explorer, driven through a real terminal: tmux runs the binary in a
//! pseudo-terminal of 120x40, `send-keys` types, `capture-pane` reads the screen.

use std::process::Command;

use strata_testkit::require_tool;

use crate::common::{Entry, Env, eventually, write_tar};

/// A tmux server of its own (its own socket, no user config), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Start `line` (a shell command) in a detached session of 120x40.
    fn start(env: &Env, line: &str) -> Tmux {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let t = Tmux { socket: format!("strata-explorer-{}-{n}", std::process::id()) };
        // The shell stays after strata exits, to show how it ended. `CI` is unset: CI
        // services set CI=true, which (as in dive) asks for the non-interactive report.
        let cmd = format!("unset CI; cd '{}' && {line}; echo EXITED $?; sleep 600", env.dir.path().display());
        t.tmux(&["-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "40", "-s", "dive", &cmd]);
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().unwrap();
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "dive"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "dive"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Wait until the screen passes `check`; panic with the screen when it never does.
    fn wait(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            eventually(60, what, || {
                last = self.screen();
                check(&last)
            })
        }));
        assert!(found.is_ok(), "waiting for {what}; the screen:\n{last}");
        last
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-L").arg(&self.socket).arg("kill-server").output();
    }
}

/// The line of the screen that has `name` in the file tree pane (the right half).
fn tree_line<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.contains(name) && (l.contains("├──") || l.contains("└──")))
}

/// The mark of `name` in the tree pane: the character after the pane's left border,
/// whose column is that of the second `┌` on the top line.
fn mark(screen: &str, name: &str) -> Option<char> {
    let top = screen.lines().next()?;
    let col = top.chars().enumerate().filter(|(_, c)| *c == '┌').nth(1)?.0;
    tree_line(screen, name)?.chars().nth(col + 1)
}

/// base: etc/passwd, etc/gone.conf; layer 2 adds app/added.txt; layer 3 deletes
/// etc/gone.conf.
fn image(env: &Env) {
    std::fs::create_dir_all(env.path("root/etc")).unwrap();
    std::fs::write(env.path("root/etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    std::fs::write(env.path("root/etc/gone.conf"), "soon gone\n").unwrap();
    env.ok(&["import", "root", "explore:1"]);
    write_tar(&env.path("l2.tar"), &[Entry::Dir("app"), Entry::File("app/added.txt", b"new in layer 2\n")]);
    env.ok(&["append", "explore:1", "l2.tar", "explore:2", "-m", "add app"]);
    write_tar(&env.path("l3.tar"), &[Entry::File("etc/.wh.gone.conf", b"")]);
    env.ok(&["append", "explore:2", "l3.tar", "explore:3", "-m", "delete gone.conf"]);
}

#[test]
fn the_explorer_shows_layers_marks_and_filters_on_a_terminal() {
    if !require_tool("tmux") {
        return;
    }
    let env = Env::new();
    image(&env);
    let strata = env!("CARGO_BIN_EXE_strata");
    let t = Tmux::start(&env, &format!("NO_COLOR=1 '{strata}' --store '{}' dive explore:3", env.store().display()));
    let first = t.wait("the first frame", |s| s.contains("Image efficiency score") && s.contains("Filetree"));
    // The layer list: three layers, the base selected, its tree all added.
    // (The layer details pane names the selected layer's command too, after `Command:`.)
    let layer_lines: Vec<&str> = first
        .lines()
        .filter(|l| (l.contains("strata import") || l.contains("strata append")) && !l.contains("Command:"))
        .collect();
    assert_eq!(layer_lines.len(), 3, "{first}");
    assert!(first.contains("Cmp     Size  Command"), "{first}");
    assert_eq!(mark(&first, "passwd"), Some('+'), "{first}");
    assert!(tree_line(&first, "added.txt").is_none(), "{first}");
    // Layer 2: the file it adds is marked added; the base's files unchanged.
    t.keys(&["Down"]);
    let s = t.wait("layer 2's tree", |s| tree_line(s, "added.txt").is_some());
    assert_eq!(mark(&s, "added.txt"), Some('+'), "{s}");
    assert_eq!(mark(&s, "passwd"), Some(' '), "{s}");
    assert!(tree_line(&s, "added.txt").unwrap().contains("-rw-r--r--"), "{s}");
    // Layer 3 (vi key): the deleted file is shown, marked removed.
    t.keys(&["j"]);
    let s = t.wait("layer 3's tree", |s| mark(s, "gone.conf") == Some('-'));
    assert_eq!(mark(&s, "added.txt"), Some(' '), "{s}");
    // The path filter narrows the tree to what matches and its directories.
    t.keys(&["Tab", "/", "added", "Enter"]);
    let s = t.wait("the filtered tree", |s| s.contains("Path Filter: added") && tree_line(s, "passwd").is_none());
    assert!(tree_line(&s, "added.txt").is_some() && tree_line(&s, "app").is_some(), "{s}");
    assert!(tree_line(&s, "gone.conf").is_none(), "{s}");
    // Help, then q quits cleanly.
    t.keys(&["?"]);
    t.wait("the help", |s| s.contains("fold or unfold a directory"));
    t.keys(&["Escape"]);
    t.wait("the help gone", |s| !s.contains("fold or unfold a directory"));
    t.keys(&["q"]);
    t.wait("the exit", |s| s.contains("EXITED 0"));
}

#[test]
fn the_explorer_follows_a_resize() {
    if !require_tool("tmux") {
        return;
    }
    let env = Env::new();
    image(&env);
    let strata = env!("CARGO_BIN_EXE_strata");
    let t = Tmux::start(&env, &format!("'{strata}' --store '{}' dive explore:3", env.store().display()));
    t.wait("the first frame", |s| s.contains("Image efficiency score"));
    t.tmux(&["resize-window", "-t", "dive", "-x", "80", "-y", "24"]);
    // The bottom border and status line move up to the new last rows.
    t.wait("the redrawn screen", |s| {
        let lines: Vec<&str> = s.lines().collect();
        lines.len() <= 24
            && lines.iter().rev().take(3).any(|l| l.contains("Quit"))
            && lines.iter().all(|l| l.chars().count() <= 80)
    });
    t.keys(&["C-c"]);
    t.wait("the exit", |s| s.contains("EXITED 0"));
}

#[test]
fn the_explorer_reads_an_archive_in_place() {
    if !require_tool("tmux") {
        return;
    }
    let env = Env::new();
    image(&env);
    env.ok(&["save", "explore:3", "--format", "oci-archive", "-o", "e.tar"]);
    let strata = env!("CARGO_BIN_EXE_strata");
    // No temporary store can be made, and the (other) store stays absent.
    let t =
        Tmux::start(&env, &format!("TMPDIR=/dev/null/none NO_COLOR=1 '{strata}' --store none dive --archive e.tar"));
    let first = t.wait("the first frame", |s| s.contains("Image efficiency score") && s.contains("Filetree"));
    assert!(first.contains("explore:3"), "{first}");
    t.keys(&["Down", "j"]);
    t.wait("layer 3's tree", |s| mark(s, "gone.conf") == Some('-'));
    t.keys(&["q"]);
    t.wait("the exit", |s| s.contains("EXITED 0"));
    assert!(!env.path("none").exists());
}
