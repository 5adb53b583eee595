//! Three agents embedded in one program on loopback: they form an
//! encrypted cluster, one broadcasts, every one delivers, a key set on one
//! is read on another, then one leaves and the others see it go.
//!
//! `cargo run -p hearsay-agent --example embed`

use hearsay_agent::{Agent, AgentConfig, Key, MemberState, SwimPreset};
use std::time::Duration;

/// Polls `ok` every 20 ms for up to `limit`.
async fn until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> anyhow::Result<()> {
    let start = tokio::time::Instant::now();
    while !ok() {
        if start.elapsed() > limit {
            anyhow::bail!("timed out after {limit:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("{what}: {:?}", start.elapsed());
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let key = Key::generate();
    let config = |name: &str, join: Vec<std::net::SocketAddr>| {
        let mut c = AgentConfig::new(name)
            .bind("127.0.0.1:0".parse().expect("literal"))
            .join(join)
            .keys(vec![key.clone()]);
        c.cluster = "example".into();
        c.preset = SwimPreset::Local;
        c
    };
    let a = Agent::start(config("a", vec![])).await?;
    let b = Agent::start(config("b", vec![a.local_addr()])).await?;
    let c = Agent::start(config("c", vec![a.local_addr()])).await?;
    let mut events = a.events();
    let all_alive = |x: &Agent| {
        x.members()
            .iter()
            .filter(|m| m.state == MemberState::Alive)
            .count()
            == 3
    };
    until("all three see three alive", Duration::from_secs(10), || {
        [&a, &b, &c].iter().all(|x| all_alive(x))
    })
    .await?;

    let mut at_c = c.deliveries();
    b.broadcast(b"hello from b".to_vec()).await?;
    let got = tokio::time::timeout(Duration::from_secs(5), at_c.recv()).await??;
    println!(
        "c delivered {:?} from {} (its #{})",
        String::from_utf8_lossy(&got.data),
        got.origin,
        got.seq
    );

    a.kv_set("color".into(), "blue".into()).await?;
    until("c reads color=blue", Duration::from_secs(5), || {
        c.kv().get("color").map(String::as_str) == Some("blue")
    })
    .await?;

    c.leave().await;
    drop(c);
    until("a and b list c as left", Duration::from_secs(10), || {
        [&a, &b].iter().all(|x| {
            x.members()
                .iter()
                .any(|m| m.name == "c" && m.state == MemberState::Left)
        })
    })
    .await?;
    while let Ok(e) = events.try_recv() {
        println!("a saw {} {}", e.name, e.change);
    }
    Ok(())
}
