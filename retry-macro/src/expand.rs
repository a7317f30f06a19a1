//! Code generation: the user's function, with its body run once per attempt
//! inside a loop around `Retry::step`.
//!
//! Each attempt is a fresh `async` block (async) or closure (blocking), so `?`
//! and `return` end the attempt, not the function; the loop is written inline,
//! so the function stays an `async fn` and rustc infers `Send` as usual.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use std::time::Duration;

use crate::args::Hook;
use crate::item::RetryFn;
use crate::validate::{Plan, RetryOn, Shape};

pub(crate) fn expand(mut func: RetryFn, plan: Plan) -> TokenStream {
    let private = {
        let krate = &plan.krate;
        quote!(#krate::__private)
    };
    let attempts = format_ident!("__ai_attempts", span = Span::mixed_site());
    // The `Retry` is rebuilt at each step from constants rather than kept in the
    // future: only `Attempts` lives across awaits.
    let retry = setup(&plan, &private, &func.sig.ident);
    let clock = match plan.shape {
        Shape::Blocking { .. } => quote!(#private::Clock::Std),
        Shape::Async { .. } | Shape::AsyncTrait { .. } => quote!(#private::Clock::Tokio),
    };
    let begin = begin(&plan, &private, clock);
    let clones = plan.clones.iter().map(|clone| {
        let ident = &clone.ident;
        if clone.mutable {
            // `&mut` keeps the user's `mut` binding in use, so no `unused_mut` fires.
            quote!(let mut #ident = ::core::clone::Clone::clone(&*&mut #ident);)
        } else {
            quote!(let #ident = ::core::clone::Clone::clone(&#ident);)
        }
    });
    let clones: Vec<TokenStream> = clones.collect();
    let ret = plan.shape.ret();
    // Whatever fails to type-check because of the return type points at it.
    let at_ret = respan(&private, ret_span(ret));
    let typed = quote!(#at_ret::attempt::<#ret, _>);
    let into_result = quote!(<#ret as #at_ret::AttemptResult>::into_result);
    let from_result = quote!(<#ret as #at_ret::AttemptResult>::from_result);
    let step = format_ident!("__ai_step", span = Span::mixed_site());
    // Bindings in the match arms are mixed-site too: a user's `const delay` in
    // scope would otherwise turn them into constant patterns.
    let (done, delay) = (
        format_ident!("__ai_done", span = Span::mixed_site()),
        format_ident!("__ai_delay", span = Span::mixed_site()),
    );
    let (result, forced) = (
        format_ident!("__ai_result", span = Span::mixed_site()),
        format_ident!("__ai_forced", span = Span::mixed_site()),
    );
    let (hooks_init, hooks) = closure_hooks(&plan, &private, ret);
    let limiter = Limiter::new(&plan, &private, &retry, &attempts, &from_result, hooks);
    let run_async = |body: TokenStream| {
        // The attempt in flight is cut by `timeout` and by the deadline, the
        // earlier of the two; with neither, no timer is armed.
        let cut_key = plan.timeout.map(|(_, span)| span).or(plan.deadline_key);
        let await_attempt = match cut_key {
            None => quote! {
                let #result = #typed(async #body).await;
                let #forced = ::core::option::Option::None;
            },
            Some(span) => {
                // A missing `From<TimedOut>` is reported at the key that cuts (the
                // `timeout` key, else `deadline`): the call is spanned there, its
                // argument keeps the body's spans.
                let attempt = format_ident!("__ai_attempt", span = Span::mixed_site());
                let (timed, convert) = (
                    format_ident!("__ai_timed", span = Span::mixed_site()),
                    format_ident!("__ai_convert", span = Span::mixed_site()),
                );
                let with_timeout = respan(&quote!(#private::with_timeout), span);
                let policy = policy(&plan, &private);
                // The binding keeps its mixed-site hygiene, located at the key.
                let attempts_at =
                    syn::Ident::new(&attempts.to_string(), attempts.span().located_at(span));
                let cut_off = respan(&quote!(#private::Attempts::cut_at), span);
                let policy = respan(&policy, span);
                let cut = quote_spanned!(span=> #cut_off(&#attempts_at, &#policy));
                let mut call_args = proc_macro2::Group::new(
                    proc_macro2::Delimiter::Parenthesis,
                    quote!(#cut, #attempt),
                );
                call_args.set_span(span);
                quote! {
                    let #attempt = ::core::pin::pin!(#typed(async #body));
                    let (#timed, #convert) = #with_timeout #call_args;
                    let (#result, #forced) = #private::settle_timeout(#timed.await, #convert, &mut #attempts);
                }
            }
        };
        let turn = limiter.turn(quote!(wait_turn), quote!(.await));
        let step_call = limiter.step(quote!(#into_result(#result)), quote!(#forced));
        let paced_init = &limiter.init;
        quote! {
            let mut #attempts = #begin;
            #paced_init
            #hooks_init
            loop {
                #(#clones)*
                #turn
                #await_attempt
                // Only the delay outlives the `let`: no `Step<T, E>` is held
                // across the sleep's await, so the future is `Send` whenever the
                // body's is, whatever `T` and `E` are.
                let #delay = match #step_call {
                    #private::Step::Return(#done) => return #from_result(#done),
                    #private::Step::Sleep(#delay) => #delay,
                };
                #private::sleep(#delay).await;
            }
        }
    };
    // The attempt's block learns its output type before its tail, so the tail
    // coerces to it (`Ok(Box::new(x))` into `Result<Box<dyn Trait>, E>`), as in
    // a plain `async fn` (async-trait's device).
    let coerce = {
        let ret_value = format_ident!("__ai_ret", span = Span::mixed_site());
        quote! {
            if let ::core::option::Option::Some(#ret_value) = ::core::option::Option::None::<#ret> {
                #[allow(unreachable_code)]
                return #ret_value;
            }
        }
    };
    let body = match &plan.shape {
        Shape::Async { .. } => {
            let body = func.body.stream();
            run_async(quote!({ #coerce #body }))
        }
        Shape::AsyncTrait {
            box_pin,
            prelude,
            body,
            ..
        } => {
            let inner = run_async(quote!({ #coerce #(#body)* }));
            let mut call = (**box_pin).clone();
            if let syn::Expr::Call(call) = &mut call {
                call.args
                    .push(syn::parse_quote!(async move { #(#prelude)* #inner }));
            }
            quote!(#call)
        }
        Shape::Blocking { .. } => {
            let body = func.body.stream();
            let typed = quote!(#at_ret::attempt_blocking::<#ret, _>);
            let turn = limiter.turn(quote!(wait_turn_blocking), quote!());
            let step_call = limiter.step(
                quote!(#into_result(#result)),
                quote!(::core::option::Option::None),
            );
            let paced_init = &limiter.init;
            quote! {
                let mut #attempts = #begin;
                #paced_init
                #hooks_init
                loop {
                    #(#clones)*
                    #turn
                    let #result = #typed(|| { #body });
                    let #step = #step_call;
                    match #step {
                        #private::Step::Return(#done) => return #from_result(#done),
                        #private::Step::Sleep(#delay) => #private::thread_sleep(#delay),
                    }
                }
            }
        }
    };
    // Keep the body's own span: an item whose span ends in the macro's call site
    // counts as macro-made, and rustc's `dead_code` lint would skip it.
    let span = func.body.span();
    func.body = proc_macro2::Group::new(proc_macro2::Delimiter::Brace, body);
    func.body.set_span(span);
    quote!(#func)
}

/// The limiter's two touch points in the loop, or plain `step` without one.
struct Limiter {
    /// `let mut paced = Paced::new();` and, with `cost`, its value, or nothing.
    init: TokenStream,
    /// What each turn pays: the `cost` binding, or `Cost::NONE`.
    cost: TokenStream,
    /// `(expr, key span, paced binding)` when the function names a limiter.
    paced: Option<(syn::Expr, Span, syn::Ident)>,
    private: TokenStream,
    retry: TokenStream,
    attempts: syn::Ident,
    policy: TokenStream,
    from_result: TokenStream,
    /// The call's closure hooks (`Hooks::new(…)`), when it has any.
    hooks: Option<TokenStream>,
    /// The function's error type, which a call that gets no turn returns.
    throttled: TokenStream,
    krate: syn::Path,
}

impl Limiter {
    fn new(
        plan: &Plan,
        private: &TokenStream,
        retry: &TokenStream,
        attempts: &syn::Ident,
        from_result: &TokenStream,
        hooks: Option<TokenStream>,
    ) -> Limiter {
        let paced = plan.limiter.as_ref().map(|(expr, span)| {
            let binding = format_ident!("__ai_paced", span = Span::mixed_site());
            (expr.clone(), *span, binding)
        });
        let binding = cost_binding();
        let init = match (&paced, &plan.cost) {
            (Some((_, _, paced)), Some(cost)) => {
                // Evaluated once, before the first attempt, from the arguments.
                // A cost of a type with no `From` is reported at the expression.
                let span = syn::spanned::Spanned::span(cost);
                let from = respan(
                    &quote!(<#private::Cost as ::core::convert::From<_>>::from),
                    span,
                );
                let into = quote!(#from(#cost));
                quote!(let mut #paced = #private::Paced::new(); let #binding: #private::Cost = #into;)
            }
            (Some((_, _, paced)), None) => quote!(let mut #paced = #private::Paced::new();),
            (None, _) => quote!(),
        };
        let cost = match &plan.cost {
            Some(_) => quote!(#binding),
            None => quote!(#private::Cost::NONE),
        };
        Limiter {
            init,
            cost,
            paced,
            private: private.clone(),
            retry: retry.clone(),
            attempts: attempts.clone(),
            policy: policy(plan, private),
            from_result: from_result.clone(),
            hooks,
            throttled: {
                let ret = plan.shape.ret();
                quote!(<#ret as #private::AttemptResult>::Err)
            },
            krate: plan.krate.clone(),
        }
    }

    /// Before each attempt: a turn at once when the limiter is idle, else wait
    /// for one (`wait` or `wait_blocking`); no turn in time ends the call.
    fn turn(&self, wait: TokenStream, awaited: TokenStream) -> TokenStream {
        let Some((expr, span, paced)) = &self.paced else {
            return quote!();
        };
        let (private, attempts, policy, from_result, retry, cost) = (
            &self.private,
            &self.attempts,
            &self.policy,
            &self.from_result,
            &self.retry,
            &self.cost,
        );
        let limiter = format_ident!("__ai_limiter", span = Span::mixed_site());
        let error = format_ident!("__ai_error", span = Span::mixed_site());
        // A missing `From<Throttled>` is reported at the `limiter` key.
        let wait = respan(&quote!(#private::#wait), *span);
        // The arguments sit at the key too (rustc points at the first one), while
        // the bindings keep their mixed-site hygiene.
        let at_key = |ident: &syn::Ident| {
            syn::Ident::new(&ident.to_string(), ident.span().located_at(*span))
        };
        let (paced_at, limiter_at, attempts_at) =
            (at_key(paced), at_key(&limiter), at_key(attempts));
        // The one `From<Throttled>` obligation, written at the key in the
        // user's terms: a missing impl is reported there and nowhere inside.
        let (throttled, krate) = (&self.throttled, &self.krate);
        let throttled = respan(
            &quote!(<#throttled as ::core::convert::From<#krate::Throttled>>::from),
            *span,
        );
        let mut call_args = proc_macro2::Group::new(
            proc_macro2::Delimiter::Parenthesis,
            quote_spanned!(*span=> &mut #paced_at, #limiter_at, &#policy, &#attempts_at, #cost, #throttled),
        );
        call_args.set_span(*span);
        let waiting = format_ident!("__ai_waiting", span = Span::mixed_site());
        let gave_up = match &self.hooks {
            None => quote!(#retry.gave_up_waiting(&#attempts, #error)),
            Some(hooks) => quote!(#retry.gave_up_waiting_with(&#attempts, #error, #hooks)),
        };
        let expr = quote_spanned!(syn::spanned::Spanned::span(expr)=> &(#expr));
        quote! {
            {
                let #limiter: &#private::RateLimiter = #expr;
                if !#private::Paced::ready(&mut #paced, #limiter) {
                    let #waiting = #wait #call_args;
                    if let ::core::result::Result::Err(#error) = #waiting #awaited {
                        let #error = #gave_up;
                        return #from_result(::core::result::Result::Err(#error));
                    }
                }
            }
        }
    }

    /// After each attempt: `step`, or `step_paced` reporting to the limiter.
    fn step(&self, result: TokenStream, forced: TokenStream) -> TokenStream {
        let (retry, attempts) = (&self.retry, &self.attempts);
        match (&self.paced, &self.hooks) {
            (None, None) => quote!(#retry.step(&mut #attempts, #result, #forced)),
            (None, Some(hooks)) => {
                quote!(#retry.step_with(&mut #attempts, #result, #forced, #hooks))
            }
            (Some((expr, _, paced)), hooks) => {
                let expr = quote_spanned!(syn::spanned::Spanned::span(expr)=> &(#expr));
                match hooks {
                    None => {
                        quote!(#retry.step_paced(&mut #attempts, #result, #forced, #expr, &mut #paced))
                    }
                    Some(hooks) => {
                        quote!(#retry.step_paced_with(&mut #attempts, #result, #forced, #expr, &mut #paced, #hooks))
                    }
                }
            }
        }
    }
}

/// The closure hooks, evaluated once per call before the first attempt in the
/// function's scope (they may borrow its arguments): their bindings, and the
/// `Hooks` that hands them to each step — or nothing, when both hooks are
/// paths (or absent) and the loop expands as without closures.
fn closure_hooks(
    plan: &Plan,
    private: &TokenStream,
    ret: &syn::Type,
) -> (TokenStream, Option<TokenStream>) {
    let mut init = TokenStream::new();
    let mut bound = |hook: &Option<Hook>, name: &str| match hook {
        Some(Hook::Closure(closure)) => {
            let binding = format_ident!("__ai_{}", name, span = Span::mixed_site());
            // Typed as a hook where it is written: its argument is the event,
            // and a closure that takes something else is an error on it.
            let span = syn::spanned::Spanned::span(closure);
            let typed = respan(
                &quote!(#private::hook::<<#ret as #private::AttemptResult>::Err, _>),
                span,
            );
            let mut call =
                proc_macro2::Group::new(proc_macro2::Delimiter::Parenthesis, quote!(#closure));
            call.set_span(span);
            init.extend(quote!(let #binding = #typed #call;));
            quote!(::core::option::Option::Some(&#binding))
        }
        _ => quote!(::core::option::Option::None),
    };
    let on_retry = bound(&plan.on_retry, "on_retry");
    let on_give_up = bound(&plan.on_give_up, "on_give_up");
    if init.is_empty() {
        return (init, None);
    }
    (
        init,
        Some(quote!(#private::Hooks::new(#on_retry, #on_give_up))),
    )
}

/// `Attempts::begin(&POLICY, budget, observed, now)`.
fn begin(plan: &Plan, private: &TokenStream, now: TokenStream) -> TokenStream {
    let policy = policy(plan, private);
    let budget = match &plan.budget {
        Some(path) => quote!(::core::option::Option::Some(&#path)),
        None => quote!(::core::option::Option::None),
    };
    let observed = plan.on_retry.is_some() || plan.on_give_up.is_some();
    // An async attempt cut by `timeout` or `deadline`, with no limiter's wait
    // before it: the deadline's clock starts when the call first waits.
    let async_shape = !matches!(plan.shape, Shape::Blocking { .. });
    let cut = plan.timeout.is_some() || plan.deadline_key.is_some();
    if async_shape && cut && plan.limiter.is_none() {
        return quote!(#private::Attempts::begin_cut(&#policy, #budget, #observed));
    }
    quote!(#private::Attempts::begin(&#policy, #budget, #observed, #now))
}

/// `Retry::…(POLICY).on(…).named(…)…`: constants only, so rebuilding it costs nothing.
fn setup(plan: &Plan, private: &TokenStream, name: &syn::Ident) -> TokenStream {
    let policy = policy(plan, private);
    // Whichever errors are retried, a server's hint is honoured whenever the
    // error type can report one.
    let hint = {
        let ret = plan.shape.ret();
        quote!({
            use #private::hint::{ViaClassify as _, ViaNothing as _};
            (&#private::hint::HintOf::<<#ret as #private::AttemptResult>::Err>::NEW).hint_fn()
        })
    };
    let constructor = match &plan.retry_on {
        RetryOn::Any => quote!(#private::Retry::new(#policy).server_hint_if(#hint)),
        RetryOn::When(path) => {
            quote!(#private::Retry::new(#policy).when(#path).server_hint_if(#hint))
        }
        RetryOn::Classes(classes, span) => {
            // A missing `Classify` impl is reported at `on = …`, or at the return type.
            let classified = respan(&quote!(#private::Retry::classified(#policy)), *span);
            match classes {
                None => classified,
                Some(classes) => {
                    let classes = classes.iter().map(|(class, span)| {
                        let variant = format_ident!("{}", class.name(), span = *span);
                        quote_spanned!(*span=> .with(#private::ErrorClass::#variant))
                    });
                    quote!(#classified.on(#private::ClassSet::EMPTY #(#classes)*))
                }
            }
        }
    };
    let fn_hook = |hook: &Hook, method: TokenStream| match hook {
        Hook::Path(path) => Some(quote!(.#method(#path))),
        Hook::Closure(_) => None,
    };
    let on_retry = plan
        .on_retry
        .iter()
        .filter_map(|hook| fn_hook(hook, quote!(on_retry)));
    let on_give_up = plan
        .on_give_up
        .iter()
        .filter_map(|hook| fn_hook(hook, quote!(on_give_up)));
    let budget = plan.budget.iter().map(|path| quote!(.budget(&#path)));
    let cost = plan.cost.iter().map(|_| {
        let binding = cost_binding();
        quote!(.cost(#binding))
    });
    // `r#match` is `match` to a reader of events and logs.
    let name = syn::ext::IdentExt::unraw(name).to_string();
    quote!((#constructor.named(#name) #(#on_retry)* #(#on_give_up)* #(#budget)* #(#cost)*))
}

/// The binding that holds a call's cost: mixed-site, so user code cannot name it.
fn cost_binding() -> syn::Ident {
    format_ident!("__ai_cost", span = Span::mixed_site())
}

/// The policy as a `const` block: evaluated at compile time, whatever the body.
fn policy(plan: &Plan, private: &TokenStream) -> TokenStream {
    let max = plan.max;
    let backoff = format_ident!("{}", format!("{:?}", plan.backoff));
    let mut calls = vec![
        quote!(.max_attempts(#max)),
        quote!(.backoff(#private::Backoff::#backoff)),
    ];
    let durations = [
        ("initial", plan.initial),
        ("max_delay", plan.max_delay),
        ("deadline", plan.deadline),
        ("timeout", plan.timeout.map(|(d, _)| d)),
    ];
    for (setter, value) in durations {
        if let Some(value) = value {
            let setter = format_ident!("{setter}");
            let value = duration(value, private);
            calls.push(quote!(.#setter(#value)));
        }
    }
    quote!(const { #private::Policy::new() #(#calls)* })
}

fn duration(value: Duration, private: &TokenStream) -> TokenStream {
    let (secs, nanos) = (value.as_secs(), value.subsec_nanos());
    quote!(#private::Duration::new(#secs, #nanos))
}

fn ret_span(ret: &syn::Type) -> Span {
    syn::spanned::Spanned::span(ret)
}

/// `tokens` with every span set to `span`, so rustc reports a type error in
/// them at the user's token rather than at the attribute.
fn respan(tokens: &TokenStream, span: Span) -> TokenStream {
    tokens
        .clone()
        .into_iter()
        .map(|mut token| {
            if let proc_macro2::TokenTree::Group(group) = &token {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(&group.stream(), span));
                inner.set_span(span);
                token = proc_macro2::TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}
