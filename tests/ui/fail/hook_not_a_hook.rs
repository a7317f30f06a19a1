use ai_retry::retry;

// A hook is a function's path or a closure.
#[retry(on_retry = 3)]
fn call() -> std::io::Result<()> {
    Ok(())
}

// A closure that does not take the event.
#[retry(on_give_up = |name: &str| println!("{name}"))]
fn other() -> std::io::Result<()> {
    Ok(())
}

fn main() {
    call().unwrap();
    other().unwrap();
}
