//! What redaction costs an exchange with nothing secret: no allocation at
//! all (counted by a global allocator), and the time it takes, printed
//! (`cargo test --release --test redaction_cost -- --nocapture`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

use tapmesh::protocols::http::HeaderBlock;
use tapmesh::redact::Redactor;

/// Counts this thread's allocations while `COUNTING` is on.
struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // try_with: the thread's locals may be gone while it exits.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocations(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    ALLOCATIONS.with(|n| n.get())
}

/// A browser's request for a page, and the page: nothing secret.
fn exchange() -> (HeaderBlock, HeaderBlock, String, String, String) {
    let mut request = HeaderBlock::new();
    for (name, value) in [
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
    ] {
        request.push_str(name, value);
    }
    let mut response = HeaderBlock::new();
    for (name, value) in [
        ("Server", "nginx/1.22.1"),
        ("Date", "Thu, 03 Dec 2026 10:00:00 GMT"),
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", "2048"),
        ("Cache-Control", "no-cache"),
    ] {
        response.push_str(name, value);
    }
    let page = format!(
        "<!doctype html><title>items</title>{}",
        "<li>item</li>".repeat(150)
    );
    (
        request,
        response,
        String::new(),
        page,
        "/items?page=2&sort=price".into(),
    )
}

#[test]
fn nothing_secret_costs_no_allocation() {
    let redactor = Redactor::default_shared();
    let (request, response, mut request_body, mut response_body, mut target) = exchange();
    let (request_before, response_before) = (request.clone(), response.clone());
    let page = response_body.clone();
    let mut kept = (HeaderBlock::new(), HeaderBlock::new());
    let count = allocations(|| {
        kept.0 = redactor.headers(request);
        kept.1 = redactor.headers(response);
        redactor.body(&mut request_body, None, None);
        redactor.body(&mut response_body, Some("text/html; charset=utf-8"), None);
        redactor.target(&mut target);
    });
    assert_eq!(count, 0, "allocations for an exchange with nothing secret");
    assert_eq!(kept.0, request_before);
    assert_eq!(kept.1, response_before);
    assert_eq!(response_body, page);
    assert_eq!(target, "/items?page=2&sort=price");
}

#[test]
fn what_it_costs_per_exchange() {
    let redactor = Redactor::default_shared();
    let rounds = 20_000u32;
    let template = exchange();
    let json_body = r#"{"items":[{"sku":"A-7","qty":3,"price":9.5},{"sku":"B-2","qty":1,"price":4.25}],"note":"leave at the door","customer":{"name":"Alice","city":"Lyon"}}"#;
    let mut plain = std::time::Duration::ZERO;
    let mut json = std::time::Duration::ZERO;
    for _ in 0..rounds {
        let (request, response, mut request_body, mut response_body, mut target) = template.clone();
        let start = Instant::now();
        let request = redactor.headers(request);
        let response = redactor.headers(response);
        redactor.body(&mut request_body, None, None);
        redactor.body(&mut response_body, Some("text/html"), None);
        redactor.target(&mut target);
        plain += start.elapsed();
        std::hint::black_box((request, response, request_body, response_body, target));

        let mut body = json_body.to_string();
        let start = Instant::now();
        redactor.body(&mut body, Some("application/json"), None);
        json += start.elapsed();
        std::hint::black_box(body);
    }
    let per = |d: std::time::Duration| d.as_nanos() / u128::from(rounds);
    let json_allocations = allocations(|| {
        let mut body = json_body.to_string();
        redactor.body(&mut body, Some("application/json"), None);
    });
    println!(
        "redaction per exchange with nothing secret: {} ns (headers, bodies, target); \
         a {}-byte JSON body with nothing secret: {} ns, {} allocations (the copy of the body included)",
        per(plain),
        json_body.len(),
        per(json),
        json_allocations
    );
}
