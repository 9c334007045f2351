//! Kafka: requests paired with their responses, one [`KafkaExchange`] each.
//!
//! Framing (`framing.rs`), the request and response headers (`header.rs`)
//! and pairing by correlation id (`pairing.rs`) are written by hand: they must
//! work on every key and version, including those the `kafka-protocol`
//! crate cannot decode, on a frame's prefix alone, and cheaply on every
//! frame. The bodies events need (Produce, Fetch, Metadata, top-level
//! error codes) are read by hand too (`body.rs`), every count checked
//! against the bytes left: `kafka-protocol` allocates arrays by the count
//! on the wire, so garbage could make it abort the process. It is used only
//! to re-encode the responses the [`ResponseRewriter`] changes, after
//! `body.rs` has checked them.
//!
//! Memory per connection is bounded: a frame larger than
//! [`KafkaConfig::max_frame_size`] makes the decoder give up (one
//! [`Decoded::Failure`]), at most [`KafkaConfig::max_pending`] requests
//! wait for responses, and only a frame's first
//! [`KafkaConfig::capture_limit`] bytes are ever kept.

mod api;
mod body;
mod framing;
mod header;
mod pairing;
mod rewrite;
mod summary;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::decoder::Fault;
use crate::{Decoded, Decoder, Direction, Timestamp};
use framing::{Frame, FrameReader};
use pairing::{Pending, PendingRequest};
pub use rewrite::{BrokerAddressMap, ResponseRewriter, RewriteFailure};
pub use summary::TopicPartition;

#[derive(Debug, Clone)]
/// Limits that bound a connection's memory, and what the connections of one
/// edge share.
pub struct KafkaConfig {
    /// Bytes of a Produce request or Fetch response kept for decoding its
    /// topics; a larger one is reported with its header fields only.
    pub capture_limit: usize,
    /// A frame larger than this is taken for garbage: the decoder gives up.
    pub max_frame_size: u32,
    /// Requests that may await responses at once.
    pub max_pending: usize,
    /// Topic names by id, learnt from Metadata responses and shared by the
    /// connections of one edge: Fetch v13+ and Produce v13 name topics by
    /// id alone, and the Metadata that names them may have crossed another
    /// connection.
    pub topic_names: Arc<TopicNames>,
}

/// Topic id (as text) → topic name. Locked only when a Metadata response
/// arrives or a connection meets an id it has not resolved yet.
#[derive(Debug, Default)]
pub struct TopicNames(Mutex<HashMap<String, String>>);

/// Topics remembered per edge at most; past that, new ids stay unnamed.
const MAX_TOPIC_NAMES: usize = 100_000;

impl TopicNames {
    fn learn(&self, topics: Vec<(String, String)>) {
        if topics.is_empty() {
            return;
        }
        let mut names = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for (id, name) in topics {
            if names.len() < MAX_TOPIC_NAMES || names.contains_key(&id) {
                names.insert(id, name);
            }
        }
    }

    fn get(&self, id: &str) -> Option<String> {
        let names = self.0.lock().unwrap_or_else(|e| e.into_inner());
        names.get(id).cloned()
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            capture_limit: 64 * 1024,
            // Kafka's own default socket.request.max.bytes.
            max_frame_size: 100 * 1024 * 1024,
            max_pending: 1024,
            topic_names: Arc::default(),
        }
    }
}

/// Bytes of any frame kept for its header and a small body: enough for a
/// client id and the top-level fields of the responses that have an error code.
const HEADER_KEEP: usize = 4096;

/// One request and its response (none for a Produce with `acks=0`).
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaExchange {
    /// The request's API key (0 Produce, 1 Fetch, 3 Metadata …).
    pub api_key: i16,
    /// Kafka's name for the key; `None` for a key it never defined.
    pub api_name: Option<&'static str>,
    /// The version of that API the request used.
    pub api_version: i16,
    /// The id that paired the response with the request.
    pub correlation_id: i32,
    /// The client's id, as its request header named it.
    pub client_id: Option<Arc<str>>,
    /// The request's first byte.
    pub request_at: Timestamp,
    /// The response's last byte; `None` when no response is expected.
    pub response_at: Option<Timestamp>,
    /// Bytes of the request frame, size field included.
    pub request_size: u64,
    /// Bytes of the response frame, size field included.
    pub response_size: Option<u64>,
    /// The response's top-level error code, where it has one.
    pub error_code: Option<i16>,
    /// Produce and Fetch: every partition, when the body could be decoded.
    pub topics: Option<Vec<TopicPartition>>,
}

impl KafkaExchange {
    /// From the request's first byte to the response's last.
    pub fn latency_ms(&self) -> Option<f64> {
        self.response_at
            .map(|end| end.millis_since(self.request_at))
    }
}

/// Decodes one Kafka connection. See the module docs.
pub struct KafkaDecoder {
    config: KafkaConfig,
    requests: FrameReader,
    responses: FrameReader,
    pending: Pending,
    /// Frames completed by the chunk being fed, reused across chunks.
    frames: Vec<Frame>,
    /// The topic ids this connection has resolved.
    topic_names: HashMap<String, String>,
    /// The last client id seen: a client sends the same one with every
    /// request, so it is shared rather than allocated per request.
    client_id: Option<Arc<str>>,
}

impl KafkaDecoder {
    /// A decoder for one connection, from its first byte.
    pub fn new(config: KafkaConfig) -> Self {
        Self {
            requests: FrameReader::new(config.max_frame_size),
            responses: FrameReader::new(config.max_frame_size),
            pending: Pending::new(config.max_pending),
            frames: Vec::new(),
            topic_names: HashMap::new(),
            client_id: None,
            config,
        }
    }

    /// Requests awaiting a response.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn failure(&mut self, direction: Direction, offset: u64, fault: Fault) -> Decoded {
        self.pending.clear();
        Decoded::Failure(fault.at("kafka", direction, offset))
    }

    fn request(&mut self, frame: Frame, offset: u64) -> Result<Option<KafkaExchange>, Fault> {
        let header = header::parse_request_header(&frame.prefix).ok_or_else(|| {
            Fault::malformed(format!(
                "request at offset {offset} is {} bytes, too short for a header",
                frame.size
            ))
        })?;
        if header.api_key < 0 || header.api_version < 0 {
            return Err(Fault::malformed(format!(
                "request at offset {offset} has API key {} version {}",
                header.api_key, header.api_version
            )));
        }
        let body = header.body_offset.map(|at| frame.prefix.slice(at..));
        let mut topics = None;
        let mut expects_response = true;
        if header.api_key == api::PRODUCE {
            if let Some(body) = &body {
                if body::produce_acks(body, header.api_version) == Some(0) {
                    expects_response = false;
                }
                if frame.is_whole() {
                    topics = body::produce_request(body, header.api_version);
                }
            }
        }
        let request = PendingRequest {
            api_key: header.api_key,
            api_version: header.api_version,
            correlation_id: header.correlation_id,
            client_id: header
                .client_id
                .map(|range| self.shared_client_id(&frame.prefix[range])),
            started: frame.started,
            request_size: frame.wire_size(),
            topics,
        };
        if !expects_response {
            // acks=0: the broker never answers, so the exchange is complete now.
            return Ok(Some(exchange(request, None, None, None)));
        }
        self.pending.insert(request)?;
        Ok(None)
    }

    fn response(
        &mut self,
        frame: Frame,
        at: Timestamp,
        offset: u64,
    ) -> Result<KafkaExchange, Fault> {
        let correlation_id = header::response_correlation_id(&frame.prefix).ok_or_else(|| {
            Fault::malformed(format!(
                "response at offset {offset} is too short for a header"
            ))
        })?;
        let mut request = self.pending.take(correlation_id).ok_or_else(|| {
            Fault::unexpected(format!("response at offset {offset} has correlation id {correlation_id}, which no request awaits"))
        })?;
        let body = api::response_header_version(request.api_key, request.api_version)
            .and_then(|v| header::response_body_offset(&frame.prefix, v))
            .map(|at| frame.prefix.slice(at..));
        let mut error_code = None;
        if let Some(body) = body {
            let version = request.api_version;
            match request.api_key {
                api::PRODUCE => {
                    let mut topics = request.topics.take().unwrap_or_default();
                    let codes = frame
                        .is_whole()
                        .then(|| body::produce_response(&body, version))
                        .flatten();
                    for (topic, partition, code) in codes.into_iter().flatten() {
                        match topics
                            .iter_mut()
                            .find(|t| t.topic == topic && t.partition == partition)
                        {
                            Some(t) => t.error_code = Some(code),
                            // The request's body was past the capture limit.
                            None => topics.push(TopicPartition {
                                topic,
                                partition,
                                records: 0,
                                bytes: 0,
                                error_code: Some(code),
                            }),
                        }
                    }
                    request.topics = Some(self.named(topics));
                }
                api::FETCH if frame.is_whole() => {
                    if let Some((code, topics)) = body::fetch_response(&body, version) {
                        error_code = code;
                        request.topics = Some(self.named(topics));
                    }
                }
                api::METADATA if frame.is_whole() => {
                    if let Some((code, topics)) = body::metadata_response(&body, version) {
                        error_code = code;
                        self.config.topic_names.learn(topics);
                    }
                }
                // Fixed-place error codes are in the prefix even past the
                // capture limit (a large Fetch response, say).
                key => error_code = body::top_level_error_code(key, version, &body),
            }
        }
        Ok(exchange(
            request,
            Some(at),
            Some(frame.wire_size()),
            error_code,
        ))
    }
}

impl KafkaDecoder {
    fn shared_client_id(&mut self, id: &[u8]) -> Arc<str> {
        match &self.client_id {
            Some(last) if last.as_bytes() == id => last.clone(),
            _ => {
                let id: Arc<str> = String::from_utf8_lossy(id).into();
                self.client_id = Some(id.clone());
                id
            }
        }
    }

    /// Replaces topic ids (where a topic had no name) by names.
    fn named(&mut self, mut topics: Vec<TopicPartition>) -> Vec<TopicPartition> {
        for t in &mut topics {
            if let Some(name) = self.topic_names.get(&t.topic) {
                t.topic.clone_from(name);
            } else if t.topic.len() == 36 {
                if let Some(name) = self.config.topic_names.get(&t.topic) {
                    self.topic_names.insert(t.topic.clone(), name.clone());
                    t.topic = name;
                }
            }
        }
        topics
    }
}

fn exchange(
    request: PendingRequest,
    response_at: Option<Timestamp>,
    response_size: Option<u64>,
    error_code: Option<i16>,
) -> KafkaExchange {
    KafkaExchange {
        api_key: request.api_key,
        api_name: api::api_name(request.api_key),
        api_version: request.api_version,
        correlation_id: request.correlation_id,
        client_id: request.client_id,
        request_at: request.started,
        response_at,
        request_size: request.request_size,
        response_size,
        error_code,
        topics: request.topics,
    }
}

impl Decoder for KafkaDecoder {
    fn feed(&mut self, direction: Direction, chunk: &Bytes, at: Timestamp, out: &mut Vec<Decoded>) {
        let capture = self.config.capture_limit;
        let reader = match direction {
            Direction::ClientToTarget => &mut self.requests,
            Direction::TargetToClient => &mut self.responses,
        };
        let mut frames = std::mem::take(&mut self.frames);
        // A frame within the capture limit is kept whole (a Produce request
        // or Fetch response is decoded for its topics); a larger one only
        // for its header, since its body could not be decoded anyway.
        let keep = move |size: u32| {
            if size as usize <= capture {
                size as usize
            } else {
                HEADER_KEEP
            }
        };
        let framed = reader.feed(chunk, at, keep, |frame| frames.push(frame));
        let mut completed = frames.drain(..);
        while let Some(frame) = completed.next() {
            let offset = frame.offset;
            let result = match direction {
                Direction::ClientToTarget => self.request(frame, offset),
                Direction::TargetToClient => self.response(frame, at, offset).map(Some),
            };
            match result {
                Ok(Some(exchange)) => out.push(Decoded::Kafka(Box::new(exchange))),
                Ok(None) => {}
                Err(fault) => {
                    drop(completed);
                    self.frames = frames;
                    let failure = self.failure(direction, offset, fault);
                    out.push(failure);
                    return;
                }
            }
        }
        drop(completed);
        self.frames = frames;
        if let Err(e) = framed {
            let failure = self.failure(direction, e.offset, e.fault);
            out.push(failure);
        }
    }

    fn finish(&mut self, _at: Timestamp, _out: &mut Vec<Decoded>) {
        // Requests cut off by the close never get an event: there is no
        // response to report, and the map must not outlive the connection.
        self.pending.clear();
    }
}
