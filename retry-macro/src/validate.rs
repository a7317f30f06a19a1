//! Checks that need the attribute and the function together, and the plan the
//! expansion follows.

use proc_macro2::Span;
use retry_runtime::{Backoff, ErrorClass};
use std::time::Duration;
use syn::spanned::Spanned;
use syn::{Expr, FnArg, GenericArgument, Ident, Pat, Path, PathArguments, ReturnType, Stmt, Type};

use crate::args::{Hook, On, RetryArgs};
use crate::item::RetryFn;
use crate::suggest::did_you_mean;

/// What the expansion needs, all checked.
pub(crate) struct Plan {
    pub krate: Path,
    pub max: u32,
    pub backoff: Backoff,
    pub initial: Option<Duration>,
    pub max_delay: Option<Duration>,
    pub deadline: Option<Duration>,
    /// The `deadline` key: where a missing `From<TimedOut>` is reported when
    /// the deadline, not `timeout`, is what cuts an async attempt.
    pub deadline_key: Option<Span>,
    pub timeout: Option<(Duration, Span)>,
    pub retry_on: RetryOn,
    pub on_retry: Option<Hook>,
    pub on_give_up: Option<Hook>,
    pub budget: Option<Path>,
    /// The limiter expression, and the `limiter` key's span for a missing `From<Throttled>`.
    pub limiter: Option<(Expr, Span)>,
    /// What a call spends of the limiter's limits, evaluated once per call.
    pub cost: Option<Expr>,
    pub clones: Vec<CloneArg>,
    pub shape: Shape,
}

pub(crate) enum RetryOn {
    /// By class; `None` is the default, `transient`. The span is where a missing
    /// `Classify` impl is reported.
    Classes(Option<Vec<(ErrorClass, Span)>>, Span),
    Any,
    When(Path),
}

pub(crate) struct CloneArg {
    pub ident: Ident,
    pub mutable: bool,
}

/// How the function runs, and the type each attempt returns.
pub(crate) enum Shape {
    Blocking {
        ret: Type,
    },
    Async {
        ret: Type,
    },
    /// An `async fn` already rewritten by `#[async_trait]` into
    /// `Box::pin(async move { prelude; body })`: the prelude (its argument
    /// moves) runs once, the body is retried.
    AsyncTrait {
        ret: Type,
        box_pin: Box<Expr>,
        prelude: Vec<Stmt>,
        body: Vec<Stmt>,
    },
}

pub(crate) fn validate(args: RetryArgs, func: &RetryFn) -> Result<Plan, Vec<syn::Error>> {
    let mut errors = Vec::new();
    let sig = &func.sig;
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new(
            constness.span(),
            "#[retry] cannot go on a `const fn`: a retry loop sleeps between attempts; remove `const`",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new(
            variadic.span(),
            "#[retry] cannot go on a variadic function",
        ));
    }
    let shape = match shape(func) {
        Ok(shape) => Some(shape),
        Err(error) => {
            errors.push(error);
            None
        }
    };
    // Only a known blocking shape rules `timeout` out; an unknown one has its own error.
    if let (Some(timeout), Some(Shape::Blocking { .. })) = (&args.timeout, &shape) {
        errors.push(syn::Error::new(
            timeout.key,
            "`timeout` needs an `async fn`: a blocking call cannot be cut off from outside; set a timeout on the client instead (e.g. reqwest's `.timeout(..)`)",
        ));
    }
    if let (Some(cost), None) = (&args.cost, &args.limiter) {
        errors.push(syn::Error::new(
            cost.key,
            "`cost` is what a call spends of a rate limiter's limits: it needs `limiter = …` beside it",
        ));
    }
    if let (Some(_), Some(when)) = (&args.on, &args.when) {
        errors.push(syn::Error::new(
            when.key,
            "`on` and `when` both choose which errors to retry: keep one (`when` replaces `on`)",
        ));
    }
    let clones = args.clone.as_ref().map_or_else(Vec::new, |clone| {
        clone
            .value
            .iter()
            .filter_map(|ident| check_clone(func, ident).map_err(|e| errors.push(e)).ok())
            .collect()
    });
    let Some(shape) = shape.filter(|_| errors.is_empty()) else {
        return Err(errors);
    };
    if let Some(impl_token) = impl_trait_in(shape.ret()) {
        return Err(vec![syn::Error::new(
            impl_token,
            "#[retry] needs a return type it can name: `impl Trait` cannot appear in it, because the loop names the type of every attempt; return a concrete type or a boxed trait object, as in `io::Result<Box<dyn Iterator<Item = u32> + Send>>`",
        )]);
    }
    let ret_span = shape.ret().span();
    let retry_on = match (args.on, args.when) {
        (_, Some(when)) => RetryOn::When(when.value),
        (Some(on), None) => match on.value {
            On::Any => RetryOn::Any,
            On::Transient => RetryOn::Classes(None, on.span),
            On::Classes(classes) => RetryOn::Classes(Some(classes), on.span),
        },
        (None, None) => RetryOn::Classes(None, ret_span),
    };
    Ok(Plan {
        krate: args
            .krate
            .map_or_else(|| syn::parse_quote!(::ai_retry), |k| k.value),
        max: args.max.map_or(3, |m| m.value),
        backoff: args.backoff.map_or(Backoff::ExpJitter, |b| b.value),
        initial: args.initial.map(|d| d.value),
        max_delay: args.max_delay.map(|d| d.value),
        deadline_key: args.deadline.as_ref().map(|d| d.key),
        deadline: args.deadline.map(|d| d.value),
        timeout: args.timeout.map(|d| (d.value, d.key)),
        retry_on,
        on_retry: args.on_retry.map(|p| p.value),
        on_give_up: args.on_give_up.map(|p| p.value),
        budget: args.budget.map(|p| p.value),
        limiter: args.limiter.map(|l| (l.value, l.key)),
        cost: args.cost.map(|c| c.value),
        clones,
        shape,
    })
}

impl Shape {
    pub(crate) fn ret(&self) -> &Type {
        match self {
            Shape::Blocking { ret } | Shape::Async { ret } | Shape::AsyncTrait { ret, .. } => ret,
        }
    }
}

fn shape(func: &RetryFn) -> syn::Result<Shape> {
    let sig = &func.sig;
    let ReturnType::Type(_, ret) = &sig.output else {
        return Err(syn::Error::new(
            sig.paren_token.span.close(),
            format!(
                "#[retry] needs a function that returns a `Result`, so that it can tell failure from success: add `-> Result<T, E>` to `{}`",
                sig.ident
            ),
        ));
    };
    if sig.asyncness.is_some() {
        return Ok(Shape::Async {
            ret: (**ret).clone(),
        });
    }
    if let Some(shape) = async_trait_shape(func, ret) {
        return Ok(shape);
    }
    Ok(Shape::Blocking {
        ret: (**ret).clone(),
    })
}

/// Recognises `#[async_trait]`'s output: a non-async fn returning
/// `Pin<Box<dyn Future<Output = T> + …>>` whose body is `Box::pin(async move { … })`.
fn async_trait_shape(func: &RetryFn, ret: &Type) -> Option<Shape> {
    let output = future_output(ret)?;
    let block: syn::Block = syn::parse2(quote::ToTokens::to_token_stream(&func.body)).ok()?;
    let [Stmt::Expr(Expr::Call(call), None)] = block.stmts.as_slice() else {
        return None;
    };
    let Expr::Path(callee) = &*call.func else {
        return None;
    };
    if callee.path.segments.last()?.ident != "pin" || call.args.len() != 1 {
        return None;
    }
    let Expr::Async(inner) = call.args.first()? else {
        return None;
    };
    inner.capture?;
    let split = inner
        .block
        .stmts
        .iter()
        .take_while(|stmt| is_prelude(stmt))
        .count();
    let (prelude, body) = inner.block.stmts.split_at(split);
    let mut box_pin = call.clone();
    box_pin.args.clear();
    Some(Shape::AsyncTrait {
        ret: output,
        box_pin: Box::new(Expr::Call(box_pin)),
        prelude: prelude.to_vec(),
        body: body.to_vec(),
    })
}

/// What `#[async_trait]` puts before the body, run once rather than per attempt:
/// its type hint `if let Some(__ret) = None::<T> { return __ret; }` and its
/// argument moves `let x = x;` / `let __self = self;`.
fn is_prelude(stmt: &Stmt) -> bool {
    match stmt {
        Stmt::Local(local) => local.init.as_ref().is_some_and(|init| {
            init.diverge.is_none()
                && matches!(&*init.expr, Expr::Path(p) if p.path.segments.len() == 1)
        }),
        Stmt::Expr(Expr::If(if_expr), _) => match &*if_expr.cond {
            Expr::Let(let_expr) => matches!(
                &*let_expr.expr,
                Expr::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "None")
            ),
            _ => false,
        },
        _ => false,
    }
}

/// `T` in `… Future<Output = T> …`, searched through the type's generic arguments.
fn future_output(ty: &Type) -> Option<Type> {
    match ty {
        Type::Path(path) => path_output(&path.path),
        Type::TraitObject(object) => object.bounds.iter().find_map(|bound| match bound {
            syn::TypeParamBound::Trait(t) => path_output(&t.path),
            _ => None,
        }),
        Type::Paren(inner) => future_output(&inner.elem),
        Type::Group(inner) => future_output(&inner.elem),
        _ => None,
    }
}

fn path_output(path: &Path) -> Option<Type> {
    path.segments
        .iter()
        .find_map(|segment| match &segment.arguments {
            PathArguments::AngleBracketed(args) => args.args.iter().find_map(|arg| match arg {
                GenericArgument::AssocType(assoc)
                    if assoc.ident == "Output" && segment.ident == "Future" =>
                {
                    Some(assoc.ty.clone())
                }
                GenericArgument::Type(inner) => future_output(inner),
                _ => None,
            }),
            _ => None,
        })
}

fn check_clone(func: &RetryFn, wanted: &Ident) -> syn::Result<CloneArg> {
    if wanted == "self" {
        return Err(syn::Error::new(
            wanted.span(),
            "`clone(self)` is not supported: take `&self` (or `&mut self`) in a retried method",
        ));
    }
    let mut by_value = Vec::new();
    let mut destructured = false;
    for arg in &func.sig.inputs {
        let FnArg::Typed(typed) = arg else { continue };
        let Pat::Ident(pat) = &*typed.pat else {
            destructured = true;
            continue;
        };
        let is_ref = matches!(&*typed.ty, Type::Reference(_));
        if pat.ident == *wanted {
            if is_ref {
                return Err(syn::Error::new(
                    wanted.span(),
                    format!(
                        "`{wanted}` is a reference: every attempt can already use it; `clone(...)` is for by-value arguments the body consumes"
                    ),
                ));
            }
            return Ok(CloneArg {
                ident: pat.ident.clone(),
                mutable: pat.mutability.is_some(),
            });
        }
        if !is_ref {
            by_value.push(pat.ident.to_string());
        }
    }
    let names: Vec<&str> = by_value.iter().map(String::as_str).collect();
    if destructured && names.is_empty() {
        return Err(syn::Error::new(
            wanted.span(),
            format!(
                "`clone({wanted})` names an argument, and a destructured argument has no name to clone: bind it whole (`{wanted}: Type`) and destructure it inside the body"
            ),
        ));
    }
    let known = if names.is_empty() {
        "this function has no by-value arguments".to_string()
    } else {
        format!(
            "its by-value arguments are {}",
            crate::suggest::list(&names)
        )
    };
    Err(syn::Error::new(
        wanted.span(),
        format!(
            "`clone({wanted})` names no by-value argument{}; {known}",
            did_you_mean(&wanted.to_string(), &names)
        ),
    ))
}

/// The span of the first `impl` in a type, if any.
fn impl_trait_in(ty: &Type) -> Option<Span> {
    fn scan(tokens: proc_macro2::TokenStream) -> Option<Span> {
        tokens.into_iter().find_map(|tree| match tree {
            proc_macro2::TokenTree::Ident(ident) if ident == "impl" => Some(ident.span()),
            proc_macro2::TokenTree::Group(group) => scan(group.stream()),
            _ => None,
        })
    }
    scan(quote::ToTokens::to_token_stream(ty))
}
