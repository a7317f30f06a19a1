use ai_retry::retry;
use std::io;

#[retry]
fn numbers() -> io::Result<impl Iterator<Item = u32>> {
    Ok(0..3)
}

fn main() {
    let _ = numbers();
}
