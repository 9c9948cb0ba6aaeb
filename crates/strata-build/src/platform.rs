//! Which platforms' programs `RUN` can execute on this machine: the host's own, the
//! 32-bit sibling a 64-bit kernel runs natively (`386` on `amd64`, `arm` on `arm64`),
//! and any architecture with an enabled binfmt_misc handler (`qemu-aarch64`...), as
//! `docker run --platform` needs.

use std::path::Path;

use strata_spec::Platform;

/// Where the kernel lists binfmt_misc handlers.
const BINFMT_MISC: &str = "/proc/sys/fs/binfmt_misc";

/// `Ok` when programs of `platform` run here; otherwise why not (for an error message).
pub(crate) fn can_run(platform: &Platform) -> Result<(), String> {
    can_run_on(platform, &Platform::host(), Path::new(BINFMT_MISC))
}

fn can_run_on(platform: &Platform, host: &Platform, binfmt: &Path) -> Result<(), String> {
    let want = platform.normalized();
    if want.architecture.is_empty() || host.matches(&Platform { variant: None, ..want.clone() }) {
        return Ok(());
    }
    if want.os != host.os {
        return Err(format!("this is a {host} machine, and {} programs do not run on it", want.os));
    }
    let native = matches!(
        (host.architecture.as_str(), want.architecture.as_str()),
        ("amd64", "386") | ("arm64", "arm") | ("ppc64", "ppc64le") | ("s390x", "s390")
    );
    let handler = qemu_name(&want.architecture);
    if native || handler.is_some_and(|h| binfmt_enabled(binfmt, h)) {
        return Ok(());
    }
    Err(match handler {
        Some(h) => format!(
            "this is a {host} machine with no binfmt_misc handler for {} (register an emulator such as {h}, \
             e.g. with qemu-user-static), or build for {host}",
            want.architecture
        ),
        None => format!("this is a {host} machine; build for {host}"),
    })
}

/// The binfmt_misc name qemu-user-static registers for a Go architecture.
fn qemu_name(arch: &str) -> Option<&'static str> {
    Some(match arch {
        "amd64" => "qemu-x86_64",
        "386" => "qemu-i386",
        "arm64" => "qemu-aarch64",
        "arm" => "qemu-arm",
        "ppc64le" => "qemu-ppc64le",
        "s390x" => "qemu-s390x",
        "riscv64" => "qemu-riscv64",
        "mips64le" => "qemu-mips64el",
        "loong64" => "qemu-loongarch64",
        _ => return None,
    })
}

/// Whether binfmt_misc has the handler `name`, enabled (its file's first line).
fn binfmt_enabled(binfmt: &Path, name: &str) -> bool {
    std::fs::read_to_string(binfmt.join(name)).is_ok_and(|s| s.lines().next() == Some("enabled"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_runs_where() {
        let dir = tempfile::tempdir().unwrap();
        let amd64 = Platform::parse("linux/amd64").unwrap();
        let p = |s: &str| Platform::parse(s).unwrap();
        for (want, ok) in [
            ("linux/amd64", true),
            ("linux/amd64/v3", true),
            ("linux/386", true),
            ("linux/arm64", false),
            ("linux/arm/v7", false),
            ("windows/amd64", false),
            ("linux/mips", false),
        ] {
            assert_eq!(can_run_on(&p(want), &amd64, dir.path()).is_ok(), ok, "{want}");
        }
        let err = can_run_on(&p("linux/arm64"), &amd64, dir.path()).unwrap_err();
        assert!(err.contains("qemu-aarch64"), "{err}");
        // An emulator registered: arm64 runs; a disabled one does not count.
        std::fs::write(dir.path().join("qemu-aarch64"), "enabled\ninterpreter /usr/bin/qemu-aarch64-static\n").unwrap();
        std::fs::write(dir.path().join("qemu-arm"), "disabled\ninterpreter /usr/bin/qemu-arm-static\n").unwrap();
        assert!(can_run_on(&p("linux/arm64"), &amd64, dir.path()).is_ok());
        assert!(can_run_on(&p("linux/arm/v7"), &amd64, dir.path()).is_err());
        assert!(can_run_on(&p("linux/arm/v7"), &p("linux/arm64"), dir.path()).is_ok());
    }
}
