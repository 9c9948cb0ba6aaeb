//! Builds the shim over ISA-L's inflate (see `csrc/isal_shim.c`) when the system has
//! libisal's headers (Debian: `libisal-dev`), and sets `cfg(strata_isal)`. The shim
//! loads libisal when a gzip layer is first inflated; without it then, zlib-rs inflates.
//! Without the headers, or with `STRATA_NO_ISAL` set, gzip layers are inflated by
//! zlib-rs alone: the same bytes, about 1.4x slower on x86-64.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(strata_isal)");
    println!("cargo::rerun-if-changed=csrc/isal_shim.c");
    println!("cargo::rerun-if-env-changed=STRATA_NO_ISAL");
    if std::env::var_os("STRATA_NO_ISAL").is_some() {
        return;
    }
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let mut build = cc::Build::new();
    build.file("csrc/isal_shim.c").warnings(true).cargo_warnings(false);
    match build.try_compile("strata_isal_shim") {
        Ok(()) => {
            // libisal itself is loaded at run time (dlopen, in libc since glibc 2.34;
            // libdl before, which --as-needed leaves out where libc has it).
            println!("cargo::rustc-link-lib=dl");
            println!("cargo::rustc-cfg=strata_isal");
        }
        Err(e) => {
            println!(
                "cargo::warning=libisal not found ({e}): gzip layers are inflated by zlib-rs alone (install libisal-dev for ISA-L)"
            );
        }
    }
}
