//! Per-thread pools of relay buffers and pipes.
//!
//! A direction holds a buffer (copy mode) or a pipe (splice mode) only
//! while data is in flight: it takes one when a read finds data and gives it
//! back when the source runs dry. So an idle connection holds neither, a
//! busy one keeps the same buffer for a whole burst (no allocation per
//! chunk), and the pools stay as large as the number of directions that are
//! moving data at once on a thread. Thread-local, so taking and giving back
//! is a `Vec` push or pop with no lock.

use std::cell::RefCell;
use std::io;

use bytes::BytesMut;

use super::pipe::Pipe;

/// Bytes read per chunk in copy mode.
pub(crate) const COPY_CHUNK: usize = 64 * 1024;
/// Idle buffers or pipes kept per thread; beyond that they are freed.
const POOL_MAX: usize = 64;

thread_local! {
    static BUFFERS: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    static PIPES: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for a whole chunk.
pub(crate) fn take_buffer() -> BytesMut {
    BUFFERS
        .with(|pool| pool.borrow_mut().pop())
        .unwrap_or_else(|| BytesMut::with_capacity(COPY_CHUNK))
}

/// Returns an empty buffer to the pool if its whole allocation is free again
/// (nothing else holds a chunk of it); otherwise lets it go.
pub(crate) fn give_back_buffer(mut buf: BytesMut) {
    debug_assert!(buf.is_empty());
    if buf.try_reclaim(COPY_CHUNK) {
        BUFFERS.with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < POOL_MAX {
                pool.push(buf);
            }
        });
    }
}

/// An empty pipe.
pub(crate) fn take_pipe() -> io::Result<Pipe> {
    match PIPES.with(|pool| pool.borrow_mut().pop()) {
        Some(pipe) => Ok(pipe),
        None => Pipe::new(),
    }
}

/// Returns a pipe that is known to be empty.
pub(crate) fn give_back_pipe(pipe: Pipe) {
    PIPES.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOL_MAX {
            pool.push(pipe);
        }
    });
}
