//! The checks between stages that [`PipelineSpec::validate`] runs beyond its own: what a file source, a
//! consumer group member, a stream-stream join, a file or console sink, and dead letters each allow of the
//! rest of the pipeline.

use super::spec::{PipelineSpec, SpecError, Transform};
use crate::aggregate::OutputMode;
use crate::decode::DecodeFormat;
use crate::sink::{Delivery, SinkOnError, SinkTarget};
use crate::source::{SourceSpec, TopicSelection};
use crate::udf::{OnError, OnFailure, TransformSpec};

impl PipelineSpec {
    /// What reading files rules out: exactly-once to Kafka (the transaction commits Kafka offsets, not
    /// files), a deserializer for Parquet's typed rows, and alignment (files are one stream).
    pub(super) fn check_file_source(&self) -> Result<(), SpecError> {
        let SourceSpec::Files(files) = &self.source else {
            return Ok(());
        };
        if self.sink.target == SinkTarget::Kafka && self.sink.delivery == Delivery::ExactlyOnce {
            return Err(SpecError::new(
                "sink.delivery",
                "exactly-once to Kafka commits the source's Kafka offsets in the transaction, and a file \
                 source has none: use \"at-least-once\", or a file sink (exactly-once)",
            ));
        }
        let rows = matches!(self.deserializer.format, DecodeFormat::Rows);
        if files.format.is_typed() != rows {
            return Err(SpecError::new(
                "deserializer",
                "Parquet files hold typed rows and take no deserializer; JSON, CSV and text lines need one",
            ));
        }
        if self
            .watermark
            .as_ref()
            .is_some_and(|w| w.max_drift.is_some())
        {
            return Err(SpecError::new(
                "watermark.max_drift",
                "a file source is one stream, with nothing to align: remove max_drift",
            ));
        }
        Ok(())
    }

    /// What a consumer group member (`consumerGroup = true`) cannot have yet: state other than an
    /// aggregation's (deduplication, a stream join), which would have to move with its partitions; an
    /// aggregation repartitioned at least once, or from a topic pattern; a checkpoint, since the group holds the offsets; a sink other than Kafka, whose
    /// output would need one committed-files log per instance; and a bounded trigger, since partitions
    /// move between instances.
    pub(super) fn check_consumer_group(&self) -> Result<(), SpecError> {
        let stateful_member = self.is_group_member() && self.aggregate.is_some();
        if self.state_store.is_some() && !stateful_member {
            return Err(SpecError::new(
                "stateStoreLocation",
                "only used by a consumer group member (`consumerGroup = true`) with an [aggregate], for the local copies of its tasks' state: remove it",
            ));
        }
        if !self.is_group_member() {
            return Ok(());
        }
        let why = "with `consumerGroup = true`";
        let unmoved = [
            ("deduplicate", self.deduplicate.is_some()),
            ("stream_join", self.stream_join.is_some()),
        ];
        if let Some((key, _)) = unmoved.iter().find(|(_, present)| *present) {
            return Err(SpecError::new(
                *key,
                format!("{why}, instances share the partitions, and only an aggregation's state moves between them yet: run this pipeline as one instance"),
            ));
        }
        let subscribes = (self.source.kafka())
            .is_some_and(|k| matches!(k.topics, crate::source::TopicSelection::Subscribe(_)));
        if self.repartitions() && !subscribes {
            return Err(SpecError::new(
                "subscribePattern",
                format!("{why}, an aggregation over input not declared partitioned by its keys \
                         (aggregate.input_partitioned_by) reads it through a repartition topic with one partition \
                         per input partition: name the input topics with `subscribe`"),
            ));
        }
        // The reader of the repartition topic decides which upstream writes count from the log alone, which
        // holds only while a paused instance cannot write after its partitions' next owner: transactional
        // producers are fenced, an at-least-once producer is not.
        if self.repartitions() && self.sink.delivery != Delivery::ExactlyOnce {
            return Err(SpecError::new(
                "sink.delivery",
                format!("{why}, an aggregation over input not declared partitioned by its keys \
                         (aggregate.input_partitioned_by) reads it through a repartition topic, whose writes \
                         must be fenced when their partition moves: use delivery = \"exactly-once\", or declare \
                         the key the input is partitioned by"),
            ));
        }
        if self.checkpoint.is_some() {
            return Err(SpecError::new(
                "checkpointLocation",
                format!("{why}, the consumer group holds the offsets: remove checkpointLocation"),
            ));
        }
        if self.sink.target != SinkTarget::Kafka {
            return Err(SpecError::new(
                "sink",
                format!("{why}, the sink must be Kafka: files and the console are written by one instance"),
            ));
        }
        if self.trigger.is_bounded() {
            return Err(SpecError::new(
                "trigger",
                format!(
                    "{why}, a member runs until stopped: its partitions move between instances"
                ),
            ));
        }
        Ok(())
    }

    /// What a stream-stream join needs: a watermark on the source's rows (the state is bounded by it), a
    /// Kafka source that subscribes to topics, the other topic among none of them, and a deserializer
    /// policy that Kafka can take.
    pub(super) fn check_stream_join(&self) -> Result<(), SpecError> {
        let Some(join) = &self.stream_join else {
            return Ok(());
        };
        if self.watermark.is_none() {
            return Err(SpecError::new(
                "stream_join",
                "needs a [watermark] on the source's rows: each stream's rows are held until the watermark \
                 rules out a match",
            ));
        }
        match self.source.kafka().map(|kafka| &kafka.topics) {
            Some(TopicSelection::Subscribe(topics)) if topics.contains(&join.topic) => Err(SpecError::new(
                "stream_join.topic",
                format!("`{}` is the source's own topic: the other stream must be another topic", join.topic),
            )),
            Some(TopicSelection::Subscribe(_)) => join
                .deserializer
                .format
                .check()
                .map_err(|(key, message)| SpecError::new(format!("stream_join.deserializer.{key}"), message)),
            _ => Err(SpecError::new(
                "stream_join",
                "joins two Kafka streams: the source must `subscribe` to its topics (the other stream's topic is \
                 read beside them)",
            )),
        }
    }

    /// What a file or console sink needs: a file sink, a checkpoint (its log and the checkpoint together
    /// are its exactly-once commit); neither can write the Kafka topics of dead letters and late rows.
    pub(super) fn check_sink_target(&self) -> Result<(), SpecError> {
        let delivery = self.sink.delivery;
        match &self.sink.target {
            SinkTarget::Kafka => return Ok(()),
            SinkTarget::Files(_) if self.checkpoint.is_none() => {
                return Err(SpecError::new(
                    "sink.path",
                    "a file sink needs a checkpoint: set `checkpointLocation` at the top of the file (with \
                     the sink's committed-files log it makes the files exactly-once)",
                ))
            }
            SinkTarget::Files(_) if delivery == Delivery::AtLeastOnce => {
                return Err(SpecError::new(
                    "sink.delivery",
                    "a file sink is always exactly-once: remove `delivery`",
                ))
            }
            SinkTarget::Files(_)
                if self
                    .aggregate
                    .as_ref()
                    .is_some_and(|a| a.output_mode == OutputMode::Update) =>
            {
                return Err(SpecError::new(
                    "aggregate.output_mode",
                    "a file sink keeps every batch's rows, so \"update\" would leave each group's earlier \
                     values beside its new one: use \"append\" (with a [watermark]) or \"complete\" (each \
                     batch's files replace the last result)",
                ))
            }
            SinkTarget::Console(_) if delivery == Delivery::ExactlyOnce => {
                return Err(SpecError::new(
                    "sink.delivery",
                    "the console cannot take back what it printed: expected \"at-least-once\"",
                ))
            }
            SinkTarget::Files(_) | SinkTarget::Console(_) => {}
        }
        let kafka_only = "this sink writes no Kafka topics: with a file or console sink, use \
                          on_error = \"fail\" or \"drop\" (dead letters and late rows go to Kafka)";
        let mut refused = Vec::new();
        if matches!(self.deserializer.on_error, OnError::DeadLetter { .. }) {
            refused.push("deserializer.on_error".to_string());
        }
        let joined = self
            .stream_join
            .as_ref()
            .map(|join| &join.deserializer.on_error);
        if matches!(joined, Some(OnError::DeadLetter { .. })) {
            refused.push("stream_join.deserializer.on_error".to_string());
        }
        for (i, stage) in udf_transforms(&self.transforms) {
            if matches!(stage.udf.on_failure, OnFailure::DeadLetter { .. }) {
                refused.push(format!("transform[{i}].on_failure"));
            }
        }
        if matches!(self.sink.on_error, SinkOnError::DeadLetter { .. }) {
            refused.push("sink.on_error".to_string());
        }
        if self
            .watermark
            .as_ref()
            .is_some_and(|w| w.late_data_topic.is_some())
        {
            refused.push("watermark.late_data_topic".to_string());
        }
        match refused.into_iter().next() {
            Some(key) => Err(SpecError::new(key, kafka_only)),
            None => Ok(()),
        }
    }

    /// Where records cannot be dead-lettered: a transform's rows (its input rows are not records), and
    /// anything after an aggregation (its rows trace back to no source record).
    pub(super) fn check_dead_letter_policies(&self) -> Result<(), SpecError> {
        for (i, stage) in udf_transforms(&self.transforms) {
            if matches!(stage.on_error, OnError::DeadLetter { .. }) {
                return Err(SpecError::new(
                    format!("transform[{i}].on_error"),
                    "a transform's rows are dropped or fail the pipeline (\"drop\" or \"fail\"); use \
                     on_failure = \"dead-letter\" to dead-letter the records of a failed call",
                ));
            }
        }
        for (i, stage) in udf_transforms(&self.after_aggregate) {
            let no_records = "after an aggregation there are no source records to dead-letter";
            if matches!(stage.on_error, OnError::DeadLetter { .. }) {
                return Err(SpecError::new(
                    format!("after_aggregate[{i}].on_error"),
                    format!("expected fail or drop: {no_records}"),
                ));
            }
            if matches!(stage.udf.on_failure, OnFailure::DeadLetter { .. }) {
                return Err(SpecError::new(
                    format!("after_aggregate[{i}].on_failure"),
                    format!("expected fail: {no_records}"),
                ));
            }
        }
        Ok(())
    }
}

/// The UDF stages of a chain of transforms, with their indices in it.
fn udf_transforms(chain: &[Transform]) -> impl Iterator<Item = (usize, &TransformSpec)> {
    chain
        .iter()
        .enumerate()
        .filter_map(|(i, stage)| match stage {
            Transform::Udf(spec) => Some((i, spec)),
            Transform::Sql(_) | Transform::Join(_) => None,
        })
}
