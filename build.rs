//! Rebuild when a migration or a built-in catalog file is added: include_dir
//! only tracks the files that existed at the last build.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=catalog");
}
