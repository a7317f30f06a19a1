//! Compile-pass cases for every function shape the attribute supports, and
//! compile-fail cases whose reviewed `.stderr` pins each error message.
//! Regenerate with `TRYBUILD=overwrite cargo test --all-features --test ui` and
//! review the diff.

// rustc lists the types that implement `Classify` in some messages, and that list
// grows with each feature, so the pinned `.stderr` files hold for all features on:
// the README's test command.
#[test]
#[cfg_attr(
    not(all(
        feature = "tokio",
        feature = "reqwest",
        feature = "anyhow",
        feature = "tracing"
    )),
    ignore = "the .stderr files are pinned with --all-features"
)]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
