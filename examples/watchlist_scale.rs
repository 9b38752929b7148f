//! How watch lists scale: builds a list with N entries of each kind
//! (exact names, `PREFIX*`, `*SUFFIX`, and globs that need a regex), then
//! times the load and lookups of a miss, a hit of each kind, and a
//! 20 KB name.
//!
//!   cargo run --release --example watchlist_scale [N]
use std::time::Instant;

use hostwatch::detection::watchlist;
use hostwatch::detection::Matcher;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let mut text = String::from("@list scale\n");
    for i in 0..n {
        text.push_str(&format!(
            "HOST-{i:07}\nLAB{i:07}-*\n*-DEV{i:07}\nV[0-9]{i:07}?X\n"
        ));
    }
    let t = Instant::now();
    let entries = watchlist::parse(&text, "scale.list", 2_000_000).unwrap_or_default();
    let parsed = t.elapsed();
    let t = Instant::now();
    let m = Matcher::new(entries);
    let built = t.elapsed();
    println!(
        "{} entries: parsed in {:.2?}, matcher built in {:.2?}",
        m.entries().len(),
        parsed,
        built
    );
    let long = "ab".repeat(10_000);
    let last = n.saturating_sub(1);
    for name in [
        "DESKTOP-4QK2M1L".to_string(),
        format!("host-{last:07}"),
        format!("lab{last:07}-pc"),
        format!("web-dev{last:07}"),
        format!("V3{last:07}zX"),
        long,
    ] {
        let rounds = 20;
        let t = Instant::now();
        let mut hit = None;
        for _ in 0..rounds {
            hit = m.lookup(&name).map(|e| e.id);
        }
        let shown: String = name.chars().take(24).collect();
        println!(
            "lookup {shown:<24} ({} bytes): {:>10.2?} each, {}",
            name.len(),
            t.elapsed() / rounds,
            hit.map_or("no match".to_string(), |id| format!("entry {id}"))
        );
    }
}
