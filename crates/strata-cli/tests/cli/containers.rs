//! Containers through a real OCI runtime (runc): the seed's story with a running
//! container, published ports, exit codes, signals, --rm, terminals, a missing or
//! failing runtime, and a killed `strata run`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Env, busybox_rootfs, containers_ready, eventually, run};

/// An env with a busybox image `tag` imported (command `sh`, workdir `/`).
fn env_with(tag: &str, extra: &[(&str, &str)]) -> Env {
    let env = Env::new();
    busybox_rootfs(&env.path("rootfs"), extra);
    env.ok(&["import", "rootfs", tag, "-c", "CMD [\"sh\"]"]);
    env
}

fn ps_names(env: &Env, all: bool) -> Vec<String> {
    let mut args = vec!["ps", "--format", "{{.Names}}"];
    if all {
        args.push("-a");
    }
    env.ok(&args).lines().map(str::to_owned).collect()
}

fn status(env: &Env, name: &str) -> String {
    let out = env.ok(&["ps", "-a", "--format", "{{.Names}}|{{.Status}}"]);
    out.lines().find_map(|l| l.strip_prefix(&format!("{name}|")).map(str::to_owned)).unwrap_or_default()
}

/// The record strata keeps of a container (its monitor and process ids).
fn record(env: &Env, name: &str) -> serde_json::Value {
    for e in std::fs::read_dir(env.store().join("containers")).unwrap().flatten() {
        let Ok(bytes) = std::fs::read(e.path().join("container.json")) else { continue };
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        if v["name"] == name {
            return v;
        }
    }
    panic!("no record of {name}");
}

fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
}

/// docker's story: run a container, fix the image from inside it while it runs,
/// commit the container, run the new image.
#[test]
fn seed_story_with_a_running_container() {
    if !containers_ready() {
        return;
    }
    let env =
        env_with("tomcat:latest", &[("webapps.dist/ROOT/index.html", "<h1>tomcat</h1>\n"), ("webapps/.keep", "")]);
    let id = env.ok(&[
        "run",
        "-d",
        "--name",
        "tc",
        "tomcat:latest",
        "sh",
        "-c",
        "cp -r webapps.dist/. webapps/ && sleep 300",
    ]);
    assert_eq!(id.trim().len(), 64, "{id}");
    eventually(20, "the copy inside the container", || {
        env.run(&["exec", "tc", "ls", "webapps/ROOT"]).stdout.contains("index.html")
    });
    assert_eq!(env.ok(&["exec", "tc", "ls", "webapps/ROOT"]), "index.html\n");
    assert_eq!(ps_names(&env, false), ["tc"]);
    assert!(status(&env, "tc").starts_with("Up "), "{}", status(&env, "tc"));
    // diff by name, while it runs.
    let diff = env.ok(&["diff", "tc"]);
    assert!(diff.contains("A /webapps/ROOT/index.html"), "{diff}");
    assert!(!diff.contains("/proc") && !diff.contains("/dev"), "mount points are not changes: {diff}");
    assert_eq!(env.ok(&["stop", "-t", "1", "tc"]), "tc\n");
    assert!(status(&env, "tc").starts_with("Exited (137) "), "{}", status(&env, "tc"));
    let new_id = env.ok(&["commit", "-m", "edit webapps dir", "-a", "xiao", "tc", "tomcat02:1.0"]);
    assert!(new_id.starts_with("sha256:"), "{new_id}");
    let r = env.run(&["run", "--rm", "tomcat02:1.0", "cat", "webapps/ROOT/index.html"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "<h1>tomcat</h1>\n"), "{}", r.stderr);
    assert_eq!(ps_names(&env, true), ["tc"], "--rm removed its container");
    let v = env.inspect("tomcat02:1.0");
    assert_eq!(v[0]["Author"], "xiao");
    assert_eq!(v[0]["Comment"], "edit webapps dir");
    assert_eq!(v[0]["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    // The image a container uses stays until the container goes.
    assert!(env.fails(&["rmi", "tomcat:latest"], 1).contains("container"));
    assert_eq!(env.ok(&["rm", "tc"]), "tc\n");
    assert_eq!(ps_names(&env, true), Vec::<String>::new());
    env.ok(&["rmi", "tomcat:latest"]);
}

/// `-p HOST:CTR`: an HTTP request to the host port reaches busybox's httpd inside.
#[test]
fn a_published_port_reaches_a_server_inside() {
    if !containers_ready() {
        return;
    }
    let env = env_with("web:1", &[("www/index.html", "hello from inside\n")]);
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let publish = format!("127.0.0.1:{port}:8080");
    env.ok(&["run", "-d", "--name", "web", "-p", &publish, "web:1", "httpd", "-f", "-p", "8080", "-h", "/www"]);
    let ports = env.ok(&["ps", "--format", "{{.Ports}}"]);
    assert_eq!(ports.trim(), format!("127.0.0.1:{port}->8080/tcp"));
    let mut body = String::new();
    eventually(20, "an answer through the published port", || {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        if s.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n").is_err() {
            return false;
        }
        body.clear();
        s.read_to_string(&mut body).is_ok() && body.starts_with("HTTP/1.")
    });
    assert!(body.contains("200 OK") && body.ends_with("hello from inside\n"), "{body}");
    // The port is the container's: the host's own loopback does not serve 8080.
    let taken = env.run(&["run", "--rm", "-p", &publish, "web:1", "true"]);
    assert_eq!(taken.code, 125, "a port in use: {}", taken.stderr);
    assert!(taken.stderr.contains(&format!("{port}")), "{}", taken.stderr);
    env.ok(&["rm", "-f", "web"]);
    eventually(10, "the port to be free", || TcpListener::bind(("127.0.0.1", port)).is_ok());
}

/// The exit code of `run` is the container's; docker's 125, 126 and 127 when it cannot
/// run; `wait` prints it, `kill` makes it 128 + the signal.
#[test]
fn exit_codes() {
    if !containers_ready() {
        return;
    }
    let env = env_with("bb:1", &[]);
    let r = env.run(&["run", "--rm", "bb:1", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (3, "out\n", "err\n"));
    let r = env.run(&["run", "--rm", "bb:1", "nope"]);
    assert_eq!(r.code, 127, "{}", r.stderr);
    assert!(r.stderr.contains("executable file not found"), "{}", r.stderr);
    let r = env.run(&["run", "--rm", "bb:1", "/bin"]);
    assert_eq!(r.code, 126, "{}", r.stderr);
    let r = env.run(&["run", "--rm", "nope:1"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("No such image: nope:1"), "{}", r.stderr);
    let r = env.run(&["run", "--rm", "--name", "x", "bb:1"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("Invalid container name (x)"), "{}", r.stderr);
    assert_eq!(ps_names(&env, true), Vec::<String>::new(), "failed --rm runs leave nothing");

    env.ok(&["run", "-d", "--name", "k9", "bb:1", "sleep", "300"]);
    env.ok(&["kill", "k9"]);
    assert_eq!(env.ok(&["wait", "k9"]), "137\n");
    env.ok(&["run", "-d", "--name", "e4", "bb:1", "sh", "-c", "exit 4"]);
    assert_eq!(env.ok(&["wait", "e4"]), "4\n");
    assert!(status(&env, "e4").starts_with("Exited (4) "), "{}", status(&env, "e4"));
    // exec: the command's exit code, 126 when it cannot be run, 1 when not running.
    env.ok(&["start", "k9"]);
    assert_eq!(env.run(&["exec", "k9", "sh", "-c", "exit 7"]).code, 7);
    let r = env.run(&["exec", "k9", "nope"]);
    assert_eq!(r.code, 126, "{}", r.stderr);
    let r = env.run(&["exec", "e4", "true"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("is not running"), "{}", r.stderr);
    let r =
        env.run(&["exec", "-e", "A=1", "-w", "/bin", "-u", "1000:1000", "k9", "sh", "-c", "echo $A $(pwd) $(id -u)"]);
    assert_eq!(r.stdout, "1 /bin 1000\n", "{}", r.stderr);
    env.ok(&["rm", "-f", "k9", "e4"]);
}

/// `stop` sends the stop signal, then SIGKILL after `-t`: a container that handles
/// SIGTERM exits by itself; one that ignores it is killed when the time is up.
#[test]
fn stop_sends_term_then_kill_after_the_timeout() {
    if !containers_ready() {
        return;
    }
    let env = env_with("bb:1", &[]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "polite",
        "bb:1",
        "sh",
        "-c",
        "trap 'echo got-term; exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    env.ok(&["run", "-d", "--name", "stubborn", "bb:1", "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"]);
    // SIGTERM ended it: its trap ran and it exited 0 (a SIGKILL would be 137).
    env.ok(&["stop", "-t", "30", "polite"]);
    assert_eq!(env.ok(&["wait", "polite"]), "0\n");
    assert_eq!(env.ok(&["logs", "polite"]), "got-term\n");
    // Ignored, SIGTERM is followed by SIGKILL, not before `-t` is up (a lower bound
    // only: a loaded machine makes it later, never sooner).
    let start = Instant::now();
    env.ok(&["stop", "-t", "2", "stubborn"]);
    let took = start.elapsed();
    assert!(took >= Duration::from_secs(2), "SIGKILL only after 2 s: {took:?}");
    assert_eq!(env.ok(&["wait", "stubborn"]), "137\n");
    // Stopping a stopped container is no error (docker's behaviour).
    assert_eq!(env.ok(&["stop", "stubborn"]), "stubborn\n");
    env.ok(&["rm", "polite", "stubborn"]);
}

/// A signal sent to an attached `strata run` is passed to the container's process (as
/// docker's `--sig-proxy`): its trap runs, and its exit code is `run`'s.
#[test]
fn signals_to_an_attached_run_reach_the_container() {
    if !containers_ready() {
        return;
    }
    let env = env_with("bb:1", &[]);
    let script = "trap 'echo got-term; exit 3' TERM; echo ready; while true; do sleep 0.1; done";
    let mut c = env.cmd(&["run", "--name", "proxied", "bb:1", "sh", "-c", script]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut cli = c.spawn().unwrap();
    let mut stdout = cli.stdout.take().unwrap();
    let mut ready = [0u8; 6];
    stdout.read_exact(&mut ready).unwrap();
    assert_eq!(&ready, b"ready\n");
    let pid = rustix::process::Pid::from_raw(cli.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let exit = cli.wait().unwrap();
    assert_eq!((exit.code(), rest.as_str()), (Some(3), "got-term\n"));
    assert!(status(&env, "proxied").starts_with("Exited (3) "), "{}", status(&env, "proxied"));
    env.ok(&["rm", "proxied"]);
}

/// `--rm`: the container goes when it exits, attached or detached; `rm` refuses a
/// running container unless `-f`.
#[test]
fn rm_and_auto_removal() {
    if !containers_ready() {
        return;
    }
    let env = env_with("bb:1", &[]);
    assert_eq!(env.ok(&["run", "--rm", "bb:1", "echo", "once"]), "once\n");
    env.ok(&["run", "-d", "--rm", "--name", "brief", "bb:1", "sleep", "0.3"]);
    eventually(20, "the --rm container and its files to go", || {
        let dirs = env.store().join("containers").read_dir().unwrap().flatten();
        ps_names(&env, true).is_empty() && !dirs.into_iter().any(|e| !e.file_name().to_string_lossy().starts_with('.'))
    });
    env.ok(&["run", "-d", "--name", "busy", "bb:1", "sleep", "300"]);
    let err = env.fails(&["rm", "busy"], 1);
    assert!(err.contains("You cannot remove a running container") && err.contains("force remove"), "{err}");
    let pid = record(&env, "busy")["state"]["pid"].as_i64().unwrap();
    assert_eq!(env.ok(&["rm", "-f", "busy"]), "busy\n");
    assert!(!alive(pid), "rm -f killed it");
    assert!(env.fails(&["rm", "busy"], 1).contains("No such container: busy"));
    // create, then start -a: the container's output and exit code.
    let id = env.ok(&["create", "--name", "later", "bb:1", "sh", "-c", "echo started; exit 2"]);
    assert!(status(&env, "later") == "Created", "{}", status(&env, "later"));
    assert!(env.ok(&["ps", "-a", "-q"]).trim() == &id.trim()[..12]);
    let r = env.run(&["start", "-a", "later"]);
    assert_eq!((r.code, r.stdout.as_str()), (2, "started\n"), "{}", r.stderr);
    assert_eq!(env.ok(&["logs", "later"]), "started\n");
    env.ok(&["rm", "later"]);
}

/// `-it`: a real terminal through the runtime's console socket, with this terminal's
/// size; the shell's exit code is strata's.
#[test]
fn an_interactive_terminal() {
    if !containers_ready() || !strata_testkit::require_tool("script") {
        return;
    }
    let env = env_with("bb:1", &[]);
    let line = format!(
        "stty cols 91 rows 33; {} --store {} run -it --rm bb:1 sh",
        env!("CARGO_BIN_EXE_strata"),
        env.store().display()
    );
    let mut c = Command::new("script");
    c.args(["-qec", &line, "/dev/null"]).current_dir(env.dir.path()).stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        let _ = stdin.write_all(b"echo in-$((6*7)); stty size; exit 5\r");
        std::thread::sleep(Duration::from_millis(3000));
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("in-42") && shown.contains("33 91"), "{shown:?}");
    assert_eq!(out.status.code(), Some(5), "{shown:?}");
    // stdin without a terminal (-i): piped through.
    let r = env.with_stdin(&["run", "-i", "--rm", "bb:1", "cat"], b"piped\n");
    assert_eq!((r.code, r.stdout.as_str()), (0, "piped\n"), "{}", r.stderr);
}

/// A runtime that is not there, and one that fails: exit 125 with a message that says
/// what to do; nothing is left running.
#[test]
fn a_missing_or_failing_runtime() {
    if !containers_ready() {
        return;
    }
    let env = env_with("bb:1", &[]);
    let mut c = env.cmd(&["run", "--rm", "bb:1", "true"]);
    c.env("STRATA_RUNTIME", "/nonexistent/runc");
    let r = run(c);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("/nonexistent/runc: no such program"), "{}", r.stderr);
    let empty = env.path("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let mut c = env.cmd(&["run", "--rm", "bb:1", "true"]);
    c.env("PATH", &empty).env_remove("STRATA_RUNTIME");
    let r = run(c);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("no OCI runtime found") && r.stderr.contains("apt-get install runc"), "{}", r.stderr);
    // A runtime that fails every command, with its reason on stderr.
    let fake = env.path("fake-runtime");
    std::fs::write(&fake, "#!/bin/sh\necho 'fake runtime: cgroups are not available' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = env.run(&["run", "--runtime", fake.to_str().unwrap(), "--name", "doomed", "bb:1", "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("fake runtime: cgroups are not available"), "{}", r.stderr);
    // Left as docker leaves a container that failed to start: created, removable.
    assert_eq!(status(&env, "doomed"), "Created");
    env.ok(&["rm", "doomed"]);
    assert_eq!(ps_names(&env, true), Vec::<String>::new());

    // The runtime chosen runs the container: a wrapper around runc that notes each call,
    // named by --runtime, then by STRATA_RUNTIME.
    let calls = env.path("calls");
    let wrapper = env.path("wrapped-runc");
    std::fs::write(&wrapper, format!("#!/bin/sh\necho \"$1\" >> '{}'\nexec runc \"$@\"\n", calls.display())).unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = env.run(&["run", "--runtime", wrapper.to_str().unwrap(), "--rm", "bb:1", "sh", "-c", "echo by-flag"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "by-flag\n"), "{}", r.stderr);
    let by_flag = std::fs::read_to_string(&calls).unwrap();
    assert!(by_flag.lines().count() >= 2, "the wrapper ran the container: {by_flag}");
    let mut c = env.cmd(&["run", "--rm", "bb:1", "sh", "-c", "echo by-env"]);
    c.env("STRATA_RUNTIME", &wrapper);
    let r = run(c);
    assert_eq!((r.code, r.stdout.as_str()), (0, "by-env\n"), "{}", r.stderr);
    assert!(std::fs::read_to_string(&calls).unwrap().len() > by_flag.len(), "STRATA_RUNTIME chose the wrapper");
    assert_eq!(ps_names(&env, true), Vec::<String>::new());
}

/// Killing an attached `strata run` leaves the container running under its monitor;
/// killing the monitor too leaves a container `ps` still shows and `rm -f` removes.
#[test]
fn a_killed_run_leaves_a_container_ps_and_rm_handle() {
    if !containers_ready() {
        return;
    }
    let env = env_with("bb:1", &[]);
    let mut c = env.cmd(&["run", "--name", "orphan", "bb:1", "sleep", "300"]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let mut cli = c.spawn().unwrap();
    eventually(20, "the container to run", || status(&env, "orphan").starts_with("Up "));
    cli.kill().unwrap();
    cli.wait().unwrap();
    assert!(status(&env, "orphan").starts_with("Up "), "{}", status(&env, "orphan"));
    let rec = record(&env, "orphan");
    let monitor = rec["state"]["monitor"][0].as_i64().unwrap();
    let pid = rec["state"]["pid"].as_i64().unwrap();
    assert!(alive(monitor) && alive(pid));
    // The monitor gone too: the container still shows, and goes with rm -f.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(monitor as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    eventually(10, "the monitor to die", || !alive(monitor));
    assert!(status(&env, "orphan").starts_with("Up "), "{}", status(&env, "orphan"));
    assert_eq!(env.ok(&["rm", "-f", "orphan"]), "orphan\n");
    eventually(10, "the container's process to die", || !alive(pid));
    assert_eq!(ps_names(&env, true), Vec::<String>::new());
    // A container whose monitor and process both died shows as exited (code unknown).
    env.ok(&["run", "-d", "--name", "lost", "bb:1", "sleep", "300"]);
    let rec = record(&env, "lost");
    for key in ["monitor", "pid"] {
        let p = if key == "monitor" { rec["state"]["monitor"][0].as_i64() } else { rec["state"]["pid"].as_i64() };
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(p.unwrap() as i32).unwrap(),
            rustix::process::Signal::KILL,
        )
        .unwrap();
    }
    eventually(10, "it to show as exited", || status(&env, "lost").starts_with("Exited (255)"));
    assert_eq!(env.ok(&["rm", "lost"]), "lost\n");
}
