//! What an event says about a Produce or Fetch partition, and counting
//! the records in a partition's record data.
//!
//! Record batches are counted lazily from their headers alone: nothing is
//! decompressed and no record is parsed.

/// One partition of a Produce or Fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartition {
    /// The topic's name (or, where the request named it by id alone and the id
    /// is not known yet, its id).
    pub topic: String,
    /// The partition's index.
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

/// Topic (id, name) pairs, as Metadata responses give them.
pub type TopicIds = Vec<(String, String)>;
