//! The Kafka sink: produces a batch's rows and returns only once every record is acknowledged.
//!
//! At least once: a batch counts as written when `flush` has returned and no delivery failed, and only then
//! does the pipeline move past its source offsets. Exactly once: the producer is transactional, each batch
//! is one transaction holding its rows, dead letters, late rows and source offsets, and the transaction's
//! commit is the batch's commit. Records that failed to deserialize go to the dead-letter topic through the
//! same producer, with the reason in their headers.
//!
//! An output row refused for good (too large, invalid, unauthorized: `refusal.rs`) does not fail the write:
//! [`KafkaSink::write`] and [`KafkaSink::flush`] return it as a [`Refusal`], whether the producer refused
//! it at once or the broker did later, and the pipeline applies `[sink] on_error` to it.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use arrow_array::RecordBatch;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::deliveries::{Deliveries, RecordTag, NOT_A_ROW};
use super::refusal::{refused_for_good, Refusal};
use super::rows::{avro_schema_of, Encoding};
use super::transaction_ends::TransactionEnds;
use super::{SinkOptions, SinkRows};
use crate::kafka::{
    fetch_metadata_checked, flush_in_steps, offset_list, send_waiting, KeyedRecord, TopicPartition,
};
use crate::registry::SchemaRegistry;
use crate::sink::SinkFormat;

/// The batch's transaction failed in a way Kafka lets the producer recover from by aborting it: the
/// pipeline aborts it and produces the batch again, a few times at most (`pipeline/overlapped_write.rs`).
#[derive(Debug, thiserror::Error)]
#[error("the batch's Kafka transaction failed and must be aborted: {0}")]
pub(crate) struct AbortableTransaction(pub String);

/// How long a batch may take to be acknowledged before the sink reports the broker as unreachable.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the producer may take to reach the cluster at start.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the transactional calls (init, offsets, commit, abort) may take.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Writes rows to Kafka.
pub(crate) struct KafkaSink {
    producer: BaseProducer<Deliveries>,
    options: SinkOptions,
    format: SinkFormat,
    transactional: bool,
    /// Whose turn it is to end a transaction, among the producers sharing it (`transaction_ends.rs`).
    ends: TransactionEnds,
    /// With `format = "avro"`: where the rows' schema is registered, and its id once it is.
    avro: Option<AvroTarget>,
}

/// An Avro sink's registry and subject, and the id of the rows' schema, registered with the first batch.
struct AvroTarget {
    registry: SchemaRegistry,
    subject: String,
    id: OnceLock<u32>,
}

impl KafkaSink {
    /// Creates the producer (`kafka.*` options pass through to librdkafka), transactional when
    /// `transactional_id` is given: the producer registers the id with the broker, which fences any older
    /// producer with the same id (a zombie of a crashed run) and aborts its open transaction. Its
    /// transactions end in turn with those of the other producers sharing `ends`.
    pub(crate) fn open(
        options: SinkOptions,
        format: SinkFormat,
        transactional_id: Option<&str>,
        ends: TransactionEnds,
    ) -> anyhow::Result<KafkaSink> {
        let mut config = ClientConfig::new();
        config.set("client.id", "weir-sink").set("linger.ms", "5");
        if let Some(id) = transactional_id {
            config.set("transactional.id", id);
        }
        for (key, value) in &options.kafka {
            config.set(key, value);
        }
        let producer: BaseProducer<Deliveries> = config
            .create_with_context(Deliveries::default())
            .context("creating the Kafka producer")?;
        // Connect now, so that a wrong address, CA or password fails the start, not the first batch.
        // Nothing has been sent, so polling for librdkafka's errors serves no delivery report.
        let serve_events = || {
            producer.poll(Duration::ZERO);
        };
        fetch_metadata_checked(producer.client(), None, CONNECT_TIMEOUT, serve_events)
            .context("connecting the sink's Kafka producer")?;
        if let Some(id) = transactional_id {
            ends.in_turn(|| producer.init_transactions(TRANSACTION_TIMEOUT))
                .with_context(|| format!("registering transactional.id {id:?} with the broker"))?;
        }
        let avro = match format {
            SinkFormat::Avro => {
                let (registry, subject) = options
                    .avro_target()
                    .map_err(|(key, message)| anyhow::anyhow!("sink option `{key}`: {message}"))?;
                Some(AvroTarget {
                    registry: SchemaRegistry::new(registry),
                    subject,
                    id: OnceLock::new(),
                })
            }
            _ => None,
        };
        Ok(KafkaSink {
            producer,
            options,
            format,
            transactional: transactional_id.is_some(),
            ends,
            avro,
        })
    }

    /// Starts the batch's transaction (exactly-once only). What an aborted attempt left behind (reports of
    /// its purged records, refusals) is served and forgotten first, so it cannot fail the next attempt.
    pub(crate) fn begin(&self) -> anyhow::Result<()> {
        if self.transactional {
            self.producer.poll(Duration::ZERO);
            self.producer.context().reset();
            self.producer
                .begin_transaction()
                .context("beginning the batch's Kafka transaction")?;
        }
        Ok(())
    }

    /// Adds the batch's source offsets to its transaction, committed for `group` with the output.
    pub(crate) fn send_offsets(
        &self,
        offsets: &BTreeMap<TopicPartition, i64>,
        group: &ConsumerGroupMetadata,
    ) -> anyhow::Result<()> {
        self.producer
            .send_offsets_to_transaction(&offset_list(offsets)?, group, TRANSACTION_TIMEOUT)
            .context("adding the batch's source offsets to its Kafka transaction")
    }

    /// Commits the batch's transaction: the moment its output becomes visible and its offsets advance.
    pub(crate) fn commit(&self) -> anyhow::Result<()> {
        // The transaction's commit waits for the acknowledgements itself, but without serving their
        // delivery reports it took ~60 ms a batch; flushing first brings that to a few ms.
        // The flush has checked every delivery; nothing is in flight after it. The pipeline has already
        // flushed and handled refused rows, so any found now fail the commit.
        let refused = self.flush()?;
        if let Some(first) = refused.first() {
            bail!(
                "{} rows were refused after the batch's output was checked (the first: {})",
                refused.len(),
                first.message
            );
        }
        let committed =
            (self.ends).in_turn(|| self.producer.commit_transaction(TRANSACTION_TIMEOUT));
        match committed {
            Err(KafkaError::Transaction(error)) if error.txn_requires_abort() => {
                Err(AbortableTransaction(format!("committing it: {error}")).into())
            }
            result => result.context("committing the batch's Kafka transaction"),
        }
    }

    /// Aborts the batch's transaction, so nothing of it is ever read by `read_committed` consumers.
    ///
    /// Records of the batch may still be queued (a batch can fail part-way through producing): they are
    /// purged and their delivery reports served first, since librdkafka will not abort with reports
    /// outstanding.
    pub(crate) fn abort(&self) -> anyhow::Result<()> {
        self.producer
            .purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
        let deadline = Instant::now() + TRANSACTION_TIMEOUT;
        while self.producer.in_flight_count() > 0 && Instant::now() < deadline {
            self.producer.poll(Duration::from_millis(1));
        }
        (self.ends)
            .in_turn(|| self.producer.abort_transaction(TRANSACTION_TIMEOUT))
            .context("aborting the batch's Kafka transaction")
    }

    /// Spark's description of the sink, for progress reports.
    pub(crate) fn description(&self) -> String {
        describe(self.options.topic.as_deref())
    }

    /// The rows of `batch` in the sink's shape (value, key, topic, partition, headers).
    pub(crate) fn rows(&self, batch: &RecordBatch) -> anyhow::Result<SinkRows> {
        let encoding = match (self.format, &self.avro) {
            (SinkFormat::Kafka, _) => Encoding::Value,
            (SinkFormat::Json, _) => Encoding::Json,
            (SinkFormat::Avro, Some(avro)) => Encoding::Avro {
                id: avro.schema_id(batch)?,
            },
            (SinkFormat::Avro, None) => bail!("an Avro sink opened without its registry"),
        };
        SinkRows::new(batch, encoding, self.options.key_column.as_deref())
            .map_err(anyhow::Error::msg)
    }

    /// The topic row `row` goes to: the `topic` option, else its `topic` column.
    pub(crate) fn topic_of<'a>(
        &'a self,
        rows: &'a SinkRows,
        row: usize,
    ) -> anyhow::Result<&'a str> {
        match (self.options.topic.as_deref(), rows.topic(row)) {
            (Some(topic), _) | (None, Some(topic)) => Ok(topic),
            (None, None) => {
                bail!("row {row} has a null `topic` and the sink has no `topic` option")
            }
        }
    }

    /// Queues the rows of `rows` not in `skip` (rows refused earlier in this batch); returns how many were
    /// queued and the rows the producer refused for good at once. Call [`KafkaSink::flush`] after, which
    /// returns those the broker refuses.
    pub(crate) fn write(
        &self,
        rows: &SinkRows,
        skip: &std::collections::BTreeSet<usize>,
    ) -> anyhow::Result<(usize, Vec<Refusal>)> {
        let mut refused = Vec::new();
        let mut queued = 0;
        for row in (0..rows.len()).filter(|row| !skip.contains(row)) {
            let topic = self.topic_of(rows, row)?;
            match self.send(record_of(rows, row, topic).delivery_opaque(row + 1)) {
                Ok(()) => queued += 1,
                Err(error) => match error.rdkafka_error_code() {
                    Some(code) if refused_for_good(code) => refused.push(Refusal {
                        row,
                        topic: topic.to_string(),
                        bytes: rows.size(row),
                        code,
                        message: error.to_string(),
                    }),
                    _ => {
                        return Err(error)
                            .with_context(|| format!("producing a record to topic {topic}"))
                    }
                },
            }
        }
        Ok((queued, refused))
    }

    /// Queues every row of `batch` as a JSON object to `topic` (e.g. late rows); call
    /// [`KafkaSink::flush`] after.
    pub(crate) fn write_json(&self, topic: &str, batch: &RecordBatch) -> anyhow::Result<usize> {
        let rows = SinkRows::new(batch, Encoding::Json, None).map_err(anyhow::Error::msg)?;
        for row in 0..rows.len() {
            self.send(record_of(&rows, row, topic))
                .with_context(|| format!("producing a record to topic {topic}"))?;
        }
        Ok(rows.len())
    }
}

impl KafkaSink {
    /// Queues records (key, value or none for a tombstone, headers) to `topic`-`partition`, such as a
    /// group member's state changes to its changelog; call [`KafkaSink::flush`] after.
    pub(crate) fn write_keyed(
        &self,
        topic: &str,
        partition: i32,
        records: &[KeyedRecord],
    ) -> anyhow::Result<()> {
        for (key, value, headers) in records {
            let mut owned = OwnedHeaders::new_with_capacity(headers.len());
            for (name, text) in headers {
                owned = owned.insert(Header {
                    key: name,
                    value: Some(text.as_bytes()),
                });
            }
            let mut record = BaseRecord::with_opaque_to(topic, NOT_A_ROW)
                .partition(partition)
                .key(key.as_slice())
                .headers(owned);
            if let Some(value) = value {
                record = record.payload(value.as_slice());
            }
            self.send(record)
                .with_context(|| format!("producing a record to {topic}-{partition}"))?;
        }
        Ok(())
    }
}

impl AvroTarget {
    /// The registry id of the schema of `batch`'s written columns, registered under the subject the first
    /// time (every batch of a pipeline has the same columns).
    fn schema_id(&self, batch: &RecordBatch) -> anyhow::Result<u32> {
        if let Some(id) = self.id.get() {
            return Ok(*id);
        }
        let schema = avro_schema_of(batch).map_err(anyhow::Error::msg)?;
        let id = self
            .registry
            .register(&self.subject, &schema)
            .map_err(anyhow::Error::msg)?;
        Ok(*self.id.get_or_init(|| id))
    }
}

/// Spark's description of a Kafka sink writing to `topic` (else to each row's `topic` column).
pub(super) fn describe(topic: Option<&str>) -> String {
    match topic {
        Some(topic) => format!("KafkaSink[{topic}]"),
        None => "KafkaSink[topic column]".into(),
    }
}

/// Row `row` of `rows` as a record for `topic`.
fn record_of<'a>(
    rows: &'a SinkRows,
    row: usize,
    topic: &'a str,
) -> BaseRecord<'a, [u8], [u8], RecordTag> {
    let headers = rows.headers(row);
    let mut record = BaseRecord::with_opaque_to(topic, NOT_A_ROW);
    if let Some(value) = rows.value(row) {
        record = record.payload(value);
    }
    if let Some(key) = rows.key(row) {
        record = record.key(key);
    }
    if let Some(partition) = rows.partition(row) {
        record = record.partition(partition);
    }
    if !headers.is_empty() {
        let mut owned = OwnedHeaders::new_with_capacity(headers.len());
        for (key, value) in headers {
            owned = owned.insert(Header { key, value });
        }
        record = record.headers(owned);
    }
    record
}

impl KafkaSink {
    /// Queues one record, waiting for room in the local queue when it is full.
    pub(super) fn send(
        &self,
        record: BaseRecord<'_, [u8], [u8], RecordTag>,
    ) -> Result<(), KafkaError> {
        send_waiting(&self.producer, record)
    }

    /// Waits until every queued record is acknowledged; fails if any delivery failed, except output rows
    /// the broker refused for good, which it returns.
    pub(crate) fn flush(&self) -> anyhow::Result<Vec<Refusal>> {
        flush_in_steps(&self.producer, FLUSH_TIMEOUT).with_context(|| {
            format!("waiting {FLUSH_TIMEOUT:?} for the broker to acknowledge the batch")
        })?;
        let refused = self.producer.context().take_refused();
        if self.transactional && !refused.is_empty() {
            // A refused row fails the transaction, and librdkafka purges the rest of it: those reports are
            // its consequence, and the attempt is aborted and made again anyway.
            self.producer.context().take_failed();
            return Ok(refused);
        }
        self.check_deliveries()?;
        Ok(refused)
    }

    /// The highest offset the broker acknowledged for a record of Weir's own (not an output row) in
    /// `topic`-`partition`, sent by this sink.
    pub(crate) fn acknowledged(&self, topic: &str, partition: i32) -> Option<i64> {
        self.producer.context().acknowledged(topic, partition)
    }

    fn check_deliveries(&self) -> anyhow::Result<()> {
        let Some((failed, first)) = self.producer.context().take_failed() else {
            return Ok(());
        };
        let message =
            format!("{failed} records of the batch were not delivered; the first error: {first}");
        // In a transaction, a failed delivery fails the transaction, which can be aborted and made again.
        if self.transactional {
            return Err(AbortableTransaction(message).into());
        }
        bail!(message)
    }
}
