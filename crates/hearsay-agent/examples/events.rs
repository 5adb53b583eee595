//! User events and tags from a program: three agents on loopback; one
//! changes its tags at runtime and the others see it updated; one sends
//! user events and every agent's application takes them from its stream,
//! once each and in order per origin (what a shell handler,
//! `--event-handler user:deploy=COMMAND`, would get).
//!
//! `cargo run -p hearsay-agent --example events`

use hearsay_agent::{Agent, AgentConfig, Change, MemberState, SwimPreset, TagsChange};
use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let start = |name: &str, join: Vec<std::net::SocketAddr>| {
        let mut c = AgentConfig::new(name)
            .bind("127.0.0.1:0".parse().expect("literal"))
            .join(join)
            .tag("role", "web");
        c.preset = SwimPreset::Local;
        Agent::start(c)
    };
    let a = start("a", vec![]).await?;
    let b = start("b", vec![a.local_addr()]).await?;
    let c = start("c", vec![a.local_addr()]).await?;
    b.ready(Duration::from_secs(5)).await?;
    c.ready(Duration::from_secs(5)).await?;

    // Tags: c becomes a cache; a hears of it as an update.
    let mut changes = a.events();
    c.set_tags(TagsChange {
        set: [("role".to_string(), "cache".to_string())].into(),
        ..TagsChange::default()
    })
    .await?;
    loop {
        let e = tokio::time::timeout(Duration::from_secs(5), changes.recv()).await??;
        if e.name == "c" && e.change == Change::Updated {
            break;
        }
    }
    for m in a.members() {
        if m.state == MemberState::Alive {
            println!("a sees {} with role {}", m.name, m.tags["role"]);
        }
    }

    // User events: every agent's application takes them in order.
    let mut streams = [
        a.user_event_stream(),
        b.user_event_stream(),
        c.user_event_stream(),
    ];
    for v in ["v1.4.1", "v1.4.2"] {
        let lamport = b
            .event("deploy".into(), v.as_bytes().to_vec(), false)
            .await?;
        println!("b sent deploy {v} (Lamport time {lamport})");
    }
    for (name, s) in ["a", "b", "c"].iter().zip(streams.iter_mut()) {
        for _ in 0..2 {
            let e = tokio::time::timeout(Duration::from_secs(5), s.recv()).await??;
            println!(
                "{name} runs {} {} from {}",
                e.name,
                String::from_utf8_lossy(&e.payload),
                e.origin
            );
        }
    }
    for x in [a, b, c] {
        x.shutdown().await;
    }
    Ok(())
}
