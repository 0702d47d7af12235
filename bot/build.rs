//! Links the `deckhand` binary with packed relative relocations (DT_RELR, glibc ≥ 2.36): the
//! table the loader reads at start shrinks from ≈ 2 MB to a few KB, and with it the pages of
//! the binary every process maps (issue 21, peak RSS).
fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
}
