//! A README as GitHub and crates.io render it (CommonMark with tables, as a Markdown parser
//! reads it), and what of rustdoc's own syntax would show there as litter or break.

use std::cell::RefCell;

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag};

/// Everything in `markdown` that renders well only in rustdoc:
///
/// - a hidden line (`# ...` or `#` alone) in a code block rustdoc would run (fenced as
///   `rust...` or with no language, or indented): GitHub and crates.io show it;
/// - a reference with no definition, such as an intra-doc link `[`Verifier`]`: shown with
///   its brackets;
/// - a link that is not absolute: it resolves against a different base on GitHub,
///   crates.io and docs.rs, and breaks on at least one of them.
pub(crate) fn rendering_faults(markdown: &str) -> Vec<String> {
    let faults = RefCell::new(Vec::new());
    let broken = |link: pulldown_cmark::BrokenLink<'_>| {
        faults.borrow_mut().push(format!(
            "a reference with no definition: [{}]",
            link.reference
        ));
        None
    };
    let parser =
        Parser::new_with_broken_link_callback(markdown, Options::ENABLE_TABLES, Some(broken));
    let mut in_rust_code = false;
    for event in parser {
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                in_rust_code = match kind {
                    CodeBlockKind::Indented => true,
                    CodeBlockKind::Fenced(info) => {
                        let language = info.split([',', ' ']).next().unwrap_or_default();
                        language.is_empty() || language == "rust"
                    }
                };
            }
            Event::End(_) => in_rust_code = false,
            Event::Text(text) if in_rust_code => {
                for line in text.lines() {
                    let line = line.trim_start();
                    if line == "#" || line.starts_with("# ") {
                        faults
                            .borrow_mut()
                            .push(format!("a hidden line in Rust code: {line}"));
                    }
                }
            }
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. })
                if !dest_url.starts_with("https://") =>
            {
                faults.borrow_mut().push(format!(
                    "a link that is not absolute (https://): {dest_url}"
                ));
            }
            _ => {}
        }
    }
    faults.into_inner()
}

/// The checker finds each fault it looks for, and nothing in plain Markdown.
pub(crate) fn assert_the_checker_finds_faults() {
    let faulty = "Uses [`Verifier`] and [the policy](SECURITY.md).\n\n\
                  ```rust\n# fn main() {\nlet x = 1;\n#\n# }\n```\n\n    # hidden\n";
    let faults = rendering_faults(faulty);
    assert_eq!(faults.len(), 6, "{faults:#?}");
    for fault in ["[`Verifier`]", "SECURITY.md", "# fn main() {", "# hidden"] {
        assert!(
            faults.iter().any(|found| found.contains(fault)),
            "{fault}: {faults:#?}"
        );
    }
    let clean = "Uses `Verifier`, [a site](https://example.com), <https://example.com>.\n\n\
                 ```sh\n# a shell comment\ncargo test\n```\n\n```rust\n#[derive(Debug)]\nstruct A;\n```\n";
    assert_eq!(rendering_faults(clean), Vec::<String>::new());
}
