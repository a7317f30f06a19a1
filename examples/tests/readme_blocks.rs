//! README blocks that need crates outside ai-retry are compiled as examples
//! (with the examples crate's features); each must say exactly what the
//! README says.

/// The code of the first `rust` block after `heading` in the README.
fn block_after(heading: &str) -> String {
    let readme = include_str!("../../README.md");
    let at = readme.find(heading).expect("the heading is in the README");
    let rest = &readme[at..];
    let start = rest.find("```rust").expect("a rust block follows");
    let code = &rest[start..];
    let code = &code[code.find('\n').expect("the fence ends its line") + 1..];
    code[..code.find("```").expect("the block closes")].to_string()
}

#[test]
fn the_async_openai_block_is_the_example_that_compiles() {
    let example = include_str!("../readme_async_openai.rs");
    let code = example
        .split_once("\n\n")
        .map(|(_, code)| code)
        .expect("a header, then the code");
    assert_eq!(block_after("### async-openai and tower"), code);
}
