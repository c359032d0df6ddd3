//! auth_key verification throughput (the check every play and publish
//! request pays). `cargo bench --bench auth`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rts::auth::{Keys, sign, verify, verify_query};

fn bench(c: &mut Criterion) {
    let uri = "/live/demo";
    let key = sign(uri, 1_700_000_000, "0", "0", "primary-key").expect("valid parts");
    let keys = Keys::new("primary-key").with_secondary("secondary-key");
    let query = format!("vhost=pull.example.com&auth_key={key}");
    let validity = Duration::from_secs(1440 * 60);
    let mut g = c.benchmark_group("auth_verify");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    g.bench_function("verify_primary", |b| {
        b.iter(|| {
            verify(
                black_box(uri),
                black_box(&key),
                &keys,
                validity,
                1_700_000_100,
            )
        })
    });
    // A forged hash computes both keys' digests: the worst case.
    let forged = format!("{}-0-0-{}", 1_700_000_000, "0".repeat(32));
    g.bench_function("verify_forged_both_keys", |b| {
        b.iter(|| {
            verify(
                black_box(uri),
                black_box(&forged),
                &keys,
                validity,
                1_700_000_100,
            )
        })
    });
    g.bench_function("verify_query_string", |b| {
        b.iter(|| {
            verify_query(
                black_box(uri),
                Some(black_box(&query)),
                &keys,
                validity,
                1_700_000_100,
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
