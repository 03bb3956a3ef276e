//! End-to-end tests across the two programs (in `e2e/main.rs`): the real `auth-accounts` and
//! `auth-edge` binaries, built by the same `cargo test --workspace` run, talking over loopback.
