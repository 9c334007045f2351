//! Requests awaiting their responses, by correlation id.
//!
//! A Kafka broker answers a connection's requests in order, but pairing by
//! correlation id does not rely on that. The map is bounded: a client that
//! pipelines more than `max_pending` requests without answers makes the
//! decoder give up rather than grow without limit.

use std::collections::HashMap;

use super::summary::TopicPartition;
use crate::decoder::Fault;
use crate::Timestamp;

/// A request whose response has not come yet.
#[derive(Debug, Clone)]
pub struct PendingRequest {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<std::sync::Arc<str>>,
    pub started: Timestamp,
    pub request_size: u64,
    /// Produce: the topics and partitions it carried.
    pub topics: Option<Vec<TopicPartition>>,
}

pub struct Pending {
    by_correlation: HashMap<i32, PendingRequest>,
    max: usize,
}

impl Pending {
    pub fn new(max: usize) -> Self {
        Self {
            by_correlation: HashMap::new(),
            max,
        }
    }

    /// Adds a request; `Err` with it if the map is full or its correlation
    /// id is already awaiting a response.
    pub fn insert(&mut self, request: PendingRequest) -> Result<(), Fault> {
        if self.by_correlation.len() >= self.max {
            return Err(Fault::limit(format!(
                "more than {} requests awaiting responses",
                self.max
            )));
        }
        if self.by_correlation.contains_key(&request.correlation_id) {
            return Err(Fault::unexpected(format!(
                "correlation id {} reused while its request awaits a response",
                request.correlation_id
            )));
        }
        self.by_correlation.insert(request.correlation_id, request);
        Ok(())
    }

    pub fn take(&mut self, correlation_id: i32) -> Option<PendingRequest> {
        self.by_correlation.remove(&correlation_id)
    }

    pub fn len(&self) -> usize {
        self.by_correlation.len()
    }

    pub fn clear(&mut self) {
        self.by_correlation.clear();
        // Let a connection that once had many requests in flight give the memory back.
        self.by_correlation.shrink_to(16);
    }
}
