//! Package inventories against the package managers' own answers.

use std::fmt::Write as _;
use std::process::Command;

use strata_scan::{Inventory, Kind, ScanOptions, Warning};

use crate::fixture::{image, lines, run, store, write};

/// A dpkg status database of `n` packages with the versions dpkg finds hard (epochs,
/// `~`, `+`, revisions or none), some with a `Source` naming another package or
/// version, and one `config-files` package (which dpkg-query lists, with `db:Status-Abbrev`
/// `rc`, but which is not installed).
fn dpkg_status(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let version = match i % 5 {
            0 => format!("1:2.{i}~rc1-1"),
            1 => format!("{i}.0-1+deb12u{i}"),
            2 => format!("0.{i}"),
            3 => format!("3.{i}.1-2ubuntu0.{i}"),
            _ => format!("2:{i}.9+dfsg-3~bpo12+1"),
        };
        let arch = if i % 7 == 0 { "all" } else { "amd64" };
        write!(s, "Package: pkg{i}\nStatus: install ok installed\nPriority: optional\nArchitecture: {arch}\n").unwrap();
        match i % 3 {
            0 => writeln!(s, "Source: src{}", i / 3).unwrap(),
            1 => writeln!(s, "Source: src{} (9.{i}-1)", i / 3).unwrap(),
            _ => {}
        }
        write!(s, "Version: {version}\nDescription: package {i}\n a longer description\n .\n more\n\n").unwrap();
    }
    s.push_str("Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0-1\n\n");
    s
}

#[test]
fn dpkg_equals_dpkg_query() {
    if !strata_testkit::require_tool("dpkg-query") {
        return;
    }
    let (dir, store) = store();
    let base = dir.path().join("base");
    write(&base, "etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n");
    write(&base, "var/lib/dpkg/status", dpkg_status(200));
    for i in 0..200 {
        let arch = if i % 7 == 0 { "all" } else { "amd64" };
        let list = if i % 2 == 0 { format!("pkg{i}:{arch}.list") } else { format!("pkg{i}.list") };
        write(&base, &format!("var/lib/dpkg/info/{list}"), format!("/.\n/usr\n/usr/bin\n/usr/bin/tool{i}\n"));
        write(&base, &format!("usr/bin/tool{i}"), format!("tool {i}\n"));
    }
    // A second layer upgrades pkg3's file and adds a distroless-style record.
    let upper = dir.path().join("upper");
    write(&upper, "usr/bin/tool3", "tool 3, patched\n");
    write(
        &upper,
        "var/lib/dpkg/status.d/extra",
        "Package: extra\nVersion: 1.0-1\nArchitecture: amd64\nSource: extra-src\n",
    );
    write(&upper, "var/lib/dpkg/status.d/extra.md5sums", "0123456789abcdef0123456789abcdef  usr/share/extra/x\n");
    write(&upper, "usr/share/extra/x", "x");
    let img = image(&store, "deb:1", &[&base, &upper]);

    let inv = Inventory::of_image(&img, &ScanOptions::default()).unwrap();
    let unpacked = dir.path().join("c");
    let c = img.unpack(&unpacked).unwrap();
    let rootfs = c.rootfs();
    let want = run(Command::new("dpkg-query")
        .arg(format!("--admindir={}", rootfs.join("var/lib/dpkg").display()))
        .args(["-W", "-f", "${db:Status-Abbrev} ${Package} ${Version} ${Architecture}\n"]));
    // dpkg-query lists config-files packages (`rc`); the inventory holds installed ones.
    let want: Vec<String> =
        want.lines().filter(|l| l.starts_with("ii")).map(|l| l.get(4..).unwrap_or_default().to_owned()).collect();
    let got: Vec<String> = inv
        .packages
        .iter()
        .filter(|p| p.location == "var/lib/dpkg/status")
        .map(|p| format!("{} {} {}", p.name, p.version, p.arch.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(lines(&got.join("\n")), lines(&want.join("\n")));
    assert_eq!(got.len(), 200);

    let by = |n: &str| inv.packages.iter().find(|p| p.name == n).unwrap();
    assert_eq!(by("pkg3").files, ["usr/bin/tool3"]);
    assert_eq!((by("pkg3").layer, by("pkg3").changed_in.as_slice()), (Some(0), &[1][..]));
    assert_eq!((by("pkg4").layer, by("pkg4").changed_in.as_slice()), (Some(0), &[][..]));
    assert_eq!(by("pkg1").source.as_deref(), Some("src0"));
    assert_eq!(by("pkg1").source_version.as_deref(), Some("9.1-1"));
    assert_eq!(by("pkg0").purl, "pkg:deb/debian/pkg0@1%3A2.0~rc1-1?arch=all&distro=debian-12&upstream=src0");
    let extra = by("extra");
    assert_eq!(extra.layer, Some(1));
    assert_eq!(extra.files, ["usr/share/extra/x"]);
    assert_eq!(inv.distro.as_ref().unwrap().id, "debian");

    // The same answer from the unpacked tree, and from the final tree alone.
    let from_dir = Inventory::of_root(&strata_scan::DirRoot::new(&rootfs)).unwrap();
    let names = |i: &Inventory| {
        i.packages.iter().map(|p| (p.name.clone(), p.version.clone(), p.files.clone())).collect::<Vec<_>>()
    };
    assert_eq!(names(&from_dir), names(&inv));
    let quick = Inventory::of_image(&img, &ScanOptions::default().layer_history(false)).unwrap();
    assert_eq!(names(&quick), names(&inv));
}

#[test]
fn apk_installed() {
    let (dir, store) = store();
    let base = dir.path().join("base");
    write(&base, "etc/os-release", "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n");
    let db = "C:Q1abc=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nS:383152\nI:622592\nT:the musl c library\nU:https://musl.libc.org/\nL:MIT\no:musl\nm:Maintainer\nt:1700000000\nc:0123\nF:lib\nR:ld-musl-x86_64.so.1\nZ:Q1x=\nR:libc.musl-x86_64.so.1\na:0:0:777\n\n\
C:Q1def=\nP:busybox-binsh\nV:1.36.1-r15\nA:x86_64\nL:GPL-2.0-only\no:busybox\nF:bin\nR:sh\n\n";
    write(&base, "lib/apk/db/installed", db);
    write(&base, "lib/ld-musl-x86_64.so.1", "ld");
    write(&base, "lib/libc.musl-x86_64.so.1", "libc");
    write(&base, "bin/sh", "sh");
    let img = image(&store, "alpine:1", &[&base]);
    let inv = Inventory::of_image(&img, &ScanOptions::default()).unwrap();
    let got: Vec<_> = inv
        .packages
        .iter()
        .map(|p| (p.kind, p.name.as_str(), p.version.as_str(), p.source.as_deref(), p.license.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (Kind::Apk, "busybox-binsh", "1.36.1-r15", Some("busybox"), Some("GPL-2.0-only")),
            (Kind::Apk, "musl", "1.2.4_git20230717-r4", Some("musl"), Some("MIT")),
        ]
    );
    assert_eq!(inv.packages[1].files, ["lib/ld-musl-x86_64.so.1", "lib/libc.musl-x86_64.so.1"]);
    assert_eq!(
        inv.packages[0].purl,
        "pkg:apk/alpine/busybox-binsh@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1&upstream=busybox"
    );
}

/// Build `name`-`version`-`release` as a noarch RPM owning `/opt/<name>/file`.
fn rpmbuild(top: &std::path::Path, name: &str, version: &str, release: &str, epoch: Option<u32>) -> std::path::PathBuf {
    let epoch = epoch.map(|e| format!("Epoch: {e}\n")).unwrap_or_default();
    let spec = format!(
        "Name: {name}\nVersion: {version}\nRelease: {release}\n{epoch}Summary: test\nLicense: MIT and BSD\nBuildArch: noarch\n\
         %description\ntest package\n%install\nmkdir -p %{{buildroot}}/opt/{name}\necho {name} > %{{buildroot}}/opt/{name}/file\n\
         %files\n/opt/{name}/file\n"
    );
    std::fs::create_dir_all(top).unwrap();
    let spec_path = top.join(format!("{name}.spec"));
    std::fs::write(&spec_path, spec).unwrap();
    run(Command::new("rpmbuild")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .args(["--define", "_build_id_links none", "-bb", "--nodeps", "--quiet"])
        .arg(&spec_path));
    top.join(format!("RPMS/noarch/{name}-{version}-{release}.noarch.rpm"))
}

#[test]
fn rpm_sqlite_equals_rpm_qa() {
    if !strata_testkit::require_tool("rpmbuild") || !strata_testkit::require_tool("rpm") {
        return;
    }
    let (dir, store) = store();
    let top = dir.path().join("rpmbuild");
    let pkgs = [
        rpmbuild(&top, "alpha", "1.0", "1.fc39", None),
        rpmbuild(&top, "beta", "2.0~rc1", "3", Some(2)),
        rpmbuild(&top, "gamma", "0.9.1", "7.el9", None),
    ];
    let root = dir.path().join("root");
    write(&root, "etc/os-release", "ID=fedora\nVERSION_ID=39\n");
    run(Command::new("rpm")
        .arg("--root")
        .arg(&root)
        .args(["--dbpath", "/usr/lib/sysimage/rpm", "-i", "--nodeps", "--noscripts", "--nosignature"])
        .args(&pkgs));
    let want = run(Command::new("rpm").arg("--root").arg(&root).args([
        "--dbpath",
        "/usr/lib/sysimage/rpm",
        "-qa",
        "--qf",
        "%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH} %{LICENSE}\n",
    ]));
    assert!(root.join("usr/lib/sysimage/rpm/rpmdb.sqlite").is_file(), "rpm did not write an SQLite database");
    let img = image(&store, "fedora:1", &[&root]);
    let inv = Inventory::of_image(&img, &ScanOptions::default()).unwrap();
    let got: Vec<String> = inv
        .packages
        .iter()
        .map(|p| {
            let evr = if p.version.contains(':') { p.version.clone() } else { format!("0:{}", p.version) };
            format!("{} {evr} {} {}", p.name, p.arch.as_deref().unwrap_or(""), p.license.as_deref().unwrap_or(""))
        })
        .collect();
    assert_eq!(lines(&got.join("\n")), lines(&want));
    let beta = inv.packages.iter().find(|p| p.name == "beta").unwrap();
    assert_eq!(beta.files, ["opt/beta/file"]);
    assert_eq!(beta.source.as_deref(), Some("beta"));
    assert_eq!(
        beta.purl,
        "pkg:rpm/fedora/beta@2.0~rc1-3?arch=noarch&distro=fedora-39&epoch=2&upstream=beta-2.0~rc1-3.src.rpm"
    );
}

#[test]
fn berkeley_db_rpmdb_is_reported() {
    let (dir, store) = store();
    let root = dir.path().join("root");
    // Berkeley DB hash magic at offset 12: what rpm before 4.16 wrote.
    let mut bdb = vec![0u8; 4096];
    bdb[12..16].copy_from_slice(&0x0006_1561u32.to_le_bytes());
    write(&root, "var/lib/rpm/Packages", bdb);
    let img = image(&store, "centos:7", &[&root]);
    let inv = Inventory::of_image(&img, &ScanOptions::default()).unwrap();
    assert!(inv.packages.is_empty());
    assert_eq!(inv.warnings, [Warning::UnreadableRpmDb { path: "var/lib/rpm/Packages".into() }]);
    assert!(inv.warnings[0].to_string().contains("Berkeley DB"));
}

#[test]
fn python_dist_info_equals_importlib_metadata() {
    if !strata_testkit::require_tool("python3") {
        return;
    }
    let (dir, store) = store();
    let root = dir.path().join("root");
    let site = "usr/lib/python3/dist-packages";
    for (name, version, license) in [("Requests_Toolbelt", "1.0.0", "Apache 2.0"), ("zope.interface", "6.0rc1", "")] {
        let di = format!("{site}/{}-{version}.dist-info", name.replace('-', "_"));
        let lic = if license.is_empty() {
            "Classifier: License :: OSI Approved :: Zope Public License\n".to_owned()
        } else {
            format!("License: {license}\n")
        };
        write(
            &root,
            &format!("{di}/METADATA"),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{lic}\nlong description\n"),
        );
        let module = name.to_lowercase().replace(['-', '.'], "_");
        write(&root, &format!("{site}/{module}/__init__.py"), "");
        write(
            &root,
            &format!("{di}/RECORD"),
            format!(
                "{module}/__init__.py,sha256=x,0\n\"{di_name}/RECORD\",,\n../../../bin/{module},,\n",
                di_name = di.rsplit('/').next().unwrap()
            ),
        );
        write(&root, &format!("usr/bin/{module}"), "#!/usr/bin/python3\n");
    }
    let img = image(&store, "py:1", &[&root]);
    let inv = Inventory::of_image(&img, &ScanOptions::default()).unwrap();
    let script = "import importlib.metadata as m, sys, os\n\
        for d in m.distributions(path=[sys.argv[1]]):\n\
        \x20   files = sorted(os.path.normpath(os.path.join(sys.argv[2], str(f))) for f in d.files)\n\
        \x20   print(d.metadata['Name'], d.version, ' '.join(files))\n";
    let want = run(Command::new("python3").args(["-c", script]).arg(root.join(site)).arg(site));
    let got: Vec<String> = inv
        .packages
        .iter()
        .map(|p| format!("{} {} {}", p.name, p.version, p.files.iter().collect::<Vec<_>>().join(" ")))
        .collect();
    assert_eq!(lines(&got.join("\n")), lines(&want));
    let rt = inv.packages.iter().find(|p| p.name == "Requests_Toolbelt").unwrap();
    assert_eq!((rt.purl.as_str(), rt.license.as_deref()), ("pkg:pypi/requests-toolbelt@1.0.0", Some("Apache 2.0")));
    let zi = inv.packages.iter().find(|p| p.name == "zope.interface").unwrap();
    assert_eq!(zi.license.as_deref(), Some("Zope Public License"));
}

#[test]
fn npm_node_modules_equal_npm_ls() {
    if !strata_testkit::require_tool("npm") {
        return;
    }
    let (dir, store) = store();
    let root = dir.path().join("root");
    let app = root.join("srv/app");
    write(
        &root,
        "srv/app/package.json",
        r#"{"name":"app","version":"1.0.0","dependencies":{"left-pad":"1.3.0","@scope/util":"2.0.0-beta.1"}}"#,
    );
    write(
        &root,
        "srv/app/node_modules/left-pad/package.json",
        r#"{"name":"left-pad","version":"1.3.0","license":"WTFPL","dependencies":{"inner":"0.1.0"}}"#,
    );
    write(&root, "srv/app/node_modules/left-pad/lib/package.json", r#"{"name":"not-a-package","version":"0"}"#);
    write(
        &root,
        "srv/app/node_modules/left-pad/node_modules/inner/package.json",
        r#"{"name":"inner","version":"0.1.0","license":{"type":"MIT"}}"#,
    );
    write(&root, "srv/app/node_modules/@scope/util/package.json", r#"{"name":"@scope/util","version":"2.0.0-beta.1"}"#);
    let img = image(&store, "node:1", &[&root]);
    let inv = Inventory::of_image(&img, &ScanOptions::default()).unwrap();
    let ls = run(Command::new("npm").args(["ls", "--all", "--json", "--offline"]).current_dir(&app));
    let ls: serde_json::Value = serde_json::from_str(&ls).unwrap();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        if let Some(deps) = v["dependencies"].as_object() {
            for (name, d) in deps {
                out.push(format!("{name} {}", d["version"].as_str().unwrap_or("")));
                walk(d, out);
            }
        }
    }
    let mut want = Vec::new();
    walk(&ls, &mut want);
    let got: Vec<String> = inv.packages.iter().map(|p| format!("{} {}", p.name, p.version)).collect();
    assert_eq!(lines(&got.join("\n")), lines(&want.join("\n")));
    let util = inv.packages.iter().find(|p| p.name == "@scope/util").unwrap();
    assert_eq!(util.purl, "pkg:npm/%40scope/util@2.0.0-beta.1");
    let inner = inv.packages.iter().find(|p| p.name == "inner").unwrap();
    assert_eq!(inner.license.as_deref(), Some("MIT"));
}
