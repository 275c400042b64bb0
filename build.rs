//! Rebuild when a migration, a built-in catalog file or a dashboard asset is
//! added: include_dir only tracks the files that existed at the last build.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=catalog");
    println!("cargo:rerun-if-changed=dashboard");
}
