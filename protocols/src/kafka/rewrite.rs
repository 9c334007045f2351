//! Rewriting the broker addresses in responses, so that clients keep
//! talking through the proxy.
//!
//! Kafka clients learn where brokers are from Metadata (key 3),
//! FindCoordinator (key 10, single and batched forms) and DescribeCluster
//! (key 60) responses. [`ResponseRewriter`] follows both directions of a
//! connection: from the requests it learns which correlation ids will be
//! answered by one of those; in the responses it holds back exactly those
//! frames until whole, has a [`BrokerAddressMap`] say where each broker is
//! to be reached instead, and re-encodes the frame with its new size. Every
//! other byte goes through at once and unchanged, as slices of the chunk it
//! came in. A frame it cannot rewrite is forwarded as it came, and the
//! reason reported.
//!
//! Sans-IO like the decoders: the caller (the proxy) owns the sockets and
//! the map, which opens a listener per broker.

use std::collections::{HashMap, HashSet};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    DescribeClusterResponse, FindCoordinatorResponse, MetadataResponse, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::api;
use super::framing::FrameReader;
use crate::FailureKind;

/// Where clients should reach a broker instead of its own address.
pub trait BrokerAddressMap {
    /// The address (host, port) to give clients for broker `node_id` at
    /// `host:port`; `None` if there is none (the response is then forwarded
    /// unchanged and the reason reported).
    fn proxy_address(
        &mut self,
        node_id: i32,
        host: &str,
        port: i32,
    ) -> Result<(String, i32), String>;

    /// Called once per response before any [`proxy_address`], with how
    /// many distinct brokers (host and port) it names: a map that could not
    /// give them all an address refuses here, so a response it will forward
    /// unchanged does not leave listeners behind.
    ///
    /// [`proxy_address`]: BrokerAddressMap::proxy_address
    fn admit(&mut self, brokers: usize) -> Result<(), String> {
        let _ = brokers;
        Ok(())
    }
}

/// A response that could not be rewritten (it was forwarded unchanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteFailure {
    /// Offset of the response frame in the target → client stream.
    pub offset: u64,
    /// [`FailureKind::LimitExceeded`] for a response too large to hold,
    /// [`FailureKind::RewriteFailed`] for one that could not be rewritten.
    pub kind: FailureKind,
    /// What exactly went wrong, for a person to read.
    pub detail: String,
}

/// Requests whose responses are awaited for rewriting, at most this many.
const MAX_AWAITED: usize = 1024;

enum Down {
    /// Reading a response's size and correlation id (`have` bytes so far).
    /// Any size passes; only a response to hold must fit `max_frame`.
    Head { buf: [u8; 8], have: usize },
    /// Forwarding `left` more bytes of a response that is not rewritten.
    Pass { left: u64 },
    /// Holding a response to rewrite until all of it has come.
    Hold {
        frame: BytesMut,
        left: usize,
        api_key: i16,
        api_version: i16,
    },
    /// The stream cannot be framed: everything passes unchanged.
    Broken,
}

/// Rewrites the broker addresses in one connection's responses. See the module
/// docs.
pub struct ResponseRewriter {
    requests: FrameReader,
    /// Correlation id → (key, version) of requests whose response to rewrite.
    awaited: HashMap<i32, (i16, i16)>,
    down: Down,
    /// Offset in the response stream of the next chunk's first byte.
    down_offset: u64,
    /// Offset of the current response frame.
    frame_offset: u64,
    max_frame: u32,
    rewritten: u64,
    /// The request stream could not be framed: nothing more is awaited.
    requests_broken: bool,
}

impl ResponseRewriter {
    /// A rewriter that holds responses of up to `max_frame` bytes to rewrite
    /// them.
    pub fn new(max_frame: u32) -> Self {
        Self {
            requests: FrameReader::new(max_frame),
            awaited: HashMap::new(),
            down: Down::Head {
                buf: [0; 8],
                have: 0,
            },
            down_offset: 0,
            frame_offset: 0,
            max_frame,
            rewritten: 0,
            requests_broken: false,
        }
    }

    /// Responses rewritten so far.
    pub fn rewritten(&self) -> u64 {
        self.rewritten
    }

    /// Notes the requests in a client → target chunk (before it is forwarded).
    pub fn observe_request(&mut self, chunk: &Bytes) {
        if self.requests_broken {
            return;
        }
        let awaited = &mut self.awaited;
        // The key, version and correlation id are a request's first 8 bytes.
        let framed = self.requests.feed(
            chunk,
            crate::Timestamp(0),
            |_| 8,
            |frame| {
                let p = &frame.prefix[..];
                if p.len() < 8 {
                    return;
                }
                let key = i16::from_be_bytes([p[0], p[1]]);
                if matches!(
                    key,
                    api::METADATA | api::FIND_COORDINATOR | api::DESCRIBE_CLUSTER
                ) && awaited.len() < MAX_AWAITED
                {
                    let version = i16::from_be_bytes([p[2], p[3]]);
                    let correlation = i32::from_be_bytes([p[4], p[5], p[6], p[7]]);
                    awaited.insert(correlation, (key, version));
                }
            },
        );
        if framed.is_err() {
            // Requests cannot be followed: hold no further response (one
            // already held completes as usual).
            self.awaited.clear();
            self.requests_broken = true;
        }
    }

    /// Turns a target → client chunk into what to forward now, appended to
    /// `out` in order; responses that could not be rewritten go to `failures`.
    pub fn rewrite_response(
        &mut self,
        chunk: Bytes,
        map: &mut dyn BrokerAddressMap,
        out: &mut Vec<Bytes>,
        failures: &mut Vec<RewriteFailure>,
    ) {
        let len = chunk.len();
        let mut pos = 0;
        // The run of bytes passing unchanged: chunk[run..pos].
        let mut run = 0;
        // Where the current head's bytes in this chunk begin.
        let mut head_from = 0;
        while pos < len {
            match &mut self.down {
                Down::Broken => pos = len,
                Down::Pass { left } => {
                    let n = (*left).min((len - pos) as u64) as usize;
                    pos += n;
                    *left -= n as u64;
                    if *left == 0 {
                        self.down = Down::Head {
                            buf: [0; 8],
                            have: 0,
                        };
                        head_from = pos;
                    }
                }
                Down::Head { buf, have } => {
                    let held = *have;
                    if held == 0 {
                        head_from = pos;
                        self.frame_offset = self.down_offset + pos as u64;
                    }
                    let n = (8 - held).min(len - pos);
                    buf[held..held + n].copy_from_slice(&chunk[pos..pos + n]);
                    *have += n;
                    pos += n;
                    if *have < 8 {
                        continue;
                    }
                    let head = *buf;
                    let size = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
                    let correlation = i32::from_be_bytes([head[4], head[5], head[6], head[7]]);
                    let mut awaited = self.awaited.remove(&correlation);
                    if size >= 4 && size as u32 > self.max_frame {
                        if let Some((api_key, api_version)) = awaited.take() {
                            // Too large to hold: it goes through as it came.
                            failures.push(RewriteFailure {
                                offset: self.frame_offset,
                                kind: FailureKind::LimitExceeded,
                                detail: format!(
                                    "a {} v{api_version} response of {size} bytes is past the {} bytes held for rewriting",
                                    api::api_name(api_key).unwrap_or("?"),
                                    self.max_frame
                                ),
                            });
                        }
                    }
                    if held > 0 && (awaited.is_none() || size < 4) {
                        // The head began in an earlier chunk and was held back
                        // until it could be read; it goes out first, unless
                        // the whole frame is held.
                        out.push(Bytes::copy_from_slice(&head[..held]));
                    }
                    if size < 4 {
                        self.down = Down::Broken;
                        continue;
                    }
                    match awaited {
                        Some((api_key, api_version)) => {
                            if head_from > run {
                                out.push(chunk.slice(run..head_from));
                            }
                            let mut frame = BytesMut::with_capacity(size as usize + 4);
                            frame.extend_from_slice(&head);
                            self.down = Down::Hold {
                                frame,
                                left: size as usize - 4,
                                api_key,
                                api_version,
                            };
                            run = pos;
                        }
                        None => {
                            self.down = Down::Pass {
                                left: size as u64 - 4,
                            };
                        }
                    }
                    if let Down::Hold { left: 0, .. } = self.down {
                        self.complete_hold(map, out, failures);
                        head_from = pos;
                    } else if let Down::Pass { left: 0 } = self.down {
                        self.down = Down::Head {
                            buf: [0; 8],
                            have: 0,
                        };
                        head_from = pos;
                    }
                }
                Down::Hold { frame, left, .. } => {
                    let n = (*left).min(len - pos);
                    frame.extend_from_slice(&chunk[pos..pos + n]);
                    *left -= n;
                    pos += n;
                    run = pos;
                    if *left == 0 {
                        self.complete_hold(map, out, failures);
                        head_from = pos;
                    }
                }
            }
        }
        // A head cut off by the chunk's end is held back until it can be read.
        let end = match self.down {
            Down::Head { have, .. } if have > 0 => head_from,
            _ => len,
        };
        if end > run {
            out.push(chunk.slice(run..end));
        }
        self.down_offset += len as u64;
    }

    /// The target closed its side: whatever is held goes out as it came.
    pub fn end_of_stream(&mut self, out: &mut Vec<Bytes>) {
        match std::mem::replace(&mut self.down, Down::Broken) {
            Down::Head { buf, have } if have > 0 => out.push(Bytes::copy_from_slice(&buf[..have])),
            Down::Hold { frame, .. } => out.push(frame.freeze()),
            _ => {}
        }
    }

    fn complete_hold(
        &mut self,
        map: &mut dyn BrokerAddressMap,
        out: &mut Vec<Bytes>,
        failures: &mut Vec<RewriteFailure>,
    ) {
        let Down::Hold {
            frame,
            api_key,
            api_version,
            ..
        } = std::mem::replace(
            &mut self.down,
            Down::Head {
                buf: [0; 8],
                have: 0,
            },
        )
        else {
            unreachable!("completing a hold while not holding");
        };
        let original = frame.freeze();
        match rewrite_frame(&original, api_key, api_version, map) {
            Ok(rewritten) => {
                self.rewritten += 1;
                out.push(rewritten);
            }
            Err(reason) => {
                out.push(original);
                failures.push(RewriteFailure {
                    offset: self.frame_offset,
                    kind: FailureKind::RewriteFailed,
                    detail: format!(
                        "could not rewrite the broker addresses in a {} v{api_version} response: {reason}",
                        api::api_name(api_key).unwrap_or("?")
                    ),
                });
            }
        }
    }
}

/// Whether a broker entry names a broker: an error answer (node -1, or
/// no host) names none.
fn names_a_broker(node_id: i32, host: &str) -> bool {
    node_id >= 0 && !host.is_empty()
}

/// Points one broker entry at the address the map gives for it.
fn remap(
    map: &mut dyn BrokerAddressMap,
    node_id: i32,
    host: &mut StrBytes,
    port: &mut i32,
) -> Result<(), String> {
    if !names_a_broker(node_id, host) {
        return Ok(());
    }
    let (new_host, new_port) = map.proxy_address(node_id, host, *port)?;
    *host = StrBytes::from_string(new_host);
    *port = new_port;
    Ok(())
}

/// Asks the map to admit the distinct brokers of one response.
fn admit<'a>(
    map: &mut dyn BrokerAddressMap,
    named: impl Iterator<Item = (i32, &'a StrBytes, i32)>,
) -> Result<(), String> {
    let distinct: HashSet<(&str, i32)> = named
        .filter(|(node_id, host, _)| names_a_broker(*node_id, host))
        .map(|(_, host, port)| (host.as_str(), port))
        .collect();
    map.admit(distinct.len())
}

/// Rewrites one whole response frame (size field included).
pub fn rewrite_frame(
    frame: &Bytes,
    api_key: i16,
    api_version: i16,
    map: &mut dyn BrokerAddressMap,
) -> Result<Bytes, String> {
    let header_version = api::response_header_version(api_key, api_version)
        .ok_or_else(|| format!("unknown API key {api_key}"))?;
    let mut buf = frame.slice(4..);
    // `kafka-protocol` sizes arrays by the count on the wire before reading
    // them: hand it only a body whose counts hold together.
    let body_at = super::header::response_body_offset(&buf, header_version)
        .ok_or("the response header is cut short")?;
    let sound = match api_key {
        api::METADATA => super::body::metadata_response(&buf[body_at..], api_version).is_some(),
        api::FIND_COORDINATOR => {
            super::body::find_coordinator_response_is_sound(&buf[body_at..], api_version)
        }
        api::DESCRIBE_CLUSTER => {
            super::body::describe_cluster_response_is_sound(&buf[body_at..], api_version)
        }
        _ => false,
    };
    if !sound {
        return Err("the response body does not hold together".into());
    }
    let header = ResponseHeader::decode(&mut buf, header_version).map_err(|e| e.to_string())?;
    let mut body = BytesMut::new();
    match api_key {
        api::METADATA => {
            let mut m =
                MetadataResponse::decode(&mut buf, api_version).map_err(|e| e.to_string())?;
            admit(
                map,
                m.brokers.iter().map(|b| (b.node_id.0, &b.host, b.port)),
            )?;
            for b in &mut m.brokers {
                remap(map, b.node_id.0, &mut b.host, &mut b.port)?;
            }
            m.encode(&mut body, api_version)
                .map_err(|e| e.to_string())?;
        }
        api::FIND_COORDINATOR => {
            let mut m = FindCoordinatorResponse::decode(&mut buf, api_version)
                .map_err(|e| e.to_string())?;
            if api_version < 4 {
                admit(map, [(m.node_id.0, &m.host, m.port)].into_iter())?;
                remap(map, m.node_id.0, &mut m.host, &mut m.port)?;
            } else {
                let named = m
                    .coordinators
                    .iter()
                    .map(|c| (c.node_id.0, &c.host, c.port));
                admit(map, named)?;
                for c in &mut m.coordinators {
                    remap(map, c.node_id.0, &mut c.host, &mut c.port)?;
                }
            }
            m.encode(&mut body, api_version)
                .map_err(|e| e.to_string())?;
        }
        api::DESCRIBE_CLUSTER => {
            let mut m = DescribeClusterResponse::decode(&mut buf, api_version)
                .map_err(|e| e.to_string())?;
            admit(
                map,
                m.brokers.iter().map(|b| (b.broker_id.0, &b.host, b.port)),
            )?;
            for b in &mut m.brokers {
                remap(map, b.broker_id.0, &mut b.host, &mut b.port)?;
            }
            m.encode(&mut body, api_version)
                .map_err(|e| e.to_string())?;
        }
        other => return Err(format!("API key {other} has no broker addresses")),
    }
    // Bytes past what the crate decoded (librdkafka's mock broker ends a
    // Metadata v12 response with one) are kept as they came, so the client
    // reads exactly what it would have, addresses aside.
    body.extend_from_slice(&buf);
    let header_size = header
        .compute_size(header_version)
        .map_err(|e| e.to_string())?;
    let size = header_size + body.len();
    let mut out = BytesMut::with_capacity(4 + size);
    out.put_i32(i32::try_from(size).map_err(|_| "rewritten response too large".to_string())?);
    header
        .encode(&mut out, header_version)
        .map_err(|e| e.to_string())?;
    out.extend_from_slice(&body);
    Ok(out.freeze())
}
