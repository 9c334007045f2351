//! What an event says about a request's body: Produce and Fetch topics,
//! record counts, error codes.
//!
//! Bodies are decoded with `kafka-protocol`, which leaves each partition's
//! records as one `Bytes` (a slice of the frame, no copy). Record batches are
//! then counted lazily from their headers alone: nothing is decompressed and
//! no record is parsed.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;

use super::header::Reader;

/// One partition of a Produce or Fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
    /// Records in the partition's record batches.
    pub records: u64,
    /// Bytes of the partition's record batches.
    pub bytes: u64,
    /// The partition's error code in the response; `None` before it came.
    pub error_code: Option<i16>,
}

/// Records and bytes in a partition's record data (record batches, or a
/// legacy message set). A batch cut off at the end (a Fetch may return one)
/// is not counted.
pub fn count_records(data: &[u8]) -> u64 {
    let mut records = 0u64;
    let mut rest = data;
    // Each entry: base offset (8), length (4), then `length` bytes. In a
    // v2 batch the record count is the last field of the 61-byte header;
    // a legacy (v0/v1) entry is one message.
    while rest.len() >= 12 {
        let length = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        if length < 0 || rest.len() - 12 < length as usize {
            break;
        }
        let entry = &rest[..12 + length as usize];
        let magic = entry.get(16).copied();
        match magic {
            Some(2) if entry.len() >= 61 => {
                let count = i32::from_be_bytes([entry[57], entry[58], entry[59], entry[60]]);
                records += count.max(0) as u64;
            }
            Some(0) | Some(1) => records += 1,
            _ => {}
        }
        rest = &rest[entry.len()..];
    }
    records
}

fn topic_name(name: &TopicName, id: &impl std::fmt::Display) -> String {
    if name.0.is_empty() {
        // Produce v13 and Fetch v13+ name topics by id only.
        id.to_string()
    } else {
        name.0.to_string()
    }
}

/// The `acks` of a Produce request body; `None` if it is not there.
pub fn produce_acks(body: &[u8], version: i16) -> Option<i16> {
    let mut r = Reader::new(body);
    if version >= 9 {
        r.compact_nullable_string()?;
    } else if version >= 3 {
        r.nullable_string()?;
    }
    r.i16()
}

/// Topics and partitions of a Produce request body, for versions the crate decodes.
pub fn produce_request_topics(mut body: Bytes, version: i16) -> Option<Vec<TopicPartition>> {
    if !(3..=13).contains(&version) {
        return None;
    }
    let request = ProduceRequest::decode(&mut body, version).ok()?;
    let mut topics = Vec::new();
    for t in &request.topic_data {
        let name = topic_name(&t.name, &t.topic_id);
        for p in &t.partition_data {
            let data = p.records.as_deref().unwrap_or_default();
            topics.push(TopicPartition {
                topic: name.clone(),
                partition: p.index,
                records: count_records(data),
                bytes: data.len() as u64,
                error_code: None,
            });
        }
    }
    Some(topics)
}

/// Fills in each partition's error code from a Produce response; a
/// partition the request did not carry (or could not be read) is added.
pub fn apply_produce_response(mut body: Bytes, version: i16, topics: &mut Vec<TopicPartition>) {
    if !(3..=13).contains(&version) {
        return;
    }
    let Ok(response) = ProduceResponse::decode(&mut body, version) else {
        return;
    };
    for t in &response.responses {
        let name = topic_name(&t.name, &t.topic_id);
        for p in &t.partition_responses {
            match topics
                .iter_mut()
                .find(|x| x.topic == name && x.partition == p.index)
            {
                Some(x) => x.error_code = Some(p.error_code),
                None => topics.push(TopicPartition {
                    topic: name.clone(),
                    partition: p.index,
                    records: 0,
                    bytes: 0,
                    error_code: Some(p.error_code),
                }),
            }
        }
    }
}

/// A Fetch response's top-level error code (v7+) and its partitions.
pub fn fetch_response(mut body: Bytes, version: i16) -> Option<(Option<i16>, Vec<TopicPartition>)> {
    if !(4..=18).contains(&version) {
        return None;
    }
    let response = FetchResponse::decode(&mut body, version).ok()?;
    let mut topics = Vec::new();
    for t in &response.responses {
        let name = topic_name(&t.topic, &t.topic_id);
        for p in &t.partitions {
            let data = p.records.as_deref().unwrap_or_default();
            topics.push(TopicPartition {
                topic: name.clone(),
                partition: p.partition_index,
                records: count_records(data),
                bytes: data.len() as u64,
                error_code: Some(p.error_code),
            });
        }
    }
    let error_code = (version >= 7).then_some(response.error_code);
    Some((error_code, topics))
}

/// Topic (id, name) pairs.
pub type TopicIds = Vec<(String, String)>;

/// A Metadata response's top-level error code (v13+) and each topic's id
/// and name (v10+; ids of the nil UUID are left out).
pub fn metadata_response(mut body: Bytes, version: i16) -> Option<(Option<i16>, TopicIds)> {
    let response = MetadataResponse::decode(&mut body, version).ok()?;
    let topics = response
        .topics
        .iter()
        .filter(|t| !t.topic_id.is_nil())
        .filter_map(|t| {
            let name = t.name.as_ref()?;
            Some((t.topic_id.to_string(), name.0.to_string()))
        })
        .collect();
    Some(((version >= 13).then_some(response.error_code), topics))
}

/// The top-level error code of a response body, for the keys whose
/// response has one (in the versions the crate decodes).
pub fn top_level_error_code(key: i16, version: i16, body: &[u8]) -> Option<i16> {
    if key == super::api::API_VERSIONS {
        // Every ApiVersions response starts with its error code, and an
        // error reply is in the v0 layout whatever version was asked: the
        // first two bytes are enough either way.
        return Reader::new(body).i16();
    }
    let mut buf = Bytes::copy_from_slice(body);
    macro_rules! decode {
        ($($key:ident => $ty:ty),* $(,)?) => {
            match ApiKey::try_from(key).ok()? {
                $(ApiKey::$key => <$ty>::decode(&mut buf, version).ok().map(|r| r.error_code),)*
                _ => None,
            }
        };
    }
    let code = decode!(
        Fetch => FetchResponse,
        Metadata => MetadataResponse,
        OffsetFetch => OffsetFetchResponse,
        FindCoordinator => FindCoordinatorResponse,
        JoinGroup => JoinGroupResponse,
        Heartbeat => HeartbeatResponse,
        LeaveGroup => LeaveGroupResponse,
        SyncGroup => SyncGroupResponse,
        ListGroups => ListGroupsResponse,
        SaslHandshake => SaslHandshakeResponse,
        InitProducerId => InitProducerIdResponse,
        AddPartitionsToTxn => AddPartitionsToTxnResponse,
        AddOffsetsToTxn => AddOffsetsToTxnResponse,
        EndTxn => EndTxnResponse,
        DescribeAcls => DescribeAclsResponse,
        DescribeLogDirs => DescribeLogDirsResponse,
        SaslAuthenticate => SaslAuthenticateResponse,
        CreateDelegationToken => CreateDelegationTokenResponse,
        RenewDelegationToken => RenewDelegationTokenResponse,
        ExpireDelegationToken => ExpireDelegationTokenResponse,
        DescribeDelegationToken => DescribeDelegationTokenResponse,
        ElectLeaders => ElectLeadersResponse,
        AlterPartitionReassignments => AlterPartitionReassignmentsResponse,
        ListPartitionReassignments => ListPartitionReassignmentsResponse,
        OffsetDelete => OffsetDeleteResponse,
        DescribeClientQuotas => DescribeClientQuotasResponse,
        DescribeUserScramCredentials => DescribeUserScramCredentialsResponse,
        Vote => VoteResponse,
        BeginQuorumEpoch => BeginQuorumEpochResponse,
        EndQuorumEpoch => EndQuorumEpochResponse,
        DescribeQuorum => DescribeQuorumResponse,
        AlterPartition => AlterPartitionResponse,
        UpdateFeatures => UpdateFeaturesResponse,
        Envelope => EnvelopeResponse,
        FetchSnapshot => FetchSnapshotResponse,
        DescribeCluster => DescribeClusterResponse,
        BrokerRegistration => BrokerRegistrationResponse,
        BrokerHeartbeat => BrokerHeartbeatResponse,
        UnregisterBroker => UnregisterBrokerResponse,
        ListTransactions => ListTransactionsResponse,
        AllocateProducerIds => AllocateProducerIdsResponse,
        ConsumerGroupHeartbeat => ConsumerGroupHeartbeatResponse,
        ControllerRegistration => ControllerRegistrationResponse,
        GetTelemetrySubscriptions => GetTelemetrySubscriptionsResponse,
        PushTelemetry => PushTelemetryResponse,
        AssignReplicasToDirs => AssignReplicasToDirsResponse,
        ListConfigResources => ListConfigResourcesResponse,
        ShareGroupHeartbeat => ShareGroupHeartbeatResponse,
        ShareFetch => ShareFetchResponse,
        ShareAcknowledge => ShareAcknowledgeResponse,
        AddRaftVoter => AddRaftVoterResponse,
        RemoveRaftVoter => RemoveRaftVoterResponse,
        UpdateRaftVoter => UpdateRaftVoterResponse,
        AlterShareGroupOffsets => AlterShareGroupOffsetsResponse,
        DeleteShareGroupOffsets => DeleteShareGroupOffsetsResponse,
    );
    // Fields a version lacks decode as their default; report the code only
    // for versions that carry it.
    let has_field = match key {
        1 => version >= 7,
        3 => version >= 13,
        9 => version >= 2,
        10 => version < 4,
        _ => true,
    };
    code.filter(|_| has_field)
}
