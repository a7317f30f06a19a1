use ai_retry::retry;

#[retry(max = 5000000000)]
fn too_many() -> std::io::Result<()> {
    Ok(())
}

#[retry(max = -1)]
fn negative() -> std::io::Result<()> {
    Ok(())
}

fn main() {
    let _ = too_many();
    let _ = negative();
}
