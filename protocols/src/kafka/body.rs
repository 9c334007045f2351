//! Message bodies read by hand: Produce requests and responses, Fetch
//! responses, and a check of the three responses the proxy rewrites.
//!
//! Hand-written, not left to `kafka-protocol`, because that crate sizes
//! every array from the count on the wire before reading an element
//! (`Vec::with_capacity(count)`): a frame claiming two billion topics would
//! make it ask for hundreds of gigabytes and abort the process. Here every
//! count is checked against the bytes left, so garbage costs nothing, and
//! each field is read in place (records stay slices of the frame).

use bytes::Bytes;

use super::header::Reader;
use super::summary::{count_records, TopicIds, TopicPartition};

/// Reading a body whose layout depends on version and flexibility.
struct Body<'a> {
    r: Reader<'a>,
    /// Flexible versions: compact lengths and tagged fields.
    flex: bool,
}

impl<'a> Body<'a> {
    fn new(bytes: &'a [u8], flex: bool) -> Self {
        Self {
            r: Reader::new(bytes),
            flex,
        }
    }

    fn left(&self) -> usize {
        self.r.bytes.len() - self.r.pos
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.r.take(n).map(|_| ())
    }

    /// An array's element count (`None` inside for a null array); every
    /// element takes at least one byte, so a count past the bytes left is garbage.
    fn array(&mut self) -> Option<Option<usize>> {
        let n = if self.flex {
            match self.r.unsigned_varint()? {
                0 => return Some(None),
                n => n as usize - 1,
            }
        } else {
            match self.r.i32()? {
                -1 => return Some(None),
                n if n < 0 => return None,
                n => n as usize,
            }
        };
        (n <= self.left()).then_some(Some(n))
    }

    fn count(&mut self) -> Option<usize> {
        self.array().map(Option::unwrap_or_default)
    }

    /// A string or byte string (nullable or not: null reads as `None`).
    fn bytes(&mut self, classic_len_is_i32: bool) -> Option<Option<&'a [u8]>> {
        let len = if self.flex {
            match self.r.unsigned_varint()? {
                0 => return Some(None),
                n => n as usize - 1,
            }
        } else if classic_len_is_i32 {
            match self.r.i32()? {
                n if n < 0 => return Some(None),
                n => n as usize,
            }
        } else {
            match self.r.i16()? {
                n if n < 0 => return Some(None),
                n => n as usize,
            }
        };
        self.r.take(len).map(Some)
    }

    fn string(&mut self) -> Option<Option<&'a [u8]>> {
        self.bytes(false)
    }

    fn records(&mut self) -> Option<Option<(usize, usize)>> {
        let start_of = |b: &Self, s: &[u8]| s.as_ptr() as usize - b.r.bytes.as_ptr() as usize;
        match self.bytes(true)? {
            None => Some(None),
            Some(s) => Some(Some((start_of(self, s), s.len()))),
        }
    }

    fn tagged(&mut self) -> Option<()> {
        if self.flex {
            self.r.skip_tagged_fields()?;
        }
        Some(())
    }
}

fn topic_name(b: &mut Body<'_>, by_id: bool) -> Option<String> {
    if by_id {
        let id = b.r.take(16)?;
        Some(uuid_text(id))
    } else {
        Some(String::from_utf8_lossy(b.string()?.unwrap_or_default()).into_owned())
    }
}

/// A topic id as Kafka tools print it in Metadata (`8-4-4-4-12` hex).
fn uuid_text(id: &[u8]) -> String {
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The `acks` of a Produce request body; `None` if it is not there.
pub fn produce_acks(body: &[u8], version: i16) -> Option<i16> {
    let mut b = Body::new(body, version >= 9);
    if version >= 3 {
        b.string()?;
    }
    b.r.i16()
}

/// Topics and partitions of a Produce request body (v0–13).
pub fn produce_request(body: &Bytes, version: i16) -> Option<Vec<TopicPartition>> {
    if !(0..=13).contains(&version) {
        return None;
    }
    let mut b = Body::new(body, version >= 9);
    if version >= 3 {
        b.string()?;
    }
    b.skip(2 + 4)?; // acks, timeout
    let mut topics = Vec::new();
    for _ in 0..b.count()? {
        let name = topic_name(&mut b, version >= 13)?;
        for _ in 0..b.count()? {
            let partition = b.r.i32()?;
            let (records, bytes) = match b.records()? {
                Some((at, len)) => (count_records(&body[at..at + len]), len as u64),
                None => (0, 0),
            };
            b.tagged()?;
            topics.push(TopicPartition {
                topic: name.clone(),
                partition,
                records,
                bytes,
                error_code: None,
            });
        }
        b.tagged()?;
    }
    Some(topics)
}

/// Each partition's error code in a Produce response (v0–13): (topic,
/// partition, error code).
pub fn produce_response(body: &[u8], version: i16) -> Option<Vec<(String, i32, i16)>> {
    if !(0..=13).contains(&version) {
        return None;
    }
    let mut b = Body::new(body, version >= 9);
    let mut out = Vec::new();
    for _ in 0..b.count()? {
        let name = topic_name(&mut b, version >= 13)?;
        for _ in 0..b.count()? {
            let partition = b.r.i32()?;
            let error_code = b.r.i16()?;
            b.skip(8)?; // base offset
            if version >= 2 {
                b.skip(8)?; // log append time
            }
            if version >= 5 {
                b.skip(8)?; // log start offset
            }
            if version >= 8 {
                for _ in 0..b.count()? {
                    b.skip(4)?;
                    b.string()?;
                    b.tagged()?;
                }
                b.string()?;
            }
            b.tagged()?;
            out.push((name.clone(), partition, error_code));
        }
        b.tagged()?;
    }
    Some(out)
}

/// A Fetch response (v0–18): its top-level error code (v7+) and partitions.
pub fn fetch_response(body: &Bytes, version: i16) -> Option<(Option<i16>, Vec<TopicPartition>)> {
    if !(0..=18).contains(&version) {
        return None;
    }
    let mut b = Body::new(body, version >= 12);
    if version >= 1 {
        b.skip(4)?; // throttle time
    }
    let mut error_code = None;
    if version >= 7 {
        error_code = Some(b.r.i16()?);
        b.skip(4)?; // session id
    }
    let mut topics = Vec::new();
    for _ in 0..b.count()? {
        let name = topic_name(&mut b, version >= 13)?;
        for _ in 0..b.count()? {
            let partition = b.r.i32()?;
            let partition_error = b.r.i16()?;
            b.skip(8)?; // high watermark
            if version >= 4 {
                b.skip(8)?; // last stable offset
            }
            if version >= 5 {
                b.skip(8)?; // log start offset
            }
            if version >= 4 {
                for _ in 0..b.count()? {
                    b.skip(16)?;
                    b.tagged()?;
                }
            }
            if version >= 11 {
                b.skip(4)?; // preferred read replica
            }
            let (records, bytes) = match b.records()? {
                Some((at, len)) => (count_records(&body[at..at + len]), len as u64),
                None => (0, 0),
            };
            b.tagged()?;
            topics.push(TopicPartition {
                topic: name.clone(),
                partition,
                records,
                bytes,
                error_code: Some(partition_error),
            });
        }
        b.tagged()?;
    }
    Some((error_code, topics))
}

/// A Metadata response (v0–13): its top-level error code (v13+) and the
/// (id, name) of each topic that has an id (v10+). `None` if the body does
/// not hold together, which also makes it safe to hand to `kafka-protocol`.
pub fn metadata_response(body: &[u8], version: i16) -> Option<(Option<i16>, TopicIds)> {
    if !(0..=13).contains(&version) {
        return None;
    }
    let mut b = Body::new(body, version >= 9);
    if version >= 3 {
        b.skip(4)?;
    }
    for _ in 0..b.count()? {
        b.skip(4)?; // node id
        b.string()?;
        b.skip(4)?; // port
        if version >= 1 {
            b.string()?; // rack
        }
        b.tagged()?;
    }
    if version >= 2 {
        b.string()?; // cluster id
    }
    if version >= 1 {
        b.skip(4)?; // controller id
    }
    let mut ids = Vec::new();
    for _ in 0..b.count()? {
        b.skip(2)?; // error code
        let name = b.string()?;
        let id = if version >= 10 {
            Some(b.r.take(16)?)
        } else {
            None
        };
        if version >= 1 {
            b.skip(1)?; // is internal
        }
        for _ in 0..b.count()? {
            b.skip(2 + 4 + 4)?; // error code, index, leader
            if version >= 7 {
                b.skip(4)?; // leader epoch
            }
            let node_lists = if version >= 5 { 3 } else { 2 };
            for _ in 0..node_lists {
                let n = b.count()?;
                b.skip(4 * n)?;
            }
            b.tagged()?;
        }
        if version >= 8 {
            b.skip(4)?; // topic authorized operations
        }
        b.tagged()?;
        if let (Some(id), Some(name)) = (id, name) {
            if id.iter().any(|&x| x != 0) {
                ids.push((uuid_text(id), String::from_utf8_lossy(name).into_owned()));
            }
        }
    }
    if (8..=10).contains(&version) {
        b.skip(4)?; // cluster authorized operations
    }
    let error_code = if version >= 13 {
        Some(b.r.i16()?)
    } else {
        None
    };
    b.tagged()?;
    Some((error_code, ids))
}

/// Whether a FindCoordinator response (v0–6) holds together.
pub fn find_coordinator_response_is_sound(body: &[u8], version: i16) -> bool {
    let check = || -> Option<()> {
        let mut b = Body::new(body, version >= 3);
        if version >= 1 {
            b.skip(4)?;
        }
        if version < 4 {
            b.skip(2)?;
            if version >= 1 {
                b.string()?;
            }
            b.skip(4)?;
            b.string()?;
            b.skip(4)?;
        } else {
            for _ in 0..b.count()? {
                b.string()?;
                b.skip(4)?;
                b.string()?;
                b.skip(4 + 2)?;
                b.string()?;
                b.tagged()?;
            }
        }
        b.tagged()
    };
    (0..=6).contains(&version) && check().is_some()
}

/// Whether a DescribeCluster response (v0–2) holds together.
pub fn describe_cluster_response_is_sound(body: &[u8], version: i16) -> bool {
    let check = || -> Option<()> {
        let mut b = Body::new(body, true);
        b.skip(4 + 2)?;
        b.string()?;
        if version >= 1 {
            b.skip(1)?;
        }
        b.string()?;
        b.skip(4)?;
        for _ in 0..b.count()? {
            b.skip(4)?;
            b.string()?;
            b.skip(4)?;
            b.string()?;
            if version >= 2 {
                b.skip(1)?;
            }
            b.tagged()?;
        }
        b.skip(4)?;
        b.tagged()
    };
    (0..=2).contains(&version) && check().is_some()
}

/// The top-level error code of a response body, for the keys whose
/// response has one at a fixed place (after at most a throttle time).
/// Generated from the field order in `kafka-protocol`'s messages.
pub fn top_level_error_code(key: i16, version: i16, body: &[u8]) -> Option<i16> {
    let at = match key {
        1 if (7..=18).contains(&version) => 4, // Fetch
        10 if (0..=3).contains(&version) => {
            if version >= 1 {
                4
            } else {
                0
            }
        } // FindCoordinator
        11 if (0..=9).contains(&version) => {
            if version >= 2 {
                4
            } else {
                0
            }
        } // JoinGroup
        12 if (0..=4).contains(&version) => {
            if version >= 1 {
                4
            } else {
                0
            }
        } // Heartbeat
        13 if (0..=5).contains(&version) => {
            if version >= 1 {
                4
            } else {
                0
            }
        } // LeaveGroup
        14 if (0..=5).contains(&version) => {
            if version >= 1 {
                4
            } else {
                0
            }
        } // SyncGroup
        16 if (0..=5).contains(&version) => {
            if version >= 1 {
                4
            } else {
                0
            }
        } // ListGroups
        17 if (0..=1).contains(&version) => 0, // SaslHandshake
        // Every version, and the v0-layout error reply to any version.
        18 => 0,                               // ApiVersions
        22 if (0..=6).contains(&version) => 4, // InitProducerId
        24 if (4..=5).contains(&version) => 4, // AddPartitionsToTxn
        25 if (0..=4).contains(&version) => 4, // AddOffsetsToTxn
        26 if (0..=5).contains(&version) => 4, // EndTxn
        29 if (1..=3).contains(&version) => 4, // DescribeAcls
        35 if (3..=4).contains(&version) => 4, // DescribeLogDirs
        36 if (0..=2).contains(&version) => 0, // SaslAuthenticate
        38 if (1..=3).contains(&version) => 0, // CreateDelegationToken
        39 if (1..=2).contains(&version) => 0, // RenewDelegationToken
        40 if (1..=2).contains(&version) => 0, // ExpireDelegationToken
        41 if (1..=3).contains(&version) => 0, // DescribeDelegationToken
        43 if (1..=2).contains(&version) => 4, // ElectLeaders
        45 if (0..=1).contains(&version) => 4 + if version >= 1 { 1 } else { 0 }, // AlterPartitionReassignments
        46 if (0..=0).contains(&version) => 4, // ListPartitionReassignments
        47 if (0..=0).contains(&version) => 0, // OffsetDelete
        48 if (0..=1).contains(&version) => 4, // DescribeClientQuotas
        50 if (0..=0).contains(&version) => 4, // DescribeUserScramCredentials
        52 if (0..=2).contains(&version) => 0, // Vote
        53 if (0..=1).contains(&version) => 0, // BeginQuorumEpoch
        54 if (0..=1).contains(&version) => 0, // EndQuorumEpoch
        55 if (0..=2).contains(&version) => 0, // DescribeQuorum
        56 if (2..=3).contains(&version) => 4, // AlterPartition
        57 if (0..=2).contains(&version) => 4, // UpdateFeatures
        59 if (0..=1).contains(&version) => 4, // FetchSnapshot
        60 if (0..=2).contains(&version) => 4, // DescribeCluster
        62 if (0..=4).contains(&version) => 4, // BrokerRegistration
        63 if (0..=1).contains(&version) => 4, // BrokerHeartbeat
        64 if (0..=0).contains(&version) => 4, // UnregisterBroker
        66 if (0..=2).contains(&version) => 4, // ListTransactions
        67 if (0..=0).contains(&version) => 4, // AllocateProducerIds
        68 if (0..=1).contains(&version) => 4, // ConsumerGroupHeartbeat
        70 if (0..=0).contains(&version) => 4, // ControllerRegistration
        71 if (0..=0).contains(&version) => 4, // GetTelemetrySubscriptions
        72 if (0..=0).contains(&version) => 4, // PushTelemetry
        73 if (0..=0).contains(&version) => 4, // AssignReplicasToDirs
        74 if (0..=1).contains(&version) => 4, // ListConfigResources
        76 if (1..=1).contains(&version) => 4, // ShareGroupHeartbeat
        78 if (1..=1).contains(&version) => 4, // ShareFetch
        79 if (1..=1).contains(&version) => 4, // ShareAcknowledge
        80 if (0..=0).contains(&version) => 4, // AddRaftVoter
        81 if (0..=0).contains(&version) => 4, // RemoveRaftVoter
        82 if (0..=0).contains(&version) => 4, // UpdateRaftVoter
        91 if (0..=0).contains(&version) => 4, // AlterShareGroupOffsets
        92 if (0..=0).contains(&version) => 4, // DeleteShareGroupOffsets
        _ => return None,
    };
    let b = body.get(at..at + 2)?;
    Some(i16::from_be_bytes([b[0], b[1]]))
}
