//! API keys: their protocol names and which header layout each version uses.
//!
//! The names are Kafka's own (`Produce`, `Metadata` …), for every key Kafka
//! has defined, including the inter-broker keys 4–7 that Kafka 4 removed and
//! the `kafka-protocol` crate therefore no longer knows.

use kafka_protocol::messages::ApiKey;

/// Kafka's name for an API key, `None` for a key Kafka never defined.
pub fn api_name(key: i16) -> Option<&'static str> {
    Some(match key {
        0 => "Produce",
        1 => "Fetch",
        2 => "ListOffsets",
        3 => "Metadata",
        4 => "LeaderAndIsr",
        5 => "StopReplica",
        6 => "UpdateMetadata",
        7 => "ControlledShutdown",
        8 => "OffsetCommit",
        9 => "OffsetFetch",
        10 => "FindCoordinator",
        11 => "JoinGroup",
        12 => "Heartbeat",
        13 => "LeaveGroup",
        14 => "SyncGroup",
        15 => "DescribeGroups",
        16 => "ListGroups",
        17 => "SaslHandshake",
        18 => "ApiVersions",
        19 => "CreateTopics",
        20 => "DeleteTopics",
        21 => "DeleteRecords",
        22 => "InitProducerId",
        23 => "OffsetForLeaderEpoch",
        24 => "AddPartitionsToTxn",
        25 => "AddOffsetsToTxn",
        26 => "EndTxn",
        27 => "WriteTxnMarkers",
        28 => "TxnOffsetCommit",
        29 => "DescribeAcls",
        30 => "CreateAcls",
        31 => "DeleteAcls",
        32 => "DescribeConfigs",
        33 => "AlterConfigs",
        34 => "AlterReplicaLogDirs",
        35 => "DescribeLogDirs",
        36 => "SaslAuthenticate",
        37 => "CreatePartitions",
        38 => "CreateDelegationToken",
        39 => "RenewDelegationToken",
        40 => "ExpireDelegationToken",
        41 => "DescribeDelegationToken",
        42 => "DeleteGroups",
        43 => "ElectLeaders",
        44 => "IncrementalAlterConfigs",
        45 => "AlterPartitionReassignments",
        46 => "ListPartitionReassignments",
        47 => "OffsetDelete",
        48 => "DescribeClientQuotas",
        49 => "AlterClientQuotas",
        50 => "DescribeUserScramCredentials",
        51 => "AlterUserScramCredentials",
        52 => "Vote",
        53 => "BeginQuorumEpoch",
        54 => "EndQuorumEpoch",
        55 => "DescribeQuorum",
        56 => "AlterPartition",
        57 => "UpdateFeatures",
        58 => "Envelope",
        59 => "FetchSnapshot",
        60 => "DescribeCluster",
        61 => "DescribeProducers",
        62 => "BrokerRegistration",
        63 => "BrokerHeartbeat",
        64 => "UnregisterBroker",
        65 => "DescribeTransactions",
        66 => "ListTransactions",
        67 => "AllocateProducerIds",
        68 => "ConsumerGroupHeartbeat",
        69 => "ConsumerGroupDescribe",
        70 => "ControllerRegistration",
        71 => "GetTelemetrySubscriptions",
        72 => "PushTelemetry",
        73 => "AssignReplicasToDirs",
        74 => "ListConfigResources",
        75 => "DescribeTopicPartitions",
        76 => "ShareGroupHeartbeat",
        77 => "ShareGroupDescribe",
        78 => "ShareFetch",
        79 => "ShareAcknowledge",
        80 => "AddRaftVoter",
        81 => "RemoveRaftVoter",
        82 => "UpdateRaftVoter",
        83 => "InitializeShareGroupState",
        84 => "ReadShareGroupState",
        85 => "WriteShareGroupState",
        86 => "DeleteShareGroupState",
        87 => "ReadShareGroupStateSummary",
        88 => "StreamsGroupHeartbeat",
        89 => "StreamsGroupDescribe",
        90 => "DescribeShareGroupOffsets",
        91 => "AlterShareGroupOffsets",
        92 => "DeleteShareGroupOffsets",
        _ => return None,
    })
}

pub const PRODUCE: i16 = 0;
pub const FETCH: i16 = 1;
pub const METADATA: i16 = 3;
pub const FIND_COORDINATOR: i16 = 10;
pub const API_VERSIONS: i16 = 18;
pub const DESCRIBE_CLUSTER: i16 = 60;

/// The request header version (0, 1 or 2) for `key` at `version`, `None`
/// for a key whose layout is unknown (then only the fixed fields, which
/// every version shares, can be read).
pub fn request_header_version(key: i16, version: i16) -> Option<i16> {
    match key {
        // Removed in Kafka 4; from the last protocol spec that had them.
        4 => Some(if version >= 4 { 2 } else { 1 }),
        5 => Some(if version >= 2 { 2 } else { 1 }),
        6 => Some(if version >= 6 { 2 } else { 1 }),
        7 => Some(match version {
            0 => 0,
            1 | 2 => 1,
            _ => 2,
        }),
        // Streams groups (KIP-1071): flexible from their first version.
        88 | 89 => Some(2),
        _ => ApiKey::try_from(key)
            .ok()
            .map(|k| k.request_header_version(version)),
    }
}

/// The response header version (0, or 1 with tagged fields) for the
/// response to `key` at `version`. ApiVersions always answers with
/// version 0, so that a client can read the reply whatever it asked.
pub fn response_header_version(key: i16, version: i16) -> Option<i16> {
    if key == API_VERSIONS {
        return Some(0);
    }
    request_header_version(key, version).map(|v| if v >= 2 { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_the_crate_knows_has_our_name_for_it() {
        for key in 0..=i16::from(u8::MAX) {
            if let Ok(api) = ApiKey::try_from(key) {
                let ours = api_name(key).unwrap_or_else(|| panic!("no name for {key}"));
                assert_eq!(format!("{api:?}"), ours, "key {key}");
            }
        }
        assert_eq!(api_name(4), Some("LeaderAndIsr"));
        assert_eq!(api_name(93), None);
        assert_eq!(api_name(-1), None);
    }

    #[test]
    fn header_versions() {
        assert_eq!(request_header_version(PRODUCE, 8), Some(1));
        assert_eq!(request_header_version(PRODUCE, 9), Some(2));
        assert_eq!(request_header_version(7, 0), Some(0));
        assert_eq!(response_header_version(API_VERSIONS, 3), Some(0));
        assert_eq!(response_header_version(METADATA, 9), Some(1));
        assert_eq!(response_header_version(METADATA, 8), Some(0));
        assert_eq!(request_header_version(500, 0), None);
    }
}
