//! Users and groups by name, from the image's own `/etc/passwd` and `/etc/group` (never
//! the host's), for `COPY --chown`, `ADD --chown` and the user `RUN` runs as.

use crate::error::{Error, Result};
use crate::tree::{TreeView, read_in_root};

/// One `/etc/passwd` line: name, uid, primary gid, home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

fn passwd(view: &dyn TreeView) -> Result<Vec<PasswdEntry>> {
    let text = read_in_root(view, "/etc/passwd")?.unwrap_or_default();
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect())
}

fn group_id(view: &dyn TreeView, name: &str) -> Result<Option<u32>> {
    let text = read_in_root(view, "/etc/group")?.unwrap_or_default();
    Ok(String::from_utf8_lossy(&text).lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&name)).then(|| f.get(2)?.parse().ok()).flatten()
    }))
}

/// `--chown=user[:group]`: numbers as they are, names through the image's files. A
/// user alone gives the group with the same number, as docker does.
pub(crate) fn chown_ids(view: &dyn TreeView, spec: &str) -> Result<(u32, u32)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid = match user.parse::<u32>() {
        Ok(n) => n,
        Err(_) => passwd(view)?
            .into_iter()
            .find(|e| e.name == user)
            .map(|e| e.uid)
            .ok_or_else(|| Error::UnknownUser { what: "user", name: user.to_owned(), file: "/etc/passwd" })?,
    };
    let gid = match group {
        None => uid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group_id(view, g)?.ok_or_else(|| Error::UnknownUser {
                what: "group",
                name: g.to_owned(),
                file: "/etc/group",
            })?,
        },
    };
    Ok((uid, gid))
}

/// The user a `RUN` runs as (`USER`): uid, gid and home. A user alone gets its primary
/// group (0 for a number not in `/etc/passwd`), as runc does.
pub(crate) fn run_user(view: &dyn TreeView, spec: &str) -> Result<(u32, u32, String)> {
    if spec.is_empty() {
        let home = passwd(view)?.into_iter().find(|e| e.uid == 0).map(|e| e.home).unwrap_or_else(|| "/root".into());
        return Ok((0, 0, home));
    }
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entries = passwd(view)?;
    let entry = match user.parse::<u32>() {
        Ok(n) => entries.iter().find(|e| e.uid == n).cloned(),
        Err(_) => Some(entries.iter().find(|e| e.name == user).cloned().ok_or_else(|| Error::UnknownUser {
            what: "user",
            name: user.to_owned(),
            file: "/etc/passwd",
        })?),
    };
    let uid = entry.as_ref().map(|e| e.uid).or_else(|| user.parse().ok()).unwrap_or(0);
    let gid = match group {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group_id(view, g)?.ok_or_else(|| Error::UnknownUser {
                what: "group",
                name: g.to_owned(),
                file: "/etc/group",
            })?,
        },
        None => entry.as_ref().map(|e| e.gid).unwrap_or(0),
    };
    let home = entry.map(|e| e.home).filter(|h| !h.is_empty()).unwrap_or_else(|| "/".into());
    Ok((uid, gid, home))
}
