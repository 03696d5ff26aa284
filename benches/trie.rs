//! Subscription-trie micro-benchmarks: matching a topic against 10, 1,000 and 100,000
//! filters, and inserting plus removing one filter in a trie of that size.
//!
//! Filters follow a common IoT shape: sites with 100 devices each, mostly exact per-device
//! filters (`site/{s}/dev/{d}/temp`), some site-wide dashboards (`site/{s}/#`), some
//! per-device-kind wildcards across sites (`site/+/dev/{d}/temp`) and one catch-all
//! `site/+/dev/+/temp`. Topics are drawn from the same space, so most lookups match several
//! filters, as they do in production.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use supermq::topic::SubscriptionTrie;

type Trie = SubscriptionTrie<u64, u32>;

/// `n` filters of the shapes above (one entry per subscriber key).
fn filters(n: usize) -> Vec<String> {
    if n <= 10 {
        let small = [
            "site/0/dev/0/temp",
            "site/0/dev/1/temp",
            "site/0/dev/2/temp",
            "site/1/dev/0/temp",
            "site/1/dev/1/temp",
            "site/1/dev/2/temp",
            "site/0/#",
            "site/+/dev/1/temp",
            "site/+/dev/+/temp",
            "site/0/dev/+/hum",
        ];
        return small.iter().take(n).map(|s| s.to_string()).collect();
    }
    let mut v: Vec<String> = (0..n - 1)
        .map(|i| {
            let (site, dev) = (i / 100, i % 100);
            match dev {
                0..=89 => format!("site/{site}/dev/{dev}/temp"),
                90..=98 => format!("site/{site}/#"),
                _ => format!("site/+/dev/{}/temp", site % 100),
            }
        })
        .collect();
    v.push("site/+/dev/+/temp".into());
    v
}

fn build(filters: &[String]) -> Trie {
    let mut t = Trie::default();
    for (k, f) in filters.iter().enumerate() {
        t.insert(f, k as u64, 1);
    }
    t
}

/// Topics spread over the filters' sites and devices, with a pseudo-random order so that
/// consecutive lookups do not hit the same cache lines.
fn topics(n: usize) -> Vec<String> {
    let sites = (n / 100).max(2);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let site = (x % sites as u64) as usize;
            let dev = ((x >> 32) % 100) as usize;
            format!("site/{site}/dev/{dev}/temp")
        })
        .collect()
}

fn bench_match(c: &mut Criterion) {
    let mut g = c.benchmark_group("trie_match");
    g.throughput(Throughput::Elements(1));
    for n in [10, 1_000, 100_000] {
        let trie = build(&filters(n));
        let topics = topics(n);
        let mut i = 0;
        g.bench_with_input(BenchmarkId::from_parameter(n), &trie, |b, trie| {
            b.iter(|| {
                let topic = &topics[i % topics.len()];
                i += 1;
                let mut hits = 0u32;
                trie.for_each_match(black_box(topic), |_, v| hits += v);
                hits
            })
        });
    }
    // A topic outside every filter: the cost of a miss.
    let trie = build(&filters(100_000));
    g.bench_function("100000_miss", |b| {
        b.iter(|| {
            let mut hits = 0u32;
            trie.for_each_match(black_box("factory/9/line/3/pressure"), |_, v| hits += v);
            hits
        })
    });
    g.finish();
}

fn bench_insert_remove(c: &mut Criterion) {
    let mut g = c.benchmark_group("trie_insert_remove");
    g.throughput(Throughput::Elements(1));
    for n in [10, 1_000, 100_000] {
        let mut trie = build(&filters(n));
        let extra: Vec<String> = (0..256)
            .map(|i| format!("site/{}/dev/{}/humidity", i % 7, i))
            .collect();
        let mut i = 0;
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                let f = &extra[i % extra.len()];
                i += 1;
                trie.insert(black_box(f), u64::MAX, 1);
                trie.remove(black_box(f), &u64::MAX)
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_match, bench_insert_remove
}
criterion_main!(benches);
