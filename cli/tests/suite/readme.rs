//! The tool's README is its page on crates.io: it renders there as it does on GitHub.

// Not in `common`: only the packages that check a README need its Markdown parser.
#[path = "../../../tests/common/readme.rs"]
mod checker;

use checker::{assert_the_checker_finds_faults, rendering_faults};

#[test]
fn the_readme_has_nothing_only_rustdoc_renders() {
    assert_the_checker_finds_faults();
    let readme = include_str!("../../README.md");
    assert!(
        readme.contains("cargo install authgear-webhook-cli"),
        "{readme}"
    );
    assert_eq!(rendering_faults(readme), Vec::<String>::new());
}
