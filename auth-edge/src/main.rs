//! Placeholder binary; the edge is built in its own issue.

fn main() {
    eprintln!(
        "auth-edge is not built yet; it will read the `{}` cookie",
        auth_edge::DEFAULT_ACCESS_COOKIE
    );
    std::process::exit(2);
}
