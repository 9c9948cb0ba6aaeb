//! What strata keeps about a container (`containers/<id>/container.json`), and the
//! options it was created with, parsed from docker's flag syntax.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use strata_spec::Digest;

use crate::error::{Error, Result};

/// Format version of `container.json`.
pub(crate) const RECORD_VERSION: u32 = 1;

/// A container as strata records it. Read with [`Containers::list`](super::Containers::list)
/// or [`Containers::get`](super::Containers::get), which also check that a container
/// recorded as running still is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContainerRecord {
    /// Format version (1).
    pub version: u32,
    /// The id: 64 hex digits.
    pub id: String,
    /// The name (unique in the store).
    pub name: String,
    /// The image as it was named at create (`tomcat:latest`).
    pub image: String,
    /// The image's id.
    pub image_id: Digest,
    /// The process: entrypoint and command, as run.
    pub command: Vec<String>,
    /// When it was created, RFC 3339.
    pub created: String,
    /// The OCI runtime that runs it (runc, crun, youki).
    pub runtime: PathBuf,
    /// How it runs (what `docker run` was told).
    pub config: RunConfig,
    /// Where it is in its life.
    pub state: State,
}

/// What a container was created with, beyond its runtime configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunConfig {
    /// `-t`: the process has a terminal.
    pub tty: bool,
    /// `-i`: the process's stdin stays open (a pipe strata feeds).
    pub interactive: bool,
    /// `--rm`: removed when it exits.
    pub auto_remove: bool,
    /// `--network`.
    pub network: Network,
    /// `-p`: published ports.
    pub ports: Vec<PortMapping>,
    /// `-v`: bind mounts.
    pub mounts: Vec<BindMount>,
    /// The signal `stop` sends first (`Config.StopSignal`, else `SIGTERM`).
    pub stop_signal: Option<String>,
}

/// Where a container is in its life.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct State {
    /// `created`, `running` or `exited`.
    pub status: Status,
    /// The container's first process (host pid), while running.
    pub pid: Option<i32>,
    /// The monitor that waits for it, while running: pid and start time (clock ticks
    /// since boot, from `/proc/PID/stat`, so a reused pid is not taken for it).
    pub monitor: Option<(i32, u64)>,
    /// The start time of `pid` (clock ticks since boot).
    pub pid_start: Option<u64>,
    /// When it last started, RFC 3339.
    pub started: Option<String>,
    /// When it last exited, RFC 3339.
    pub finished: Option<String>,
    /// Its exit code: the process's, 128 + the signal that killed it, 127 or 126 when
    /// the command could not be run, 255 when it is unknown (its monitor died first).
    pub exit_code: Option<i32>,
    /// Why it could not be started, if it could not.
    pub error: Option<String>,
}

/// The life of a container, as docker names it.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// Made, never started (or it failed to start).
    #[default]
    Created,
    /// Its process runs.
    Running,
    /// Its process exited.
    Exited,
}

impl Status {
    /// docker's word: `created`, `running`, `exited`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }
}

/// The network of a container.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Network {
    /// A network namespace of its own with only loopback (docker's `none`); published
    /// ports reach it through strata's forwarder.
    #[default]
    None,
    /// The host's network namespace (published ports are ignored, as in docker).
    Host,
}

impl Network {
    /// Parse `--network`: `none` or `host`.
    pub fn parse(s: &str) -> Result<Network> {
        match s {
            "none" | "" => Ok(Network::None),
            "host" => Ok(Network::Host),
            other => Err(Error::InvalidContainerOption {
                option: "--network",
                value: other.to_owned(),
                reason: "strata has the networks none (a namespace with loopback, the default) and host".into(),
            }),
        }
    }

    /// Its name: `none` or `host`.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::None => "none",
            Network::Host => "host",
        }
    }
}

/// A published port: `-p [IP:]HOST:CONTAINER[/tcp]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortMapping {
    /// The host address listened on (default `0.0.0.0`).
    pub host_ip: IpAddr,
    /// The host port.
    pub host_port: u16,
    /// The container port (on the container's loopback).
    pub container_port: u16,
}

impl PortMapping {
    /// Parse docker's `-p` syntax: `8080:80`, `127.0.0.1:8080:80`, with `/tcp`
    /// optional. UDP, ranges and a port chosen by the system are not supported.
    pub fn parse(s: &str) -> Result<PortMapping> {
        let bad = |reason: &str| Error::InvalidContainerOption {
            option: "--publish",
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        let spec = match s.rsplit_once('/') {
            Some((rest, "tcp")) => rest,
            Some((_, proto)) => return Err(bad(&format!("protocol {proto:?}: strata publishes tcp ports only"))),
            None => s,
        };
        let port = |p: &str| -> Result<u16> {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(bad(&format!("{p:?} is not a port number (1-65535; ranges are not supported)"))),
            }
        };
        let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
        match parts.as_slice() {
            [ctr, host] => Ok(PortMapping {
                host_ip: IpAddr::from([0, 0, 0, 0]),
                host_port: port(host)?,
                container_port: port(ctr)?,
            }),
            [ctr, host, ip] => {
                let ip = ip.trim_start_matches('[').trim_end_matches(']');
                Ok(PortMapping {
                    host_ip: ip.parse().map_err(|_| bad(&format!("{ip:?} is not an IP address")))?,
                    host_port: port(host)?,
                    container_port: port(ctr)?,
                })
            }
            _ => Err(bad("want HOST_PORT:CONTAINER_PORT (a port chosen by the system is not supported)")),
        }
    }

    /// docker's text in `ps`: `0.0.0.0:8080->80/tcp`.
    pub fn display(&self) -> String {
        let ip = match self.host_ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        format!("{ip}:{}->{}/tcp", self.host_port, self.container_port)
    }
}

/// A bind mount: `-v /host/path:/container/path[:ro]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BindMount {
    /// The host directory or file (absolute).
    pub source: PathBuf,
    /// Where it appears in the container (absolute).
    pub destination: String,
    /// Mounted read-only.
    pub read_only: bool,
}

impl BindMount {
    /// Parse docker's `-v` syntax for bind mounts: `/host:/ctr`, `/host:/ctr:ro` (or
    /// `:rw`). Named volumes are not supported: the source must be an absolute path.
    pub fn parse(s: &str) -> Result<BindMount> {
        let bad = |reason: &str| Error::InvalidContainerOption {
            option: "--volume",
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        let parts: Vec<&str> = s.split(':').collect();
        let (source, destination, read_only) = match parts.as_slice() {
            [src, dst] => (*src, *dst, false),
            [src, dst, "ro"] => (*src, *dst, true),
            [src, dst, "rw"] => (*src, *dst, false),
            [_, _, mode] => return Err(bad(&format!("mode {mode:?}: want ro or rw"))),
            _ => return Err(bad("want HOST_PATH:CONTAINER_PATH[:ro]")),
        };
        if !source.starts_with('/') {
            return Err(bad("the host path must be absolute (named volumes are not supported)"));
        }
        if !destination.starts_with('/') {
            return Err(bad("the container path must be absolute"));
        }
        Ok(BindMount { source: PathBuf::from(source), destination: destination.to_owned(), read_only })
    }
}

/// Check a `-e` value: `NAME=value` (a bare `NAME` is taken from `lookup`, and dropped
/// when it has no value there, as docker does).
pub fn parse_env(s: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Option<String>> {
    match s.split_once('=') {
        Some(("", _)) => Err(Error::InvalidContainerOption {
            option: "--env",
            value: s.to_owned(),
            reason: "no variable name".into(),
        }),
        Some(_) => Ok(Some(s.to_owned())),
        None if s.is_empty() => Err(Error::InvalidContainerOption {
            option: "--env",
            value: s.to_owned(),
            reason: "no variable name".into(),
        }),
        None => Ok(lookup(s).map(|v| format!("{s}={v}"))),
    }
}

/// Check a container name as docker does: `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (two characters
/// at least).
pub fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.clone().count() >= 1 && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if first_ok && rest_ok { Ok(()) } else { Err(Error::InvalidContainerName(name.to_owned())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_like_docker() {
        let p = PortMapping::parse("8080:80").unwrap();
        assert_eq!((p.host_port, p.container_port, p.display().as_str()), (8080, 80, "0.0.0.0:8080->80/tcp"));
        let p = PortMapping::parse("127.0.0.1:3355:8080/tcp").unwrap();
        assert_eq!(p.display(), "127.0.0.1:3355->8080/tcp");
        let p = PortMapping::parse("[::1]:9000:90").unwrap();
        assert_eq!(p.display(), "[::1]:9000->90/tcp");
        for bad in ["80", "x:80", "8080:80/udp", "0:80", "1.2.3:80:80", "8080-8081:80", ""] {
            assert!(PortMapping::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mounts_envs_and_names() {
        let m = BindMount::parse("/srv/data:/data:ro").unwrap();
        assert_eq!((m.source, m.destination.as_str(), m.read_only), (PathBuf::from("/srv/data"), "/data", true));
        for bad in ["data:/data", "/a:b", "/a", "/a:/b:x"] {
            assert!(BindMount::parse(bad).is_err(), "{bad}");
        }
        let env = |k: &str| (k == "HOME").then(|| "/root".to_owned());
        assert_eq!(parse_env("A=1", env).unwrap().as_deref(), Some("A=1"));
        assert_eq!(parse_env("HOME", env).unwrap().as_deref(), Some("HOME=/root"));
        assert_eq!(parse_env("NOPE", env).unwrap(), None);
        assert!(parse_env("=1", env).is_err());
        for good in ["tc", "web_1", "a.b-c"] {
            check_name(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in ["", "t", "_a", "a/b", "a b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
