//! The core stays sans-IO: no async runtime, no sockets, no clocks. Its
//! dependency list is the contract (DESIGN.md); this test holds it.

#[test]
fn core_depends_only_on_pure_crates() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("a [dependencies] table");
    let names: Vec<&str> = deps
        .lines()
        .filter_map(|l| l.split(['=', '.']).next())
        .map(str::trim)
        .filter(|n| !n.is_empty() && !n.starts_with('#'))
        .collect();
    // ed25519-dalek: members' signatures over their own claims, computed
    // from the key bytes the shell gives (no randomness, no IO of its own).
    let allowed = ["ed25519-dalek", "rand", "rand_chacha", "serde", "tracing"];
    for n in &names {
        assert!(
            allowed.contains(n),
            "hearsay-core must not depend on {n:?} (allowed: {allowed:?})"
        );
    }
    assert!(names.contains(&"rand_chacha"));
}
