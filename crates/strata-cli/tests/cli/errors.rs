//! Error paths: one clear line on stderr, exit 1 (2 for usage), never a panic.

use crate::common::{Entry, Env, files_under, hand_made_image, tomcat_rootfs, write_tar};

fn with_base() -> Env {
    let env = Env::new();
    tomcat_rootfs(&env.path("rootfs"));
    env.ok(&["import", "rootfs", "tomcat:latest"]);
    env
}

/// One line, `strata: error: ...`, containing `needle`.
fn one_line(stderr: &str, needle: &str) {
    assert_eq!(stderr.lines().count(), 1, "not one line:\n{stderr}");
    assert!(stderr.starts_with("strata: error: "), "{stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in:\n{stderr}");
}

#[test]
fn missing_ref_in_every_command_that_takes_one() {
    let env = with_base();
    std::fs::create_dir(env.path("dir")).unwrap();
    for args in [
        &["inspect", "nope:1"][..],
        &["history", "nope:1"],
        &["tag", "nope:1", "x:1"],
        &["rmi", "nope:1"],
        &["unpack", "nope:1", "out"],
        &["save", "nope:1", "-o", "x.tar"],
        &["append", "nope:1", "dir", "x:1"],
        &["config", "nope:1", "x:1", "-c", "USER a"],
        &["push", "nope:1", "127.0.0.1:1/x:1"],
        &["unpack", "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "out"],
        &["unpack", "abcdef012345", "out"],
    ] {
        let err = env.fails(args, 1);
        assert!(err.lines().any(|l| l.starts_with("strata: error: No such image: ")), "{args:?}: {err}");
    }
    assert!(!env.path("out").exists() && !env.path("x.tar").exists());
    assert_eq!(env.ok(&["images", "-q"]).lines().count(), 1, "a failed command changed the store");
}

#[test]
fn corrupt_layout() {
    let env = Env::new();
    std::fs::create_dir_all(env.store()).unwrap();
    std::fs::write(env.store().join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(env.store().join("index.json"), "garbage{").unwrap();
    for args in [&["images"][..], &["inspect", "x"], &["fsck"], &["gc"], &["tag", "a", "b"]] {
        let err = env.fails(args, 1);
        one_line(&err, "index.json");
    }
    // Not a layout at all: a file where the store should be.
    let other = env.path("file");
    std::fs::write(&other, "x").unwrap();
    let err = env.fails(&["--store", other.to_str().unwrap(), "images"], 1);
    one_line(&err, "file");
    // A directory with other things in it is not made into a store by a write.
    let busy = env.path("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine").unwrap();
    tomcat_rootfs(&env.path("rootfs"));
    let err = env.fails(&["--store", busy.to_str().unwrap(), "import", "rootfs", "x:1"], 1);
    one_line(&err, "is not an OCI image layout");
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);
    // A layout whose manifest blob is missing: images lists it as unreadable, inspect fails.
    let env = with_base();
    let v = env.inspect("tomcat:latest");
    let m = v[0]["Descriptor"]["digest"].as_str().unwrap().to_owned();
    std::fs::remove_file(env.store().join("blobs/sha256").join(&m[7..])).unwrap();
    let r = env.run(&["images"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("<unreadable>") && r.stderr.contains(&m), "{}\n{}", r.stdout, r.stderr);
    let err = env.fails(&["inspect", "tomcat:latest"], 1);
    assert!(err.contains(&m), "{err}");
    let err = env.fails(&["unpack", "tomcat:latest", "c"], 1);
    one_line(&err, &m);
}

#[test]
fn hostile_layers_fail_to_unpack_and_touch_nothing_outside() {
    let env = Env::new();
    let outside = env.path("outside");
    std::fs::create_dir(&outside).unwrap();
    write_tar(&env.path("dotdot.tar"), &[Entry::File("ok.txt", b"ok"), Entry::File("../escaped.txt", b"pwn")]);
    let target = outside.to_str().unwrap().to_owned();
    write_tar(&env.path("symlink.tar"), &[Entry::Symlink("link", &target), Entry::File("link/pwned.txt", b"pwn")]);
    // A relative symlink climbing out resolves inside the root (as chroot would): what is
    // written through it lands in the rootfs, not outside.
    write_tar(&env.path("relsym.tar"), &[Entry::Symlink("up", "../../.."), Entry::File("up/inside.txt", b"in")]);
    for (tar, tag) in [("dotdot.tar", "evil:1"), ("symlink.tar", "evil:2")] {
        // Another tool may store such a layer: unpack must refuse it.
        hand_made_image(&env.store(), tag, &std::fs::read(env.path(tar)).unwrap());
        for raw in [false, true] {
            let dir = format!("u-{tag}-{raw}");
            let mut args = vec!["unpack", tag, dir.as_str()];
            if raw {
                args.insert(1, "--raw");
            }
            let err = env.fails(&args, 1);
            one_line(&err, "layer sha256:");
            assert!(!env.path(&dir).exists(), "a failed unpack left {dir}");
        }
    }
    env.ok(&["import", "relsym.tar", "evil:3"]);
    env.ok(&["unpack", "--raw", "evil:3", "u3"]);
    assert_eq!(std::fs::read_to_string(env.path("u3/inside.txt")).unwrap(), "in");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "something was written outside");
    for p in ["escaped.txt", "pwned.txt", "inside.txt"] {
        assert!(!env.path(p).exists() && !env.dir.path().parent().unwrap().join(p).exists(), "{p} escaped");
    }
    let err = env.fails(&["unpack", "evil:1", "x"], 1);
    assert!(err.contains("../escaped.txt"), "names the entry: {err}");
}

/// The reason of an error line, without the layer's name (unpack names the layer by
/// its digest, import calls it `input`).
fn reason(stderr: &str) -> String {
    let line = stderr.lines().find(|l| l.contains("layer ")).unwrap_or_else(|| panic!("no layer error: {stderr}"));
    let at = line.find("layer ").unwrap();
    let rest = &line[at + "layer ".len()..];
    rest.split_once(": ").map_or(rest, |(_, r)| r).to_owned()
}

#[test]
fn import_refuses_what_unpack_refuses_with_the_same_error_and_keeps_the_store() {
    let env = with_base();
    let tar = |entries: &[Entry<'_>]| {
        let p = env.path("t.tar");
        write_tar(&p, entries);
        std::fs::read(&p).unwrap()
    };
    // A PAX header whose mtime is not a time, in front of a file.
    let mut bad_mtime = Vec::new();
    {
        let mut b = tar::Builder::new(&mut bad_mtime);
        let mut h = tar::Header::new_ustar();
        h.set_path("PaxHeaders/f").unwrap();
        let rec = b"19 mtime=yesterday\n";
        h.set_size(rec.len() as u64);
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_cksum();
        b.append(&h, &rec[..]).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_path("f").unwrap();
        h.set_size(1);
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        b.finish().unwrap();
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dotdot", tar(&[Entry::File("ok", b"ok"), Entry::File("../escaped", b"pwn")])),
        ("whiteout parent", tar(&[Entry::File(".wh.x/y", b"")])),
        ("empty symlink", tar(&[Entry::Symlink("s", "")])),
        ("through a symlink out", tar(&[Entry::Symlink("l", "/nowhere/at/all"), Entry::File("l/f", b"x")])),
        ("bad PAX mtime", bad_mtime),
    ];
    for (name, bytes) in &cases {
        std::fs::write(env.path("case.tar"), bytes).unwrap();
        let before = files_under(&env.store());
        let index = std::fs::read(env.store().join("index.json")).unwrap();
        let import_err = env.fails(&["import", "case.tar", "bad:1"], 1);
        let append_err = env.fails(&["append", "tomcat:latest", "case.tar", "bad:2"], 1);
        assert_eq!(files_under(&env.store()), before, "{name}: the store changed");
        assert_eq!(std::fs::read(env.store().join("index.json")).unwrap(), index, "{name}");
        // The layer in a store another tool wrote: unpack refuses it for the same reason.
        let other = Env::new();
        hand_made_image(&other.store(), "bad:1", bytes);
        let unpack_err = other.fails(&["unpack", "--raw", "bad:1", "u"], 1);
        assert_eq!(reason(&import_err), reason(&unpack_err), "{name}:\n{import_err}\n{unpack_err}");
        assert_eq!(reason(&append_err), reason(&unpack_err), "{name}");
    }
    // On top of a base, a hard link may name a file of the base (it unpacks); a hard link
    // to nothing may not, on its own or on top.
    let link = tar(&[Entry::Link("again", "bin/catalina.sh")]);
    std::fs::write(env.path("link.tar"), &link).unwrap();
    env.ok(&["append", "tomcat:latest", "link.tar", "linked:1"]);
    env.ok(&["unpack", "--raw", "linked:1", "linked"]);
    assert_eq!(
        std::fs::read(env.path("linked/again")).unwrap(),
        std::fs::read(env.path("linked/bin/catalina.sh")).unwrap()
    );
    let err = env.fails(&["import", "link.tar", "bad:3"], 1);
    assert!(err.contains("again") && err.contains("link"), "{err}");
}

#[test]
fn bad_changes_fail_with_dockers_words() {
    let env = with_base();
    env.ok(&["unpack", "tomcat:latest", "c"]);
    for (args, message) in [
        (&["commit", "c", "x:1", "-c", "RUN rm -rf /"][..], "run is not a valid change command"),
        (&["config", "tomcat:latest", "x:1", "-c", "FROM scratch"], "from is not a valid change command"),
        (&["import", "rootfs", "x:1", "-c", "COPY a b"], "copy is not a valid change command"),
        (&["append", "tomcat:latest", "rootfs", "x:1", "-c", "ADD a b"], "add is not a valid change command"),
        (&["commit", "c", "x:1", "-c", "USER"], "USER requires exactly one argument"),
        (&["commit", "c", "x:1", "-c", "ENV A=${B:?unset}"], "failed to process \"${B:?unset}\": B: unset"),
    ] {
        assert_eq!(env.fails(args, 1), format!("strata: error: {message}\n"), "{args:?}");
    }
    assert!(!env.ok(&["images"]).contains("x "), "a bad -c still made an image");
}

#[test]
fn bad_references_platforms_and_inputs() {
    let env = with_base();
    // docker's words (`docker pull 'Not A Ref'`, `docker push 'bad ref:1'`)
    assert_eq!(
        env.fails(&["pull", "Not A Ref"], 1),
        "strata: error: invalid reference format: repository name (library/Not A Ref) must be lowercase\n"
    );
    assert_eq!(env.fails(&["push", "tomcat:latest", "bad ref:1"], 1), "strata: error: invalid reference format\n");
    one_line(&env.fails(&["tag", "tomcat:latest", ""], 1), "");
    one_line(&env.fails(&["unpack", "--platform", "a/b/c/d/e", "tomcat:latest", "d"], 1), "a/b/c/d/e");
    one_line(&env.fails(&["unpack", "--platform", "linux/s390x", "tomcat:latest", "d"], 1), "");
    one_line(&env.fails(&["import", "no-such-dir", "x:1"], 1), "no-such-dir");
    one_line(&env.fails(&["load", "-i", "no-such.tar"], 1), "no-such.tar");
    std::fs::write(env.path("junk.tar"), vec![0x42; 4096]).unwrap();
    one_line(&env.fails(&["load", "-i", "junk.tar"], 1), "");
    one_line(&env.fails(&["import", "junk.tar", "x:1"], 1), "");
    // unpack into a non-empty directory; diff and commit on something that is no bundle
    std::fs::create_dir(env.path("full")).unwrap();
    std::fs::write(env.path("full/f"), "x").unwrap();
    one_line(&env.fails(&["unpack", "tomcat:latest", "full"], 1), "not empty");
    one_line(&env.fails(&["diff", "full"], 1), "not a strata container bundle");
    one_line(&env.fails(&["commit", "full", "x:1"], 1), "not a strata container bundle");
    one_line(&env.fails(&["login", "127.0.0.1:1", "-u", "me", "--password-stdin"], 1), "password");
    assert_eq!(std::fs::read_to_string(env.path("full/f")).unwrap(), "x");
    // a USER the image's /etc/passwd lacks: no runtime config can be made, nothing left
    // behind; --no-runtime-config (or --raw) unpacks it anyway
    env.ok(&["config", "tomcat:latest", "nouser:1", "-c", "USER mallory"]);
    one_line(&env.fails(&["unpack", "nouser:1", "nu"], 1), "no user \"mallory\"");
    assert!(!env.path("nu").exists());
    env.ok(&["unpack", "--no-runtime-config", "nouser:1", "nu"]);
    env.ok(&["unpack", "--raw", "nouser:1", "nu-raw"]);
    // --raw writes no config.json, so asking for none with it is a usage error
    assert_eq!(env.run(&["unpack", "--raw", "--no-runtime-config", "nouser:1", "x"]).code, 2);
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    for args in [
        &["frobnicate"][..],
        &[],
        &["inspect"],
        &["unpack", "only-one-arg"],
        &["save", "x", "--format", "zip"],
        &["images", "--no-such-flag"],
        &["completions", "powershell"],
        &["login", "r", "-u", "me"],
        &["pull", "x", "--platform", "linux/amd64", "--all-platforms"],
    ] {
        let r = env.run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        crate::common::assert_clean_error(&r.stderr);
        assert!(r.stderr.starts_with("error: "), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn save_refuses_a_terminal_and_bad_output_dirs() {
    let env = with_base();
    one_line(&env.fails(&["save", "tomcat:latest", "-o", "no/such/dir/x.tar"], 1), "no/such/dir");
}
