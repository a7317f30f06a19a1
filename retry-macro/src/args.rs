//! Parsing `#[retry(...)]`: each key into a typed value with the span of the
//! tokens it came from, every mistake collected rather than the first returned.

use proc_macro2::{Span, TokenStream};
use retry_runtime::{Backoff, ErrorClass};
use std::time::Duration;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Ident, LitInt, LitStr, Path, Token};

use crate::suggest::{did_you_mean, did_you_mean_key, list};

/// Every key the attribute accepts.
pub(crate) const KEYS: &[&str] = &[
    "max",
    "backoff",
    "initial",
    "max_delay",
    "deadline",
    "timeout",
    "on",
    "when",
    "on_retry",
    "on_give_up",
    "budget",
    "limiter",
    "cost",
    "clone",
    "crate",
];

/// A value and where the user wrote it: the key's span for "duplicate" and
/// cross-key errors, the value's for errors about the value itself.
pub(crate) struct Keyed<T> {
    pub key: Span,
    pub value: T,
    pub span: Span,
}

/// Which errors `on = …` retries.
pub(crate) enum On {
    Transient,
    Any,
    /// Each class with the span of its name.
    Classes(Vec<(ErrorClass, Span)>),
}

/// The attribute, parsed. Absent keys take DESIGN.md's defaults at expansion.
#[derive(Default)]
pub(crate) struct RetryArgs {
    pub max: Option<Keyed<u32>>,
    pub backoff: Option<Keyed<Backoff>>,
    pub initial: Option<Keyed<Duration>>,
    pub max_delay: Option<Keyed<Duration>>,
    pub deadline: Option<Keyed<Duration>>,
    pub timeout: Option<Keyed<Duration>>,
    pub on: Option<Keyed<On>>,
    pub when: Option<Keyed<Path>>,
    pub on_retry: Option<Keyed<Hook>>,
    pub on_give_up: Option<Keyed<Hook>>,
    pub budget: Option<Keyed<Path>>,
    pub limiter: Option<Keyed<syn::Expr>>,
    pub cost: Option<Keyed<syn::Expr>>,
    pub clone: Option<Keyed<Vec<Ident>>>,
    pub krate: Option<Keyed<Path>>,
}

/// Parses the attribute's tokens. Returns what parsed and every error found; a
/// bad value skips to the next comma so later keys are still checked.
pub(crate) fn parse(tokens: TokenStream) -> (RetryArgs, Vec<syn::Error>) {
    let mut args = RetryArgs::default();
    let mut errors = Vec::new();
    let parser = |input: ParseStream| {
        while !input.is_empty() {
            if let Err(error) = parse_one(input, &mut args, &mut errors) {
                errors.push(error);
                skip_to_comma(input);
            }
            if input.is_empty() {
                break;
            }
            if let Err(error) = input.parse::<Token![,]>() {
                errors.push(syn::Error::new(error.span(), "expected `,` between keys"));
                skip_to_comma(input);
                let _ = input.parse::<Option<Token![,]>>();
            }
        }
        Ok(())
    };
    if let Err(error) = parser.parse2(tokens) {
        errors.push(error);
    }
    (args, errors)
}

fn skip_to_comma(input: ParseStream) {
    while !input.is_empty() && !input.peek(Token![,]) {
        let _ = input.parse::<proc_macro2::TokenTree>();
    }
}

fn parse_one(
    input: ParseStream,
    args: &mut RetryArgs,
    errors: &mut Vec<syn::Error>,
) -> syn::Result<()> {
    let key = Ident::parse_any(input)
        .map_err(|e| syn::Error::new(e.span(), format!("expected a key: one of {}", list(KEYS))))?;
    let name = key.to_string();
    if name == "clone" {
        let idents = parse_clone(input)?;
        let span = spanned_all(&key, &idents);
        return set_once(&mut args.clone, &key, idents, span, errors);
    }
    if !KEYS.contains(&name.as_str()) {
        if ErrorClass::from_name(&name).is_some() {
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "`{name}` is an error class, not a key: join classes with `|`, as in `on = RateLimit | {name}`"
                ),
            ));
        }
        return Err(syn::Error::new(
            key.span(),
            format!(
                "unknown key `{name}`{}; expected one of {}",
                did_you_mean_key(&name, KEYS),
                list(KEYS)
            ),
        ));
    }
    input.parse::<Token![=]>().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("expected `=` after `{name}`, as in `{}`", example(&name)),
        )
    })?;
    match name.as_str() {
        "max" => {
            let (value, span) = parse_max(input)?;
            set_once(&mut args.max, &key, value, span, errors)
        }
        "backoff" => {
            let lit: LitStr = parse_lit_str(input, &name)?;
            let value = parse_backoff(&lit)?;
            set_once(&mut args.backoff, &key, value, lit.span(), errors)
        }
        "initial" | "max_delay" | "deadline" | "timeout" => {
            let lit = parse_lit_str(input, &name)?;
            let value = parse_duration(&lit)?;
            let slot = match name.as_str() {
                "initial" => &mut args.initial,
                "max_delay" => &mut args.max_delay,
                "deadline" => &mut args.deadline,
                _ => &mut args.timeout,
            };
            set_once(slot, &key, value, lit.span(), errors)
        }
        "on" => {
            let (value, span) = parse_on(input)?;
            set_once(&mut args.on, &key, value, span, errors)
        }
        "limiter" | "cost" => {
            // A static's path, or any expression naming a limiter (`self.limiter`):
            // a client that owns its limiter need not share one process-wide.
            // A cost is any expression of the arguments.
            let what = if name == "limiter" {
                "a limiter"
            } else {
                "a cost"
            };
            let expr: syn::Expr = input.parse().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    format!(
                        "expected {what} after `{name} =`, as in `{}`",
                        example(&name)
                    ),
                )
            })?;
            let span = expr.span();
            let slot = match name.as_str() {
                "limiter" => &mut args.limiter,
                _ => &mut args.cost,
            };
            set_once(slot, &key, expr, span, errors)
        }
        "on_retry" | "on_give_up" => {
            let hook = parse_hook(input, &name)?;
            let span = hook.span();
            let slot = match name.as_str() {
                "on_retry" => &mut args.on_retry,
                _ => &mut args.on_give_up,
            };
            set_once(slot, &key, hook, span, errors)
        }
        _ => {
            let path: Path = input.parse().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    format!(
                        "expected a path after `{name} =`, as in `{}`",
                        example(&name)
                    ),
                )
            })?;
            let slot = match name.as_str() {
                "when" => &mut args.when,
                "budget" => &mut args.budget,
                _ => &mut args.krate,
            };
            let span = path.span();
            set_once(slot, &key, path, span, errors)
        }
    }
}

/// `on_retry` / `on_give_up`: a function's path, or a closure evaluated once
/// per call in the function's scope (so it may use the arguments).
pub(crate) enum Hook {
    Path(Path),
    Closure(syn::ExprClosure),
}

impl Hook {
    fn span(&self) -> Span {
        match self {
            Hook::Path(path) => path.span(),
            Hook::Closure(closure) => closure.span(),
        }
    }
}

fn parse_hook(input: ParseStream, name: &str) -> syn::Result<Hook> {
    if input.peek(Token![|]) || input.peek(Token![||]) || input.peek(Token![move]) {
        return input.parse().map(Hook::Closure);
    }
    input.parse().map(Hook::Path).map_err(|e| {
        syn::Error::new(
            e.span(),
            format!(
                "expected a function's path or a closure after `{name} =`, as in `{}` or `{name} = |event| …`",
                example(name)
            ),
        )
    })
}

/// The one place a key is stored, so "duplicate key" is checked the same for all.
fn set_once<T>(
    slot: &mut Option<Keyed<T>>,
    key: &Ident,
    value: T,
    span: Span,
    errors: &mut Vec<syn::Error>,
) -> syn::Result<()> {
    if slot.is_some() {
        errors.push(syn::Error::new(
            key.span(),
            format!("duplicate key `{key}`: give it once"),
        ));
    } else {
        *slot = Some(Keyed {
            key: key.span(),
            value,
            span,
        });
    }
    Ok(())
}

fn example(key: &str) -> &'static str {
    match key {
        "max" => "max = 3",
        "backoff" => "backoff = \"exp_jitter\"",
        "initial" => "initial = \"500ms\"",
        "max_delay" => "max_delay = \"60s\"",
        "deadline" => "deadline = \"30s\"",
        "timeout" => "timeout = \"10s\"",
        "on" => "on = RateLimit | Timeout",
        "when" => "when = is_retryable",
        "on_retry" => "on_retry = log_retry",
        "on_give_up" => "on_give_up = log_give_up",
        "budget" => "budget = LLM_BUDGET",
        "limiter" => "limiter = OPENAI",
        "cost" => "cost = estimate(&request)",
        "clone" => "clone(request)",
        _ => "crate = ::ai_retry",
    }
}

fn parse_max(input: ParseStream) -> syn::Result<(u32, Span)> {
    let expr: syn::Expr = input.parse()?;
    let span = expr.span();
    let not_integer = || {
        syn::Error::new(
            span,
            "`max` takes an integer literal: the attempts in total, as in `max = 3`",
        )
    };
    if let syn::Expr::Unary(syn::ExprUnary {
        op: syn::UnOp::Neg(_),
        ..
    }) = &expr
    {
        return Err(syn::Error::new(
            span,
            "`max` counts attempts, the first included: a whole number from 1, as in `max = 3`",
        ));
    }
    let syn::Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Int(lit),
        ..
    }) = &expr
    else {
        return Err(not_integer());
    };
    let value = lit_u32(lit).ok_or_else(|| match lit.base10_parse::<u128>() {
        Ok(_) => syn::Error::new(
            span,
            format!(
                "`max` is at most {}: the attempts in total, as in `max = 3`",
                u32::MAX
            ),
        ),
        Err(_) => not_integer(),
    })?;
    if value == 0 {
        return Err(syn::Error::new(
            span,
            "`max = 0` would never call the function: `max` counts attempts including the first, so write `max = 1` for no retries",
        ));
    }
    Ok((value, span))
}

fn lit_u32(lit: &LitInt) -> Option<u32> {
    match lit.suffix() {
        "" | "u32" | "usize" | "u64" | "u16" | "u8" => lit.base10_parse().ok(),
        _ => None,
    }
}

fn parse_lit_str(input: ParseStream, key: &str) -> syn::Result<LitStr> {
    if input.peek(LitStr) {
        return input.parse();
    }
    let found: proc_macro2::TokenTree = input.parse()?;
    Err(syn::Error::new(
        found.span(),
        format!("`{key}` takes a string literal, as in `{}`", example(key)),
    ))
}

fn parse_backoff(lit: &LitStr) -> syn::Result<Backoff> {
    let name = lit.value();
    Backoff::from_name(&name).ok_or_else(|| {
        let names: Vec<&str> = Backoff::NAMES.iter().map(|(n, _)| *n).collect();
        syn::Error::new(
            lit.span(),
            format!(
                "unknown backoff `{name}`{}; expected one of {}",
                did_you_mean(&name, &names),
                list(&names)
            ),
        )
    })
}

fn parse_duration(lit: &LitStr) -> syn::Result<Duration> {
    let text = lit.value();
    retry_runtime::parse_duration(&text).ok_or_else(|| {
        syn::Error::new(
            lit.span(),
            format!(
                "bad duration `{text}`: write a number and a unit, as in \"250ms\", \"1.5s\" or \"2m\" (units: {})",
                retry_runtime::DURATION_UNITS
            ),
        )
    })
}

fn parse_on(input: ParseStream) -> syn::Result<(On, Span)> {
    let names: Vec<&str> = ErrorClass::ALL.iter().map(|c| c.name()).collect();
    let mut classes = Vec::new();
    let mut span: Option<Span> = None;
    loop {
        // `ErrorClass::RateLimit` means `RateLimit`: the last segment names the class.
        if input.peek2(Token![::]) {
            let path = input.call(Path::parse_mod_style)?;
            if let Some(last) = path.segments.last() {
                let ident = last.ident.clone();
                let text = ident.to_string();
                span = Some(span.map_or(path.span(), |s| s.join(path.span()).unwrap_or(s)));
                let class = ErrorClass::from_name(&text).ok_or_else(|| {
                    syn::Error::new(
                        ident.span(),
                        format!(
                            "unknown error class `{text}`; expected one of {}",
                            list(&names)
                        ),
                    )
                })?;
                classes.push((class, ident.span()));
                if !input.peek(Token![|]) {
                    break;
                }
                input.parse::<Token![|]>()?;
                continue;
            }
        }
        let ident = Ident::parse_any(input).map_err(|e| {
            syn::Error::new(
                e.span(),
                format!(
                    "expected an error class: `transient`, `any`, or classes joined by `|` from {}",
                    list(&names)
                ),
            )
        })?;
        span = Some(span.map_or(ident.span(), |s| s.join(ident.span()).unwrap_or(s)));
        let text = ident.to_string();
        match (text.as_str(), classes.is_empty() && !input.peek(Token![|])) {
            ("transient", true) => return Ok((On::Transient, ident.span())),
            ("any", true) => return Ok((On::Any, ident.span())),
            ("transient" | "any", false) => {
                return Err(syn::Error::new(
                    ident.span(),
                    format!("`{text}` stands alone: it cannot be joined with other classes by `|`"),
                ));
            }
            _ => {}
        }
        let class = ErrorClass::from_name(&text).ok_or_else(|| {
            let mut all = names.clone();
            all.extend(["transient", "any"]);
            syn::Error::new(
                ident.span(),
                format!(
                    "unknown error class `{text}`{}; expected one of {}, or `transient` or `any`",
                    did_you_mean(&text, &all),
                    list(&names)
                ),
            )
        })?;
        classes.push((class, ident.span()));
        if !input.peek(Token![|]) {
            break;
        }
        input.parse::<Token![|]>()?;
    }
    Ok((On::Classes(classes), span.unwrap_or_else(Span::call_site)))
}

fn parse_clone(input: ParseStream) -> syn::Result<Vec<Ident>> {
    if !input.peek(syn::token::Paren) {
        return Err(
            input.error("`clone` takes a list of arguments in parentheses, as in `clone(request)`")
        );
    }
    let content;
    syn::parenthesized!(content in input);
    let idents = content.parse_terminated(Ident::parse_any, Token![,])?;
    if idents.is_empty() {
        return Err(syn::Error::new(
            content.span(),
            "`clone(...)` names the by-value arguments to clone for each attempt, as in `clone(request)`",
        ));
    }
    Ok(idents.into_iter().collect())
}

fn spanned_all(key: &Ident, idents: &[Ident]) -> Span {
    idents.last().map_or(key.span(), |last| {
        key.span().join(last.span()).unwrap_or(key.span())
    })
}
