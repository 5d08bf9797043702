//! Kafka records as Arrow: Spark's fixed source schema and the builder that fills it while polling.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, Int32Builder, Int64Builder, ListBuilder, StringBuilder, StructBuilder,
    TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use rdkafka::message::{BorrowedMessage, Headers, Message};

/// The fields of one Kafka header, as Spark types them.
fn header_fields() -> Fields {
    Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Binary, true),
    ])
}

/// Spark's Kafka source schema: `key`, `value` (binary), `topic`, `partition`, `offset`, `timestamp`,
/// `timestampType` and, with `includeHeaders`, `headers` (list of key/value structs).
///
/// ```
/// let schema = weir::internal::source_schema(true);
/// assert_eq!(schema.field(1).name(), "value");
/// assert_eq!(schema.fields().len(), 8);
/// ```
pub fn source_schema(include_headers: bool) -> SchemaRef {
    let mut fields = vec![
        Field::new("key", DataType::Binary, true),
        Field::new("value", DataType::Binary, true),
        Field::new("topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, false),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())),
            true,
        ),
        Field::new("timestampType", DataType::Int32, false),
    ];
    if include_headers {
        fields.push(headers_field());
    }
    Arc::new(Schema::new(fields))
}

/// The `headers` column's field: `array<struct<key string, value binary>>`.
pub(crate) fn headers_field() -> Field {
    Field::new(
        "headers",
        DataType::List(Arc::new(Field::new(
            "item",
            DataType::Struct(header_fields()),
            true,
        ))),
        true,
    )
}

/// The file source's one stream, `files`-0: its position (files read) and its watermark clock. Not the
/// directory's name, which may be given relative to wherever `weir` runs.
pub(crate) const FILES_STREAM: &str = "files";

/// Where a chunk's records come from, which says how they are numbered and named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOrigin {
    /// A Kafka partition: `topic`-`partition`, numbered by the `offset` column.
    Kafka,
    /// The lines of a file (the file source's JSON, CSV and text): `topic` is the file, the `offset`
    /// column the line each record starts on.
    FileLines,
    /// The typed rows of a file (Parquet): `topic` is the file, rows numbered from `first_offset` on, and
    /// the batch has the rows' own schema.
    FileRows,
}

/// The records of one partition in one micro-batch, as an Arrow batch of the source schema.
#[derive(Debug, Clone)]
pub struct PartitionChunk {
    /// Where the records come from.
    pub origin: RecordOrigin,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Offset of the first record.
    pub first_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// The records.
    pub batch: RecordBatch,
}

impl PartitionChunk {
    /// Where these records came from, for errors: ` on tx-0 offsets 100..=199`.
    pub fn describe(&self) -> String {
        let (topic, first, last) = (&self.topic, self.first_offset, self.last_offset);
        match self.origin {
            RecordOrigin::Kafka => {
                format!(" on {topic}-{} offsets {first}..={last}", self.partition)
            }
            RecordOrigin::FileLines => format!(" in {topic} lines {first}..={last}"),
            RecordOrigin::FileRows => format!(" in {topic} rows {first}..={last}"),
        }
    }

    /// The offset of the record in row `row` (offsets need not be consecutive: transaction markers and
    /// compaction leave gaps).
    pub fn offset(&self, row: usize) -> i64 {
        if self.origin == RecordOrigin::FileRows {
            return self.first_offset + row as i64;
        }
        self.batch
            .column(4)
            .as_any()
            .downcast_ref::<arrow_array::Int64Array>()
            .expect("column 4 of the source schema is the offset")
            .value(row)
    }

    /// The partition whose watermark clock these records move: their Kafka partition, or, for files, the
    /// one stream all files make ([`FILES_STREAM`]).
    pub fn watermark_partition(&self) -> (String, i32) {
        match self.origin {
            RecordOrigin::Kafka => (self.topic.clone(), self.partition),
            RecordOrigin::FileLines | RecordOrigin::FileRows => (FILES_STREAM.to_string(), 0),
        }
    }

    /// Where the record in row `row` came from, for errors: `tx-0 offset 42`, `in/a.json line 7`.
    pub fn locate(&self, row: usize) -> String {
        let (topic, offset) = (&self.topic, self.offset(row));
        match self.origin {
            RecordOrigin::Kafka => format!("{topic}-{} offset {offset}", self.partition),
            RecordOrigin::FileLines => format!("{topic} line {offset}"),
            RecordOrigin::FileRows => format!("{topic} row {offset}"),
        }
    }

    /// The records in `rows`, as a chunk of their own.
    pub fn slice(&self, rows: std::ops::Range<usize>) -> PartitionChunk {
        let batch = self.batch.slice(rows.start, rows.len());
        PartitionChunk {
            origin: self.origin,
            topic: self.topic.clone(),
            partition: self.partition,
            first_offset: self.offset(rows.start),
            last_offset: self.offset(rows.end - 1),
            batch,
        }
    }
}

/// Sample records as if read from partition 0 of `topic`, offsets from 0, no key or timestamp: for running
/// a deserializer on sample data (`weir udf test`).
///
/// ```
/// let chunk = weir::internal::sample_records("sample", &[b"{}".to_vec(), b"[]".to_vec()]);
/// assert_eq!((chunk.batch.num_rows(), chunk.last_offset), (2, 1));
/// ```
pub fn sample_records(topic: &str, values: &[Vec<u8>]) -> PartitionChunk {
    let rows = values.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(arrow_array::BinaryArray::new_null(rows)),
        Arc::new(
            values
                .iter()
                .map(|v| Some(v.as_slice()))
                .collect::<arrow_array::BinaryArray>(),
        ),
        Arc::new(arrow_array::StringArray::from(vec![topic; rows])),
        Arc::new(arrow_array::Int32Array::from(vec![0; rows])),
        Arc::new(arrow_array::Int64Array::from_iter_values(0..rows as i64)),
        Arc::new(arrow_array::TimestampMillisecondArray::new_null(rows).with_timezone("+00:00")),
        Arc::new(arrow_array::Int32Array::from(vec![-1; rows])),
    ];
    let batch = RecordBatch::try_new(source_schema(false), columns)
        .expect("columns match the source schema");
    PartitionChunk {
        origin: RecordOrigin::Kafka,
        topic: topic.to_string(),
        partition: 0,
        first_offset: 0,
        last_offset: rows as i64 - 1,
        batch,
    }
}

/// Appends polled messages of one partition to Arrow builders.
pub(crate) struct ChunkBuilder {
    pub(crate) topic: String,
    /// Where a bounded query stops reading this partition.
    pub(crate) end: Option<i64>,
    pub(crate) partition: i32,
    first_offset: i64,
    last_offset: i64,
    key: BinaryBuilder,
    value: BinaryBuilder,
    offset: Int64Builder,
    timestamp: TimestampMillisecondBuilder,
    timestamp_type: Int32Builder,
    headers: Option<ListBuilder<StructBuilder>>,
    schema: SchemaRef,
}

impl ChunkBuilder {
    pub(crate) fn new(
        topic: &str,
        partition: i32,
        schema: SchemaRef,
        include_headers: bool,
        end: Option<i64>,
    ) -> Self {
        let headers = include_headers.then(|| {
            let fields = header_fields();
            let item = StructBuilder::from_fields(fields.clone(), 0);
            ListBuilder::new(item).with_field(Arc::new(Field::new(
                "item",
                DataType::Struct(fields),
                true,
            )))
        });
        ChunkBuilder {
            topic: topic.to_string(),
            end,
            partition,
            first_offset: -1,
            last_offset: -1,
            key: BinaryBuilder::new(),
            value: BinaryBuilder::new(),
            offset: Int64Builder::new(),
            timestamp: TimestampMillisecondBuilder::new().with_timezone("+00:00"),
            timestamp_type: Int32Builder::new(),
            headers,
            schema,
        }
    }

    /// Offset of the last record appended.
    pub(crate) fn last_offset(&self) -> i64 {
        self.last_offset
    }

    pub(crate) fn len(&self) -> usize {
        self.offset.values_slice().len()
    }

    pub(crate) fn append(&mut self, message: &BorrowedMessage<'_>) {
        if self.first_offset < 0 {
            self.first_offset = message.offset();
        }
        self.last_offset = message.offset();
        self.key.append_option(message.key());
        self.value.append_option(message.payload());
        self.offset.append_value(message.offset());
        // Spark's timestampType: 0 = CreateTime, 1 = LogAppendTime; -1 when the record has none.
        let (millis, kind) = match message.timestamp() {
            rdkafka::Timestamp::CreateTime(ms) => (Some(ms), 0),
            rdkafka::Timestamp::LogAppendTime(ms) => (Some(ms), 1),
            rdkafka::Timestamp::NotAvailable => (None, -1),
        };
        self.timestamp.append_option(millis);
        self.timestamp_type.append_value(kind);
        if let Some(headers) = &mut self.headers {
            if let Some(list) = message.headers() {
                let items = headers.values();
                for header in list.iter() {
                    items
                        .field_builder::<StringBuilder>(0)
                        .expect("key builder")
                        .append_value(header.key);
                    items
                        .field_builder::<BinaryBuilder>(1)
                        .expect("value builder")
                        .append_option(header.value);
                    items.append(true);
                }
            }
            headers.append(true);
        }
    }

    pub(crate) fn finish(mut self) -> PartitionChunk {
        let rows = self.offset.values_slice().len();
        let mut topic = StringBuilder::with_capacity(rows, rows * self.topic.len());
        let mut partition = Int32Builder::with_capacity(rows);
        for _ in 0..rows {
            topic.append_value(&self.topic);
            partition.append_value(self.partition);
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.key.finish()),
            Arc::new(self.value.finish()),
            Arc::new(topic.finish()),
            Arc::new(partition.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.timestamp.finish()),
            Arc::new(self.timestamp_type.finish()),
        ];
        if let Some(headers) = &mut self.headers {
            columns.push(Arc::new(headers.finish()));
        }
        let batch =
            RecordBatch::try_new(self.schema, columns).expect("columns match the source schema");
        PartitionChunk {
            origin: RecordOrigin::Kafka,
            topic: self.topic,
            partition: self.partition,
            first_offset: self.first_offset,
            last_offset: self.last_offset,
            batch,
        }
    }
}
