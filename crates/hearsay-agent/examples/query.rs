//! Queries from a program: three agents on loopback, two answer `load`
//! from the application (a shell handler would do as well:
//! `--event-handler query:load=COMMAND`), one asks everyone, then only
//! those tagged role=web, and prints what comes back as it comes.
//!
//! `cargo run -p hearsay-agent --example query`

use hearsay_agent::query::{Request, Update};
use hearsay_agent::{Agent, AgentConfig, MemberState, SwimPreset};
use std::time::Duration;

async fn agent(name: &str, role: &str, join: Vec<std::net::SocketAddr>) -> anyhow::Result<Agent> {
    let mut c = AgentConfig::new(name)
        .bind("127.0.0.1:0".parse()?)
        .join(join)
        .tag("role", role);
    c.preset = SwimPreset::Local;
    Agent::start(c).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = agent("a", "db", vec![]).await?;
    let b = agent("b", "web", vec![a.local_addr()]).await?;
    let c = agent("c", "web", vec![a.local_addr()]).await?;
    for x in [&b, &c] {
        let mut asked = x.answer_queries().await?;
        let me = x.name().to_string();
        tokio::spawn(async move {
            while let Some(q) = asked.recv().await {
                q.respond(format!("{me}: load 0.{}", me.len()).into_bytes());
            }
        });
    }
    let start = tokio::time::Instant::now();
    while a
        .members()
        .iter()
        .filter(|m| m.state == MemberState::Alive)
        .count()
        < 3
    {
        anyhow::ensure!(start.elapsed() < Duration::from_secs(10), "no cluster");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for tags in [vec![], vec![("role".to_string(), "web".to_string())]] {
        println!("query load, tags {tags:?}:");
        let mut updates = a
            .query(Request {
                name: "load".into(),
                tags: tags.into_iter().collect(),
                timeout: Duration::from_secs(2),
                ..Request::default()
            })
            .await?;
        while let Some(u) = updates.recv().await {
            match u {
                Update::Ack { from, answers } => println!("  ack from {from} (answers: {answers})"),
                Update::Answer { from, payload } => {
                    println!("  {from} answered {:?}", String::from_utf8_lossy(&payload))
                }
                Update::Failed { from, error } => println!("  {from} failed: {error}"),
                Update::Done(s) => println!(
                    "  asked {:?}, answered {:?}, missing {:?}, {} ms",
                    s.asked, s.answered, s.missing, s.elapsed_ms
                ),
            }
        }
    }
    Ok(())
}
