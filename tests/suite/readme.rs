//! The README is the package's page on GitHub, crates.io and docs.rs: it renders the same on
//! all three, and its feature table is Cargo.toml's.

use std::fmt::Write as _;

// Not in `common`: only the packages that check a README need its Markdown parser.
#[path = "../common/readme.rs"]
mod checker;

use checker::{assert_the_checker_finds_faults, rendering_faults};

const README: &str = include_str!("../../README.md");
const MANIFEST: &str = include_str!("../../Cargo.toml");

/// Where the generated table goes in the README.
const TABLE_START: &str = "<!-- features: generated from Cargo.toml; UPDATE_README=1 cargo test --all-features readme -->\n";
const TABLE_END: &str = "<!-- end of features -->";

#[test]
fn the_readme_has_nothing_only_rustdoc_renders() {
    assert_the_checker_finds_faults();
    assert_eq!(rendering_faults(README), Vec::<String>::new());
}

#[test]
fn the_readme_opens_with_cargo_add_then_the_handler() {
    let first_code = README.split("```").nth(1).expect("a code block");
    assert_eq!(
        first_code,
        "sh\ncargo add authgear-webhook --features axum\n"
    );
    let handler = README.split("```").nth(3).expect("a second code block");
    assert!(handler.starts_with("rust"), "{handler}");
    assert!(handler.contains("VerifySignatureLayer"), "{handler}");
}

/// Cargo.toml's features with their `##` comments, as a Markdown table: the feature, what it
/// adds, and the features and crates it turns on.
fn feature_table(manifest: &str) -> String {
    let features = manifest
        .split("\n[features]\n")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("a [features] section");
    let mut table = String::from("| feature | what it adds | turns on |\n| --- | --- | --- |\n");
    let mut doc = Vec::new();
    let mut lines = features.lines();
    while let Some(line) = lines.next() {
        if let Some(text) = line.strip_prefix("##") {
            doc.push(text.trim());
            continue;
        }
        let Some((name, value)) = line.split_once(" = ") else {
            continue;
        };
        let mut value = value.to_owned();
        while !value.contains(']') {
            value.push_str(lines.next().expect("the feature's closing bracket"));
        }
        assert!(
            !doc.is_empty(),
            "feature `{name}` has no `##` comment in Cargo.toml"
        );
        let turns_on: Vec<String> = value
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(|item| item.trim().trim_matches('"'))
            .filter(|item| !item.is_empty())
            .map(|item| match item.strip_prefix("dep:") {
                Some(dependency) => dependency.to_owned(),
                None if item.contains('/') => item.replace('/', " `") + "`",
                None => format!("`{item}`"),
            })
            .collect();
        let name = if name == "default" {
            "(default)".to_owned()
        } else {
            format!("`{name}`")
        };
        writeln!(
            table,
            "| {name} | {} | {} |",
            doc.join(" "),
            turns_on.join(", ")
        )
        .expect("write");
        doc.clear();
    }
    table
}

#[test]
fn the_readme_feature_table_is_cargo_tomls() {
    let table = feature_table(MANIFEST);
    assert!(table.contains("| `inbox-sqlite` |"), "{table}");
    assert!(table.contains("rusqlite"), "{table}");
    let (before, rest) = README
        .split_once(TABLE_START)
        .expect("the table's start mark");
    let (written, after) = rest.split_once(TABLE_END).expect("the table's end mark");
    if written != table {
        if std::env::var_os("UPDATE_README").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
            std::fs::write(
                path,
                format!("{before}{TABLE_START}{table}{TABLE_END}{after}"),
            )
            .expect("write README.md");
        }
        panic!(
            "README.md's feature table is not Cargo.toml's; \
             `UPDATE_README=1 cargo test --all-features readme` rewrites it:\n{table}"
        );
    }
}
