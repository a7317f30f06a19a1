//! A lenient model of the annotated item: the signature parsed, the body kept as
//! tokens, so a body rustc will reject still reaches rustc (and rust-analyzer)
//! instead of being lost behind a macro error.

use proc_macro2::{Delimiter, Group, TokenStream};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Signature, Token, Visibility};

pub(crate) struct RetryFn {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub defaultness: Option<Token![default]>,
    pub sig: Signature,
    pub body: Group,
}

impl Parse for RetryFn {
    fn parse(input: ParseStream) -> syn::Result<RetryFn> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let defaultness: Option<Token![default]> = input.parse()?;
        if !looks_like_fn(input) {
            return Err(syn::Error::new(
                input.span(),
                "#[retry] goes on a function: a `fn` or `async fn` that returns a `Result`",
            ));
        }
        let sig: Signature = input.parse()?;
        if input.peek(Token![;]) {
            return Err(syn::Error::new(
                input.span(),
                "#[retry] needs the function's body: put it on the method in the `impl`, not on the trait's declaration",
            ));
        }
        let body = match input.parse::<proc_macro2::TokenTree>()? {
            proc_macro2::TokenTree::Group(group) => unwrap_invisible(group),
            other => {
                return Err(syn::Error::new(
                    other.span(),
                    "expected the function's body in braces",
                ));
            }
        };
        if body.delimiter() != Delimiter::Brace {
            return Err(syn::Error::new(
                body.span(),
                "expected the function's body in braces",
            ));
        }
        Ok(RetryFn {
            attrs,
            vis,
            defaultness,
            sig,
            body,
        })
    }
}

/// A body passed through `macro_rules!` as `$body:block` arrives wrapped in an
/// invisible group: the braces inside are the body.
fn unwrap_invisible(group: Group) -> Group {
    if group.delimiter() != Delimiter::None {
        return group;
    }
    let mut trees = group.stream().into_iter();
    match (trees.next(), trees.next()) {
        (Some(proc_macro2::TokenTree::Group(inner)), None) => unwrap_invisible(inner),
        _ => group,
    }
}

/// Whether the qualifiers before the next `fn` are only function qualifiers.
fn looks_like_fn(input: ParseStream) -> bool {
    let ahead = input.fork();
    loop {
        if ahead.peek(Token![fn]) {
            return true;
        }
        let qualifier = ahead.peek(Token![const])
            || ahead.peek(Token![async])
            || ahead.peek(Token![unsafe])
            || ahead.peek(Token![extern])
            || ahead.peek(syn::LitStr);
        if !qualifier || ahead.parse::<proc_macro2::TokenTree>().is_err() {
            return false;
        }
    }
}

impl ToTokens for RetryFn {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        for attr in &self.attrs {
            attr.to_tokens(tokens);
        }
        self.vis.to_tokens(tokens);
        self.defaultness.to_tokens(tokens);
        self.sig.to_tokens(tokens);
        self.body.to_tokens(tokens);
    }
}
