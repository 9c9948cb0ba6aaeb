//! strata side by side with a real docker engine (`strata_testkit::docker`): the same
//! operation through both, the outcomes compared. Each module covers one part of
//! docker's behaviour; `docs/docker-compat.md` lists what differs and why.

mod both;
mod changes;
mod containers;
mod format;
mod ids;
mod inspect;
mod listings;
mod messages;
mod references;
mod rmi;
mod sizes;

use crate::common::Env;

/// The rows of a table as docker lays it out (and strata does too): each cell cut at the
/// columns where the header's names start, trimmed. The header is not a row.
pub fn cells(table: &str) -> Vec<Vec<String>> {
    let mut lines = table.lines();
    let header: Vec<char> = lines.next().unwrap_or_default().chars().collect();
    // A column starts where a name starts after two or more spaces (names hold single
    // spaces: `IMAGE ID`, `CREATED BY`).
    let mut starts = vec![0];
    let mut i = 0;
    while i < header.len() {
        if header[i] == ' ' {
            let run = header[i..].iter().take_while(|&&c| c == ' ').count();
            if run >= 2 && i + run < header.len() {
                starts.push(i + run);
            }
            i += run;
        } else {
            i += 1;
        }
    }
    lines
        .map(|l| {
            let chars: Vec<char> = l.chars().collect();
            (0..starts.len())
                .map(|k| {
                    let from = starts[k].min(chars.len());
                    let to = starts.get(k + 1).copied().unwrap_or(chars.len()).min(chars.len());
                    chars[from..to].iter().collect::<String>().trim().to_owned()
                })
                .collect()
        })
        .collect()
}

/// The header of a table, as its column names.
pub fn header(table: &str) -> Vec<String> {
    let first = table.lines().next().unwrap_or_default();
    first.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect()
}

/// The rows of `strata ARGS` (a table) whose first cell is `repo`.
pub fn strata_rows(env: &Env, args: &[&str], repo: &str) -> Vec<Vec<String>> {
    cells(&env.ok(args)).into_iter().filter(|r| r[0] == repo).collect()
}

/// The rows of `docker ARGS` (a table) whose first cell is `repo`.
pub fn docker_rows(docker: &strata_testkit::Docker, args: &[&str], repo: &str) -> Vec<Vec<String>> {
    cells(&docker.ok(args)).into_iter().filter(|r| r[0] == repo).collect()
}

/// Lines with their trailing spaces dropped (docker's tabwriter pads an empty last cell).
pub fn trimmed(table: &str) -> String {
    table.lines().map(str::trim_end).collect::<Vec<_>>().join("\n")
}
