//! Layers of hostile entries built from the input (names with `..`, `.`, whiteouts,
//! symlinks to `/`, `..` and the canary, hard links, devices), applied with the openat2
//! resolver and with the fallback walk: no panic, nothing outside the root changes, and
//! both resolvers give the same outcome. Then once more with a plan made from the
//! layers' headers: the same outcome again (a plan that cannot be made means the layers
//! cannot be applied).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

use strata_layer::{ApplyOptions, Error, LayerSource, Limits, Plan, Resolver, apply_layers};

const NAMES: &[&str] = &[
    "a",
    "a/b",
    "a/b/c",
    "b",
    "d/e",
    ".",
    "./",
    "/",
    "..",
    "../x",
    "a/../../x",
    "/a/b",
    ".wh.a",
    "a/.wh.b",
    ".wh..wh..opq",
    "a/.wh..wh..opq",
    ".wh..",
    ".wh...",
    ".wh.../x",
    "l",
    "l/x",
    "l/a/b",
    "m/x",
    "h",
    "CANARY/secret",
    "CANARY/new",
    "dev/x",
    "a/.wh.c",
    "l/.wh.x",
    "l/.wh..wh..opq",
];
const TARGETS: &[&str] = &[
    "a",
    "a/b",
    "/",
    "..",
    "../..",
    "../../..",
    "/CANARY",
    "/CANARY/secret",
    "CANARY/secret",
    "l",
    "m",
    ".",
    "",
    "/a/../..",
    "b",
    "l/x",
    "a/b/c",
];

fn header(out: &mut Vec<u8>, name: &[u8], typeflag: u8, link: &[u8], size: u64, mode: u32) {
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    h[100..107].copy_from_slice(format!("{mode:07o}").as_bytes());
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"13000000000");
    h[156] = typeflag;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[329..336].copy_from_slice(b"0000001");
    h[337..344].copy_from_slice(b"0000003");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    out.extend_from_slice(&h);
}

fn build(data: &[u8], canary: &str) -> Vec<Vec<u8>> {
    let rel = canary.trim_start_matches('/');
    let fix = |s: &str| s.replace("/CANARY", canary).replace("CANARY", rel).into_bytes();
    let mut layers = vec![Vec::new()];
    for chunk in data.chunks(3) {
        let [op, n, t] = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let name = fix(NAMES[usize::from(n) % NAMES.len()]);
        let target = fix(TARGETS[usize::from(t) % TARGETS.len()]);
        let out = layers.last_mut().unwrap();
        match op % 9 {
            0 => {
                header(out, &name, b'0', b"", 3, 0o644);
                out.extend_from_slice(b"abc");
                out.resize(out.len() + 509, 0);
            }
            1 => header(out, &name, b'5', b"", 0, 0o700 | u32::from(t & 0o77)),
            2 => header(out, &name, b'2', &target, 0, 0o777),
            3 => header(out, &name, b'1', &target, 0, 0o644),
            4 => header(out, &name, b'6', b"", 0, 0o600),
            5 => header(out, &name, b'3', b"", 0, 0o600),
            6 => header(out, &name, b'0', b"", 0, 0o4755),
            7 => header(out, &name, b'5', b"", 0, 0o755),
            _ => {
                if layers.len() < 4 {
                    layers.push(Vec::new());
                }
            }
        }
    }
    for l in &mut layers {
        l.extend_from_slice(&[0u8; 1024]);
    }
    layers
}

fn outcome(
    root: &std::path::Path,
    layers: &[Vec<u8>],
    resolver: Resolver,
    plan: Option<Plan>,
) -> Result<Vec<String>, String> {
    let sources: Vec<_> =
        layers.iter().enumerate().map(|(i, l)| LayerSource::new(format!("layer {i}"), &l[..])).collect();
    let mut opts = ApplyOptions::default().resolver(resolver).single_thread(true);
    if let Some(plan) = plan {
        opts = opts.plan(Arc::new(plan));
    }
    match apply_layers(root, sources, &opts) {
        Ok(_) => {
            let mut names = Vec::new();
            let mut stack = vec![root.to_path_buf()];
            while let Some(p) = stack.pop() {
                let m = std::fs::symlink_metadata(&p).unwrap();
                names.push(format!("{} {:?}", p.strip_prefix(root).unwrap().display(), m.file_type()));
                if m.is_dir() {
                    for e in std::fs::read_dir(&p).unwrap() {
                        stack.push(e.unwrap().path());
                    }
                }
            }
            names.sort();
            Ok(names)
        }
        Err(e) => Err(match e {
            Error::Apply { op, entry, source, .. } => format!("apply {op} {entry} {:?}", source.raw_os_error()),
            other => format!("{other}"),
        }),
    }
}

fuzz_target!(|data: &[u8]| {
    let sb = common::Sandbox::new();
    let layers = build(data, &sb.canary());
    let a = outcome(&sb.root, &layers, Resolver::Openat2, None);
    sb.check();
    let b = outcome(&sb.root2, &layers, Resolver::Fallback, None);
    sb.check();
    let a = a.map_err(|e| e.replace("root2", "root"));
    let b = b.map_err(|e| e.replace("root2", "root"));
    assert_eq!(a, b, "openat2 and the fallback walk disagree");
    let tars = layers.iter().enumerate().map(|(i, l)| LayerSource::new(format!("layer {i}"), std::io::Cursor::new(&l[..])));
    match Plan::from_tars(tars, &Limits::default()) {
        Err(e) => assert!(a.is_err(), "the layers apply but cannot be planned: {e}"),
        Ok(plan) => {
            // Emptied, not removed: removing it would touch the sandbox's own mtime.
            for e in std::fs::read_dir(&sb.root).unwrap() {
                let p = e.unwrap().path();
                if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                    std::fs::remove_dir_all(&p).unwrap();
                } else {
                    std::fs::remove_file(&p).unwrap();
                }
            }
            let c = outcome(&sb.root, &layers, Resolver::Openat2, Some(plan));
            sb.check();
            assert_eq!(a, c, "planned and unplanned unpacks disagree");
        }
    }
});
