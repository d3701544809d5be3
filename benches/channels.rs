//! Outbox delivery throughput for channel messages: 200 signed webhook messages (20
//! incidents × 10 events) delivered by `deliver` from a SQLite outbox to a loopback
//! receiver that answers each after 50 ms, with the per-channel rate limit off. Prints
//! messages per second; asserts nothing. `cargo bench --bench channels`.

use anyhow::Result;
use dqwatch::clock::SystemClock;
use dqwatch::config;
use dqwatch::engine::deliver::deliver;
use dqwatch::model::{Notice, Secret};
use dqwatch::notify::Channels;
use dqwatch::store::Store;
use std::time::{Duration, Instant};

const INCIDENTS: i64 = 20;
const EVENTS: i64 = 10;
const ANSWER_AFTER: Duration = Duration::from_millis(50);

#[tokio::main]
async fn main() -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let app = axum::Router::new().fallback(|| async {
        tokio::time::sleep(ANSWER_AFTER).await;
        axum::http::StatusCode::NO_CONTENT
    });
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("dqwatch.toml");
    std::fs::write(
        &path,
        format!(
            "[connections.w]\nurl = \"sqlite://w.db\"\n\
             [channels.bench]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\n\
             secret = \"whsec_YmVuY2gtc2VjcmV0LWtleQ==\"\nrate_limit = \"0s\"\n"
        ),
    )?;
    let cfg = config::load(&path, &|_| None).map_err(|d| anyhow::anyhow!("{d:?}"))?;
    let channels = Channels::new(&cfg).map_err(anyhow::Error::msg)?;
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let store = Store::open(&Secret::new(url)).await?;
    let now = dqwatch::clock::Clock::now(&SystemClock);
    for e in 0..EVENTS {
        for i in 1..=INCIDENTS {
            let notice = Notice {
                channel: "webhook:bench".into(),
                target: "bench".into(),
                summary: format!("incident {i} event {e}"),
                message_id: format!("incident-{i}.0.{e}"),
                payload: serde_json::json!({ "schema_version": 1, "incident": { "id": i }, "event": { "id": e } }),
            };
            store.test_insert_notice(Some(i), &notice, now).await?;
        }
    }
    let total = (INCIDENTS * EVENTS) as f64;
    let start = Instant::now();
    let d = deliver(&store, None, &channels, &SystemClock).await?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "channels: {} of {total} webhook messages delivered in {secs:.2} s = {:.1} msg/s \
         (receiver answers in {} ms; rate limit off; one sender, so at most {:.1} msg/s)",
        d.sent,
        d.sent as f64 / secs,
        ANSWER_AFTER.as_millis(),
        1.0 / ANSWER_AFTER.as_secs_f64()
    );
    Ok(())
}
