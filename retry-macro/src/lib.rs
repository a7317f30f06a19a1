//! The `#[retry]` attribute of [`ai-retry`](https://docs.rs/ai-retry). Use it
//! through the `ai-retry` crate, which documents it and holds the runtime that
//! the generated code calls.
//!
//! Four stages: `args` parses the attribute, `item` the function, `validate`
//! checks them together, `expand` writes the loop. On any error the function
//! is emitted unchanged beside the errors, so the rest of the crate still
//! type-checks.

#![forbid(unsafe_code)]

use proc_macro::TokenStream;
use quote::ToTokens;

mod args;
mod expand;
mod item;
mod suggest;
mod validate;

/// See `ai_retry::retry`.
#[proc_macro_attribute]
pub fn retry(args: TokenStream, item: TokenStream) -> TokenStream {
    retry_impl(args.into(), item.into()).into()
}

fn retry_impl(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let (args, mut errors) = args::parse(args);
    let func = match syn::parse2::<item::RetryFn>(item.clone()) {
        Ok(func) => func,
        Err(error) => {
            errors.push(error);
            return with_errors(item, errors);
        }
    };
    match validate::validate(args, &func) {
        Ok(plan) if errors.is_empty() => expand::expand(func, plan),
        Ok(_) => with_errors(func.into_token_stream(), errors),
        Err(more) => {
            errors.extend(more);
            with_errors(func.into_token_stream(), errors)
        }
    }
}

/// The item unchanged, followed by every error.
fn with_errors(
    item: proc_macro2::TokenStream,
    errors: Vec<syn::Error>,
) -> proc_macro2::TokenStream {
    let mut tokens = item;
    for error in errors {
        tokens.extend(error.into_compile_error());
    }
    tokens
}
