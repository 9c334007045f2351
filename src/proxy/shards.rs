//! Where proxied connections run: one single-threaded runtime per core.
//!
//! A relay is a short burst of work per chunk: read, write, feed the
//! decoder. On tokio's work-stealing runtime the readiness of a socket is
//! often seen by one worker while the connection's task runs on another, so
//! every request pays a cross-thread wake-up, and the workers take turns at
//! the one shared epoll. Measured with wrk (10 keep-alive connections, small
//! responses) that overhead was about a fifth of the proxy's CPU per
//! request. Here each connection is handed, once, to a shard: a thread with
//! its own current-thread runtime and its own epoll, where it stays. Its
//! readiness, its task and its relay buffers (see [`super::pool`], per
//! thread) all live on that thread, the way haproxy and nginx pin
//! connections to threads.
//!
//! The shards are shared by every proxy in the process (an environment's
//! edges, a Kafka edge's broker listeners) and live as long as the process:
//! an idle shard is a thread parked in `epoll_wait`. A connection goes to
//! the shard with the fewest open connections.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::runtime::Handle;

/// Overrides the number of shards (default: the number of cores).
const THREADS_ENV: &str = "TAPMESH_RELAY_THREADS";

/// The process's relay threads.
pub(crate) struct Shards {
    shards: Vec<Shard>,
    /// Where the search for the least loaded shard starts, so that ties are
    /// spread rather than all landing on the first.
    next: AtomicUsize,
}

struct Shard {
    handle: Handle,
    /// Connections running on it.
    open: Arc<AtomicUsize>,
}

/// Decrements its shard's count when the connection's task ends (or is
/// dropped unfinished).
struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pin_project_lite::pin_project! {
    /// A connection's future and its place in its shard's count. A struct
    /// rather than an `async` block: the block would keep the moved-in
    /// future twice (as captured and as awaited), doubling every idle
    /// connection's task.
    struct Counted<F> {
        #[pin]
        connection: F,
        _open: OpenGuard,
    }
}

impl<F: Future<Output = ()>> Future for Counted<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.project().connection.poll(cx)
    }
}

impl Shards {
    /// The shards, started on first use.
    pub(crate) fn get() -> &'static Shards {
        static SHARDS: OnceLock<Shards> = OnceLock::new();
        SHARDS.get_or_init(|| Shards::start(thread_count()))
    }

    fn start(count: usize) -> Self {
        let shards = (0..count)
            .map(|i| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("building a relay runtime");
                let handle = runtime.handle().clone();
                std::thread::Builder::new()
                    .name(format!("tapmesh-relay-{i}"))
                    .spawn(move || runtime.block_on(std::future::pending::<()>()))
                    .expect("starting a relay thread");
                Shard {
                    handle,
                    open: Arc::new(AtomicUsize::new(0)),
                }
            })
            .collect();
        Self {
            shards,
            next: AtomicUsize::new(0),
        }
    }

    /// Runs `connection` to completion on the least busy shard. Whatever
    /// it creates there (sockets, timers, tasks it spawns) belongs to that
    /// shard's runtime.
    pub(crate) fn spawn<F>(&self, connection: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.shards.len();
        let shard = (0..n)
            .map(|i| &self.shards[(start + i) % n])
            .min_by_key(|s| s.open.load(Ordering::Relaxed))
            .expect("at least one shard");
        shard.open.fetch_add(1, Ordering::Relaxed);
        shard.handle.spawn(Counted {
            connection,
            _open: OpenGuard(shard.open.clone()),
        })
    }

    #[cfg(test)]
    fn open_counts(&self) -> Vec<usize> {
        self.shards
            .iter()
            .map(|s| s.open.load(Ordering::Relaxed))
            .collect()
    }
}

fn thread_count() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match std::env::var(THREADS_ENV) {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                tracing::warn!(value = %v, "{THREADS_ENV} is not a positive number; using {cores}");
                cores
            }
        },
        Err(_) => cores,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn connections_go_to_the_least_busy_shard_and_are_counted_until_they_end() {
        let shards = Shards::start(3);
        let (release, released) = tokio::sync::watch::channel(false);
        let mut handles = Vec::new();
        for _ in 0..6 {
            let mut released = released.clone();
            handles.push(shards.spawn(async move {
                let _ = released.wait_for(|r| *r).await;
            }));
        }
        assert_eq!(shards.open_counts(), vec![2, 2, 2]);
        release.send(true).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            for h in handles {
                tokio::time::timeout(Duration::from_secs(10), h)
                    .await
                    .expect("connection task ended")
                    .unwrap();
            }
        });
        assert_eq!(shards.open_counts(), vec![0, 0, 0]);
    }

    #[test]
    fn tasks_run_on_the_shard_threads() {
        let shards = Shards::start(2);
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..2 {
            let tx = tx.clone();
            shards.spawn(async move {
                let name = std::thread::current().name().map(str::to_string);
                tx.send(name).unwrap();
            });
        }
        let mut names: Vec<_> = (0..2)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["tapmesh-relay-0", "tapmesh-relay-1"]);
    }
}
