//! Reading a partition's raw log over the Kafka protocol, to tell committed transactional output from
//! aborted output.
//!
//! tansu 0.6 and librdkafka's mock cluster do not return the aborted-transaction list, so a `read_committed`
//! consumer there still sees the records of aborted transactions. Here every record comes back with its
//! producer id and transactional and control flags, and the commit/abort markers that follow a transaction
//! decide its records' fate, as a broker-side `read_committed` would.
//!
//! Records of a producer fenced by a newer epoch of its `transactional.id` carry the old epoch, and the new
//! epoch's markers have the same producer id; tansu 0.6 refuses them on produce, as Kafka does, but a
//! reader keyed by producer id alone would count any that got in as committed. Kafka's rule applies here:
//! a record of an epoch older than one already seen for its producer id is fenced, and a transaction still
//! open when a newer epoch starts was aborted by that start.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;

use anyhow::{bail, Context};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::RecordBatchDecoder;

/// Fetch v4: the first version with isolation levels and transactional record batches.
const FETCH_VERSION: i16 = 4;

/// One data record of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Its offset.
    pub offset: i64,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its value.
    pub value: Option<Vec<u8>>,
    /// Its producer id and epoch (-1 for a record written outside a transaction).
    pub producer: (i64, i16),
}

/// What became of a record that did not commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCommitted {
    /// Its transaction was aborted, by a marker or by a newer epoch's start.
    Aborted,
    /// Written with an epoch older than its producer id's latest.
    Fenced,
    /// Its transaction has no marker yet.
    Open,
}

impl NotCommitted {
    /// The fate in a word, as a dump of the log shows it.
    pub fn name(self) -> &'static str {
        match self {
            NotCommitted::Aborted => "aborted",
            NotCommitted::Fenced => "fenced",
            NotCommitted::Open => "open",
        }
    }
}

/// A partition's log, sorted by what the transaction markers made of each record.
#[derive(Debug, Default)]
pub struct PartitionLog {
    /// Non-transactional records, and transactional ones whose transaction committed, in offset order.
    pub committed: Vec<LogRecord>,
    /// Commit markers seen.
    pub commits: usize,
    /// Abort markers seen.
    pub aborts: usize,
    /// The records that did not commit, in offset order, with what became of each.
    pub not_committed: Vec<(NotCommitted, LogRecord)>,
}

impl PartitionLog {
    /// Records of aborted transactions.
    pub fn aborted(&self) -> usize {
        self.count(NotCommitted::Aborted)
    }

    /// Records of transactions with no marker yet.
    pub fn open(&self) -> usize {
        self.count(NotCommitted::Open)
    }

    /// Records written with an epoch older than their producer id's latest (a fenced producer's), which
    /// Kafka would have refused; none of them is committed.
    pub fn fenced(&self) -> usize {
        self.count(NotCommitted::Fenced)
    }

    fn count(&self, fate: NotCommitted) -> usize {
        (self.not_committed.iter())
            .filter(|(f, _)| *f == fate)
            .count()
    }

    /// The committed records' values as text, in offset order.
    pub fn committed_values(&self) -> Vec<String> {
        self.committed
            .iter()
            .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
            .collect()
    }
}

fn request(
    stream: &mut TcpStream,
    correlation_id: i32,
    fetch: &FetchRequest,
) -> anyhow::Result<FetchResponse> {
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Fetch as i16)
        .with_request_api_version(FETCH_VERSION)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("weir-tests-log")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, FetchRequest::header_version(FETCH_VERSION))
        .context("encoding the request header")?;
    fetch
        .encode(&mut body, FETCH_VERSION)
        .context("encoding the fetch request")?;
    stream.write_all(&(body.len() as i32).to_be_bytes())?;
    stream.write_all(&body)?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let mut response = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut response)?;
    let mut response = Bytes::from(response);
    let header =
        ResponseHeader::decode(&mut response, FetchResponse::header_version(FETCH_VERSION))
            .context("decoding the response header")?;
    if header.correlation_id != correlation_id {
        bail!(
            "response {} for request {correlation_id}",
            header.correlation_id
        );
    }
    FetchResponse::decode(&mut response, FETCH_VERSION).context("decoding the fetch response")
}

/// Reads `topic`-`partition` from offset 0 to its high watermark (uncommitted reads, so aborted records
/// and markers come back too) from the single broker at `bootstrap`.
pub fn read_log(bootstrap: &str, topic: &str, partition: i32) -> anyhow::Result<PartitionLog> {
    let mut stream =
        TcpStream::connect(bootstrap).with_context(|| format!("connecting to {bootstrap}"))?;
    let mut log = PartitionLog::default();
    let mut open: BTreeMap<i64, (i16, Vec<LogRecord>)> = BTreeMap::new();
    let mut epochs: BTreeMap<i64, i16> = BTreeMap::new();
    let mut offset = 0i64;
    for correlation_id in 1.. {
        let fetch = FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(100)
            .with_min_bytes(1)
            .with_max_bytes(16 << 20)
            .with_isolation_level(0)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(8 << 20)])]);
        let response = request(&mut stream, correlation_id, &fetch)?;
        let data = response
            .responses
            .first()
            .and_then(|t| t.partitions.first())
            .context("the fetch response has no partition")?;
        if data.error_code != 0 {
            bail!(
                "fetching {topic}-{partition} at {offset}: error code {}",
                data.error_code
            );
        }
        let high_watermark = data.high_watermark;
        if offset >= high_watermark {
            break;
        }
        let mut records = data.records.clone().unwrap_or_default();
        let before = offset;
        for set in
            RecordBatchDecoder::decode_all(&mut records).context("decoding record batches")?
        {
            for record in set.records {
                if record.offset < offset {
                    continue;
                }
                offset = record.offset + 1;
                if record.control {
                    let key = record.key.unwrap_or_default();
                    let kind = (key.len() >= 4).then(|| i16::from_be_bytes([key[2], key[3]]));
                    let (_, records) = open.remove(&record.producer_id).unwrap_or_default();
                    match kind {
                        Some(1) => {
                            log.commits += 1;
                            log.committed.extend(records);
                        }
                        Some(0) => {
                            log.aborts += 1;
                            let aborted = records.into_iter().map(|r| (NotCommitted::Aborted, r));
                            log.not_committed.extend(aborted);
                        }
                        other => bail!(
                            "control record of unknown type {other:?} at offset {}",
                            record.offset
                        ),
                    }
                    continue;
                }
                let entry = LogRecord {
                    offset: record.offset,
                    key: record.key.map(|k| k.to_vec()),
                    value: record.value.map(|v| v.to_vec()),
                    producer: (record.producer_id, record.producer_epoch),
                };
                if record.transactional {
                    let latest = epochs
                        .entry(record.producer_id)
                        .or_insert(record.producer_epoch);
                    if record.producer_epoch < *latest {
                        log.not_committed.push((NotCommitted::Fenced, entry));
                        continue;
                    }
                    *latest = record.producer_epoch;
                    let (epoch, records) = open.entry(record.producer_id).or_default();
                    if *epoch < record.producer_epoch {
                        // A newer epoch's start aborted the transaction the older one left open.
                        let aborted = std::mem::take(records)
                            .into_iter()
                            .map(|r| (NotCommitted::Aborted, r));
                        log.not_committed.extend(aborted);
                        *epoch = record.producer_epoch;
                    }
                    records.push(entry);
                } else {
                    log.committed.push(entry);
                }
            }
        }
        if offset == before {
            bail!("no progress reading {topic}-{partition} at offset {offset} (high watermark {high_watermark})");
        }
    }
    let open = open.into_values().flat_map(|(_, records)| records);
    log.not_committed
        .extend(open.map(|r| (NotCommitted::Open, r)));
    log.not_committed.sort_by_key(|(_, r)| r.offset);
    log.committed.sort_by_key(|r| r.offset);
    Ok(log)
}
