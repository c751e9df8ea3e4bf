//! Embeds the example deliveries (`fixtures/events/TYPE.json`) and Authgear's response
//! schemas (`fixtures/schema/TYPE.response.schema.json`), each under its event type, from
//! the files themselves: no list of types to keep in step by hand (the library's
//! `event::BLOCKING_TYPES` and `NON_BLOCKING_TYPES` are the list; a test in
//! `src/events.rs` checks that the two agree).
//!
//! In the repository both folders link to the library's `tests/fixtures`, one copy of
//! each file; the published package holds the files themselves.

use std::{
    env,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let mut table = String::new();
    for (name, folder, suffix, what) in [
        (
            "DELIVERIES",
            "fixtures/events",
            ".json",
            "An example delivery of each type",
        ),
        (
            "SCHEMAS",
            "fixtures/schema",
            ".response.schema.json",
            "Authgear's response schema for each blocking type",
        ),
    ] {
        let entries = files(&manifest_dir.join(folder), suffix);
        writeln!(table, "/// {what} (`{folder}`), by type.").expect("a String");
        writeln!(table, "const {name}: &[(&str, &str)] = &[").expect("a String");
        for (event_type, path) in entries {
            writeln!(table, "    ({event_type:?}, include_str!({path:?})),").expect("a String");
        }
        writeln!(table, "];").expect("a String");
        println!("cargo::rerun-if-changed={folder}");
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("fixtures.rs");
    fs::write(out, table).expect("write OUT_DIR/fixtures.rs");
}

/// The files in `dir` whose name ends in `suffix`, as (the name without it, the absolute
/// path), sorted by name. Not the subfolders (edge cases) nor the other files (README,
/// generator; `BaseHookResponseSchema.json`, which each type's schema holds already).
fn files(dir: &Path, suffix: &str) -> Vec<(String, String)> {
    let read = fs::read_dir(dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
    let mut files: Vec<_> = read
        .map(|entry| entry.expect("a folder entry").path())
        .filter(|path| path.is_file())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.strip_suffix(suffix)?.to_owned();
            Some((name, path.to_str()?.to_owned()))
        })
        .collect();
    files.sort();
    files
}
