use ai_retry::retry;

#[retry]
fn call() {}

fn main() {
    call();
}
