//! What redaction adds to an event: an exchange with nothing secret (a
//! browser's page load: its headers, bodies and target), a JSON body with
//! nothing secret, and a login with a bearer token and two secret fields.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tapmesh::redact::Redactor;
use tapmesh_protocols::http::HeaderBlock;

fn block(fields: &[(&str, &str)]) -> HeaderBlock {
    let mut block = HeaderBlock::new();
    for (name, value) in fields {
        block.push_str(name, value);
    }
    block
}

fn redact(c: &mut Criterion) {
    let redactor = Redactor::default_shared();
    let mut group = c.benchmark_group("redact");
    group.throughput(Throughput::Elements(1));

    let mut request = block(&[
        ("Host", "shop.test"),
        (
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
        ),
        ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
        ("Accept-Language", "en-GB,en;q=0.5"),
        ("Accept-Encoding", "gzip, deflate, br"),
        ("Connection", "keep-alive"),
        ("Referer", "http://shop.test/items"),
        ("X-Request-Id", "7f3c9a1e-5b2d-4e8f-9a6c-1d2e3f4a5b6c"),
    ]);
    let mut response = block(&[
        ("Server", "nginx/1.22.1"),
        ("Date", "Thu, 03 Dec 2026 10:00:00 GMT"),
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", "2048"),
        ("Cache-Control", "no-cache"),
    ]);
    let mut page = format!(
        "<!doctype html><title>items</title>{}",
        "<li>item</li>".repeat(150)
    );
    let mut empty = String::new();
    let mut target = "/items?page=2&sort=price".to_string();
    // Nothing secret changes nothing, so the same values go round again.
    group.bench_function("nothing_secret", |b| {
        b.iter(|| {
            request = redactor.headers(std::mem::take(&mut request));
            response = redactor.headers(std::mem::take(&mut response));
            redactor.body(&mut empty, None, None);
            redactor.body(&mut page, Some("text/html; charset=utf-8"), None);
            redactor.target(&mut target);
            black_box((&request, &response, &page, &target));
        })
    });

    let json = r#"{"items":[{"sku":"A-7","qty":3,"price":9.5},{"sku":"B-2","qty":1,"price":4.25}],"note":"leave at the door","customer":{"name":"Alice","city":"Lyon"}}"#;
    let mut body = json.to_string();
    group.bench_function("json_nothing_secret", |b| {
        b.iter(|| redactor.body(black_box(&mut body), Some("application/json"), None))
    });

    let headers = block(&[
        ("Host", "shop.test"),
        (
            "Authorization",
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sig",
        ),
        ("Content-Type", "application/json"),
    ]);
    let login = r#"{"user":"alice","password":"hunter2","profile":{"accessToken":"abc.def.ghi"}}"#;
    group.bench_function("login_with_secrets", |b| {
        b.iter_batched(
            || (headers.clone(), login.to_string()),
            |(headers, mut body)| {
                let headers = redactor.headers(headers);
                redactor.body(&mut body, Some("application/json"), None);
                (headers, body)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, redact);
criterion_main!(benches);
