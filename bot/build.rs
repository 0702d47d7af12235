//! Links the `deckhand` binary with packed relative relocations (DT_RELR) where the C library
//! that will load it understands them: the table the loader reads at start shrinks from
//! ≈ 2 MB to a few KB, and with it the pages every process maps (issue 21, peak RSS).
//!
//! DT_RELR needs glibc ≥ 2.36 at run time; a binary linked with it does not start on an older
//! one. A native build is taken to run where it is built (the image builds on Debian 12, its
//! base); a cross build, or a C library that is not glibc ≥ 2.36, keeps the classic table.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if native_glibc_with_relr() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

fn native_glibc_with_relr() -> bool {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("HOST") != var("TARGET")
        || var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
    {
        return false;
    }
    // `getconf GNU_LIBC_VERSION` prints e.g. "glibc 2.36".
    let Ok(output) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&output.stdout);
    glibc_at_least(&text, (2, 36))
}

fn glibc_at_least(getconf: &str, wanted: (u32, u32)) -> bool {
    let Some(version) = getconf.trim().strip_prefix("glibc ") else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= wanted,
        _ => false,
    }
}
