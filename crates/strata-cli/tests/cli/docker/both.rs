//! Running one operation through strata and through docker: the same image in both
//! (made by strata, loaded into docker), and what each printed, prefixes aside.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Output;

use strata_testkit::Docker;

use crate::common::{Env, Run};

/// What a command did: exit code, stdout, and its error message without the program's
/// prefix (`strata: error: `, `Error response from daemon: `, `Error: `), one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub errors: Vec<String>,
}

impl Outcome {
    pub fn strata(r: Run) -> Outcome {
        let errors = r.stderr.lines().map(|l| l.strip_prefix("strata: error: ").unwrap_or(l).to_owned()).collect();
        Outcome { code: r.code, stdout: r.stdout, errors }
    }

    pub fn docker(o: Output) -> Outcome {
        let stderr = String::from_utf8_lossy(&o.stderr);
        let errors = stderr
            .lines()
            // The classic builder's notice, and docker's hints, are not errors.
            .filter(|l| !l.trim().is_empty() && !l.starts_with("DEPRECATED") && !l.starts_with(' '))
            .map(|l| {
                let l = l.strip_prefix("Error response from daemon: ").unwrap_or(l);
                l.strip_prefix("Error: ").unwrap_or(l).to_owned()
            })
            .collect();
        Outcome { code: o.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&o.stdout).into_owned(), errors }
    }

    /// The one error message.
    pub fn error(&self) -> &str {
        assert_eq!(self.errors.len(), 1, "not one error: {self:?}");
        &self.errors[0]
    }
}

/// A one-layer image made by strata (`strata import` of a tiny tree, with `changes`),
/// tagged `tag` in `env`'s store and loaded into docker under the same tag; its id.
pub fn shared_image(env: &Env, docker: &Docker, tag: &str, changes: &[&str]) -> String {
    let dir = format!("rootfs-{}", tag.replace([':', '/'], "-"));
    let root = env.path(&dir);
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/motd"), format!("{tag}\n")).unwrap();
    let mut args = vec!["import", dir.as_str(), tag];
    for c in changes {
        args.extend(["-c", c]);
    }
    env.ok(&args);
    let archive = format!("{dir}.tar");
    env.ok(&["save", tag, "-o", &archive]);
    docker.load(&env.path(&archive));
    let id = env.image_id(tag);
    assert_eq!(docker.inspect(tag)["Id"], id.as_str());
    id
}

/// The engine's own answer to an API call (`GET /images/nope/json`): status and JSON
/// body. Clients of different versions word some errors themselves (the 20.10 client
/// says `Error: No such image: nope` where the engine says `No such image: nope:latest`);
/// this is the engine's text.
pub fn api(docker: &Docker, method: &str, path: &str) -> (u16, serde_json::Value) {
    let sock = docker.host.strip_prefix("unix://").unwrap_or_else(|| panic!("not a unix socket: {}", docker.host));
    let mut s = UnixStream::connect(sock).unwrap_or_else(|e| panic!("connect {sock}: {e}"));
    write!(s, "{method} {path} HTTP/1.0\r\nHost: docker\r\nContent-Length: 0\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, serde_json::from_str(body.trim()).unwrap_or(serde_json::Value::Null))
}

/// The engine's message for an API call that fails.
pub fn api_message(docker: &Docker, method: &str, path: &str) -> String {
    let (status, body) = api(docker, method, path);
    assert!(status >= 400, "{method} {path}: {status} {body}");
    body["message"].as_str().unwrap_or_else(|| panic!("{method} {path}: {body}")).to_owned()
}

/// `message` as an engine or client before distribution/reference 0.5 words it: the
/// uppercase error without the repository (`repository name must be lowercase`). Current
/// docker, and strata, name it (`repository name (library/UPPER) must be lowercase`).
pub fn without_repository(message: &str) -> String {
    match (message.find("repository name ("), message.find(") must be lowercase")) {
        (Some(a), Some(b)) if a < b => format!("{}repository name{}", &message[..a], &message[b + 1..]),
        _ => message.to_owned(),
    }
}

/// Whether two messages are the same, allowing for [`without_repository`].
pub fn same_message(docker: &str, strata: &str) -> bool {
    docker == strata || docker == without_repository(strata)
}
