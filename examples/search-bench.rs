//! Search benchmark at a realistic size: N reports made from the bundled samples (each with
//! words of its own), written through the publish path, indexed from scratch; then the query
//! latency of the tantivy index beside a naive scan of the folded texts (the simpler design
//! it must beat), and the delay from publishing a report to finding it. Run by
//! `scripts/bench-search`; prints one table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use clap::Parser;
use crypto_report::reports::{Batch, Card, Publisher, Report};
use crypto_report::search::{ReportText, Search, SearchQuery, fold};
use crypto_report::store::{FILE_NAME, Store};
use crypto_report::tasks::Background;

#[derive(Parser, Debug)]
struct Args {
    /// Reports in the store.
    #[arg(long, default_value_t = 20_000)]
    reports: u64,
    /// Times each query is run.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Publications timed for the publish-to-searchable delay.
    #[arg(long, default_value_t = 20)]
    publishes: usize,
    /// Leave out the naive scan (quicker runs while tuning); the table shows "-" for it.
    #[arg(long)]
    engine_only: bool,
    /// Only build the store and the index: the build's time and size, no query (for the
    /// index build at 200,000 reports).
    #[arg(long)]
    index_only: bool,
    /// Keep the store and the index in this folder, and reuse what an earlier run left
    /// there (a store already holding `--reports` reports is not built again): for runs
    /// that change only the queries' code.
    #[arg(long)]
    keep: Option<std::path::PathBuf>,
    /// Run only the queries whose text contains this (to profile one kind of query).
    #[arg(long)]
    only: Option<String>,
}

const QUERIES: &[&str] = &[
    "lạm phát",
    "lam phat",
    "ETF",
    "dòng tiền ETF",
    "dong tien etf",
    "bitcoin",
    "fed lãi suất",
    "stablecoin",
    "thanh lý",
    "solana",
    "inflation",
    "fear greed",
    "\"quỹ ETF\"",
    "hỗ trợ kháng cự",
    "ho tro khang cu",
    "market cap",
    "zzyzx",
    "ethereum staking",
    // Syllables side by side: quoted, with a word left out, a group that is often apart.
    "\"lạm phát\"",
    "\"lam phat\" -etf",
    "tham lam",
    "thị trường tăng",
    "làm",
];

fn samples() -> Vec<Report> {
    crypto_report::demo::SAMPLE_REPORTS
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            #[derive(serde::Deserialize)]
            struct Row {
                id: u64,
                html_content: String,
                css_content: Option<String>,
                js_content: Option<String>,
                html_content_en: Option<String>,
                js_content_en: Option<String>,
                created_at: String,
            }
            let r: Row = serde_json::from_slice(l).expect("sample");
            Report {
                id: r.id,
                html_content: r.html_content,
                css_content: r.css_content,
                js_content: r.js_content,
                html_content_en: r.html_content_en,
                js_content_en: r.js_content_en,
                created_at: format!("{}Z", r.created_at.trim_end_matches('Z'))
                    .parse()
                    .or_else(|_| r.created_at.parse())
                    .unwrap_or_else(|_| Utc::now()),
            }
        })
        .collect()
}

/// Report `id`: a sample's text with a paragraph of words picked from every sample, so
/// reports differ in their words and frequencies as real ones do.
fn make(
    id: u64,
    base: &[Report],
    vocabulary: &[String],
    start: DateTime<Utc>,
    step: TimeDelta,
) -> Report {
    let mut r = base[(id as usize) % base.len()].clone();
    let mut seed = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut words = Vec::new();
    for _ in 0..60 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        words.push(vocabulary[(seed % vocabulary.len() as u64) as usize].as_str());
    }
    let extra = format!(
        "<section id=\"x\"><h2>Ghi chú {id}</h2><p>{}</p></section>",
        words.join(" ")
    );
    r.html_content.push_str(&extra);
    if let Some(en) = &mut r.html_content_en {
        en.push_str(&extra);
    }
    r.id = id;
    r.created_at = start + step * id as i32;
    r
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// The simpler design: every report's folded text in memory, each query a scan for its
/// words, ranked by how often they occur.
fn naive(texts: &[(u64, String)], query: &str) -> Vec<u64> {
    let words: Vec<String> = fold(query)
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| format!(" {w} "))
        .collect();
    if words.is_empty() {
        return Vec::new();
    }
    let mut hits: Vec<(usize, u64)> = texts
        .iter()
        .filter_map(|(id, text)| {
            let mut score = 0;
            for w in &words {
                let n = text.matches(w.as_str()).count();
                if n == 0 {
                    return None;
                }
                score += n;
            }
            Some((score, *id))
        })
        .collect();
    hits.sort_unstable_by(|a, b| b.cmp(a));
    hits.truncate(10);
    hits.into_iter().map(|(_, id)| id).collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = match &args.keep {
        Some(kept) => {
            std::fs::create_dir_all(kept).expect("--keep folder");
            kept.clone()
        }
        None => temp.path().to_owned(),
    };
    let store = Arc::new(Store::open(&dir.join(FILE_NAME)).expect("store"));
    let base = samples();
    let mut vocabulary: Vec<String> = base
        .iter()
        .flat_map(|r| {
            let t = ReportText::of(r, &Card::of(r));
            let mut all = t.vi.body.clone();
            if let Some(en) = t.en {
                all.push(' ');
                all.push_str(&en.body);
            }
            all.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|w| w.chars().all(char::is_alphabetic) && w.chars().count() > 2)
        .collect();
    vocabulary.sort();
    vocabulary.dedup();
    let start: DateTime<Utc> = "2019-01-01T01:00:00Z".parse().expect("date");
    // Three hours apart, closer where that would reach the future (a report dated in the
    // future is refused): 200,000 reports are about 20 minutes apart.
    let count = args.reports + args.publishes as u64 + 1;
    let room = (Utc::now() - start).num_seconds() / count as i64;
    let step = TimeDelta::hours(3).min(TimeDelta::seconds(room));

    // Written without the index listening, as `crypto-report import` would.
    let quiet = Publisher::new(Arc::clone(&store));
    let t = Instant::now();
    let held = store.count().expect("count");
    let first = if held >= args.reports {
        args.reports + 1
    } else {
        1
    };
    for chunk in (first..=args.reports).collect::<Vec<_>>().chunks(500) {
        let batch: Vec<Report> = chunk
            .iter()
            .map(|id| make(*id, &base, &vocabulary, start, step))
            .collect();
        quiet.publish(Batch::of(batch)).expect("publish");
    }
    eprintln!("stored {} reports in {:?}", args.reports, t.elapsed());

    // The index catches up with the store by itself.
    let tasks = Background::new();
    let search = Search::open(Arc::clone(&store));
    let t = Instant::now();
    search.start(&tasks);
    search.settled().await;
    let build = t.elapsed();
    eprintln!("indexed {} in {build:?}", search.status().documents);
    let index_dir = dir.join(crypto_report::search::DIR_NAME);
    for (kind, bytes) in sizes_by_kind(&index_dir) {
        eprintln!("  {:>10.1} MB  *.{kind}", bytes as f64 / 1e6);
    }
    if args.index_only {
        println!();
        println!(
            "search index built from a store of {} reports",
            args.reports
        );
        println!("| measure | tantivy index | target |");
        println!("|---|---|---|");
        println!(
            "| index built from the store (s) | {:.1} | <= 6 at 20,000; <= 60 at 200,000 |",
            build.as_secs_f64()
        );
        println!(
            "| index on disk (MB) | {:.1} | <= 100 at 20,000 |",
            walk_size(&index_dir) as f64 / 1e6
        );
        let _ = tasks.shutdown(Duration::from_secs(10)).await;
        return;
    }

    // The baseline's data: every report's folded text (what the index also holds).
    let mut texts = Vec::new();
    if !args.engine_only {
        store
            .for_each_report(|r| {
                let t = ReportText::of(&r, &Card::of(&r));
                let mut all = format!(" {} {} ", fold(&t.vi.title), fold(&t.vi.body));
                if let Some(en) = t.en {
                    all.push_str(&format!("{} {} ", fold(&en.title), fold(&en.body)));
                }
                texts.push((r.id, all));
                Ok(())
            })
            .expect("walk");
    }

    // Reports the queries run over (a kept store may hold an earlier run's publications too).
    let searched = search.status().documents;
    let range_from: DateTime<Utc> = start + TimeDelta::days(365);
    let mut queries: Vec<SearchQuery> = QUERIES
        .iter()
        .map(|q| SearchQuery {
            text: (*q).into(),
            page: 1,
            ..SearchQuery::default()
        })
        .collect();
    queries.push(SearchQuery {
        text: "bitcoin".into(),
        page: 3,
        ..SearchQuery::default()
    });
    queries.push(SearchQuery {
        text: "lam phat".into(),
        from: Some(range_from),
        until: Some(range_from + TimeDelta::days(90)),
        page: 1,
    });
    if let Some(only) = &args.only {
        queries.retain(|q| q.text.contains(only.as_str()));
    }
    let mut engine = Vec::new();
    let mut scan = Vec::new();
    let mut matches = 0usize;
    let mut per_query = vec![Vec::new(); queries.len()];
    for round in 0..args.rounds {
        for (i, q) in queries.iter().enumerate() {
            let t = Instant::now();
            let r = search.search(q).expect("search");
            engine.push(t.elapsed());
            per_query[i].push(t.elapsed());
            if round == 0 {
                matches += r.total;
            }
            if !args.engine_only {
                let t = Instant::now();
                std::hint::black_box(naive(&texts, &q.text));
                scan.push(t.elapsed());
            }
        }
    }
    for (q, times) in queries.iter().zip(&mut per_query) {
        times.sort();
        eprintln!(
            "  {:>8} ms  {:?} page {}",
            ms(percentile(times, 0.5)),
            q.text,
            q.page
        );
    }
    engine.sort();
    scan.sort();

    // Publish-to-searchable through the one publish path, the index subscribed.
    let publisher = Publisher::telling(Arc::clone(&store), None, vec![Arc::new(search.clone())]);
    let mut delays = Vec::new();
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for i in 0..args.publishes {
        let id = args.reports + 1 + i as u64;
        // A word of this run's own: a store kept from an earlier run holds that run's.
        let word = format!("qzx{nonce}n{i}marker");
        let mut r = make(id, &base, &vocabulary, start, step);
        r.html_content.push_str(&format!("<p>{word}</p>"));
        let q = SearchQuery {
            text: word,
            page: 1,
            ..SearchQuery::default()
        };
        let t = Instant::now();
        let p = publisher.clone();
        tokio::task::spawn_blocking(move || p.publish(Batch::of(vec![r])))
            .await
            .expect("join")
            .expect("publish");
        loop {
            if search.search(&q).expect("search").total == 1 {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "never searchable");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        delays.push(t.elapsed());
    }
    delays.sort();
    let index_bytes: u64 = walk_size(&dir.join(crypto_report::search::DIR_NAME));

    println!();
    println!(
        "search at {} reports ({} queries x {} rounds; {} matches in all per round)",
        searched,
        queries.len(),
        args.rounds,
        matches
    );
    println!("| measure | naive scan (baseline) | tantivy index | target |");
    println!("|---|---|---|---|");
    // "-" for the baseline when it was left out (--engine-only).
    let base = |p: f64| {
        if scan.is_empty() {
            "-".to_owned()
        } else {
            ms(percentile(&scan, p))
        }
    };
    println!(
        "| query p50 (ms) | {} | {} | <= 5 |",
        base(0.5),
        ms(percentile(&engine, 0.5))
    );
    println!(
        "| query p99 (ms) | {} | {} | <= 20 |",
        base(0.99),
        ms(percentile(&engine, 0.99))
    );
    println!(
        "| query max (ms) | {} | {} | |",
        base(1.0),
        ms(percentile(&engine, 1.0))
    );
    if !scan.is_empty() {
        println!(
            "| p50 ratio (index / scan) | 1.00 | {:.3} | |",
            percentile(&engine, 0.5).as_secs_f64() / percentile(&scan, 0.5).as_secs_f64().max(1e-9)
        );
    }
    println!(
        "| publish to searchable p50 (ms) | - | {} | <= 1000 |",
        ms(percentile(&delays, 0.5))
    );
    println!(
        "| publish to searchable max (ms) | - | {} | <= 1000 |",
        ms(percentile(&delays, 1.0))
    );
    println!(
        "| index built from the store (s) | - | {:.1} | |",
        build.as_secs_f64()
    );
    println!(
        "| index on disk (MB) | - | {:.1} | |",
        index_bytes as f64 / 1e6
    );
    let _ = tasks.shutdown(Duration::from_secs(10)).await;
}

/// Bytes of the index's files by extension (postings, positions, stored text...).
fn sizes_by_kind(dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut kinds = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
    {
        let path = entry.path();
        let kind = path
            .extension()
            .map_or_else(String::new, |e| e.to_string_lossy().into_owned());
        let len = entry.metadata().map_or(0, |m| m.len());
        *kinds.entry(kind).or_insert(0u64) += len;
    }
    kinds.into_iter().collect()
}

fn walk_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
