//! The Kafka source options, with Spark's names and meanings.
//!
//! ```toml
//! [source]
//! kafka.bootstrap.servers = "localhost:9092"
//! subscribe = "transactions"          # or subscribePattern = "tx-.*", or assign = '{"tx":[0,1]}'
//! startingOffsets = "earliest"        # latest (default), earliest, or '{"tx":{"0":23,"1":-2}}'
//! endingOffsets = "latest"            # optional: stop once these offsets are reached
//! maxOffsetsPerTrigger = 50000        # optional: records per micro-batch
//! includeHeaders = true               # add the `headers` column
//! failOnDataLoss = true               # fail when requested offsets are gone from the broker
//! consumerGroup = true                # optional: instances share the partitions (docs/scaling-out.md)
//! ```

use std::collections::BTreeMap;

use regex::Regex;

use crate::kafka::{split_kafka_options, OptionError, TopicPartition, FORBIDDEN_SOURCE_KEYS};

/// Which topics and partitions the source reads: exactly one of Spark's three ways.
#[derive(Debug, Clone)]
pub enum TopicSelection {
    /// `subscribe`: these topics, all their partitions, including partitions added later.
    Subscribe(Vec<String>),
    /// `subscribePattern`: every topic whose whole name matches, including topics created later.
    Pattern(Regex),
    /// `assign`: exactly these partitions.
    Assign(BTreeMap<String, Vec<i32>>),
}

/// Where reading starts or stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The first offset still in the partition.
    Earliest,
    /// The end of the partition when the query starts.
    Latest,
    /// Per partition; -2 means earliest and -1 latest, as in Spark.
    Specific(BTreeMap<TopicPartition, i64>),
}

/// The parsed `[source]` section.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// What to read.
    pub topics: TopicSelection,
    /// `startingOffsets`: where a fresh query starts (default `latest`).
    pub starting: OffsetSpec,
    /// `endingOffsets`: where a bounded query stops; `None` runs until stopped.
    pub ending: Option<OffsetSpec>,
    /// `maxOffsetsPerTrigger`: the most records one micro-batch takes.
    pub max_offsets_per_trigger: Option<u64>,
    /// `includeHeaders`: add the `headers` column.
    pub include_headers: bool,
    /// `failOnDataLoss`: fail (true) or skip ahead with a warning (false) when offsets are gone.
    pub fail_on_data_loss: bool,
    /// `consumerGroup`: join the consumer group `weir-<name>` and read the partitions it assigns, so that
    /// instances of the pipeline share them, instead of reading every partition (the default).
    pub consumer_group: bool,
    /// Everything given as `kafka.*`, prefix removed, for librdkafka.
    pub kafka: BTreeMap<String, String>,
}

/// The source option names Weir knows, for error messages.
pub(crate) const SOURCE_OPTIONS: &[&str] = &[
    "kafka.*",
    "subscribe",
    "subscribePattern",
    "assign",
    "startingOffsets",
    "endingOffsets",
    "maxOffsetsPerTrigger",
    "includeHeaders",
    "failOnDataLoss",
    "consumerGroup",
];

impl SourceOptions {
    /// Parses Spark-style options.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use weir::{OffsetSpec, SourceOptions};
    /// let options = BTreeMap::from([
    ///     ("kafka.bootstrap.servers".to_string(), "localhost:9092".to_string()),
    ///     ("subscribe".to_string(), "tx".to_string()),
    ///     ("startingOffsets".to_string(), r#"{"tx":{"0":5,"1":-2}}"#.to_string()),
    /// ]);
    /// let parsed = SourceOptions::from_options(options).unwrap();
    /// let OffsetSpec::Specific(offsets) = parsed.starting else { panic!() };
    /// assert_eq!(offsets[&("tx".to_string(), 1)], -2);
    /// ```
    pub fn from_options(options: BTreeMap<String, String>) -> Result<SourceOptions, OptionError> {
        let (kafka, mut rest) = split_kafka_options(options, FORBIDDEN_SOURCE_KEYS)?;
        let subscribe = rest.remove("subscribe");
        let pattern = rest.remove("subscribePattern");
        let assign = rest.remove("assign");
        let topics = match (subscribe, pattern, assign) {
            (Some(list), None, None) => {
                let topics: Vec<String> = list
                    .split(',')
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
                    .collect();
                if topics.is_empty() {
                    return Err(OptionError::new(
                        "subscribe",
                        "expected a comma-separated list of topics",
                    ));
                }
                TopicSelection::Subscribe(topics)
            }
            (None, Some(pattern), None) => {
                let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                    OptionError::new("subscribePattern", format!("not a regular expression: {e}"))
                })?;
                TopicSelection::Pattern(regex)
            }
            (None, None, Some(json)) => TopicSelection::Assign(parse_assign(&json)?),
            _ => {
                return Err(OptionError::new(
                    "subscribe",
                    "exactly one of `subscribe`, `subscribePattern` or `assign` must be set",
                ))
            }
        };
        let starting = match rest.remove("startingOffsets") {
            None => OffsetSpec::Latest,
            Some(text) => parse_offsets("startingOffsets", &text, true)?,
        };
        let ending = rest
            .remove("endingOffsets")
            .map(|text| parse_offsets("endingOffsets", &text, false))
            .transpose()?;
        let max_offsets_per_trigger = rest
            .remove("maxOffsetsPerTrigger")
            .map(|text| match text.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(OptionError::new(
                    "maxOffsetsPerTrigger",
                    format!("expected a positive number, found {text:?}"),
                )),
            })
            .transpose()?;
        let include_headers = parse_bool(&mut rest, "includeHeaders", false)?;
        let fail_on_data_loss = parse_bool(&mut rest, "failOnDataLoss", true)?;
        let consumer_group = parse_bool(&mut rest, "consumerGroup", false)?;
        if consumer_group {
            check_group_mode(&topics, &ending, &kafka)?;
        } else if kafka.contains_key("group.instance.id") {
            return Err(OptionError::new(
                "kafka.group.instance.id",
                "static membership is for a consumer group member: set `consumerGroup = true`",
            ));
        }
        if let Some(key) = rest.keys().next() {
            return Err(OptionError::new(
                key.clone(),
                crate::spelling::unknown_key_message("source option", key, SOURCE_OPTIONS),
            ));
        }
        Ok(SourceOptions {
            topics,
            starting,
            ending,
            max_offsets_per_trigger,
            include_headers,
            fail_on_data_loss,
            consumer_group,
            kafka,
        })
    }

    /// Spark's description of the source, for progress reports: `KafkaV2[Subscribe[tx]]`.
    pub fn description(&self) -> String {
        match &self.topics {
            TopicSelection::Subscribe(topics) => {
                format!("KafkaV2[Subscribe[{}]]", topics.join(","))
            }
            TopicSelection::Pattern(regex) => {
                format!("KafkaV2[SubscribePattern[{}]]", regex.as_str())
            }
            TopicSelection::Assign(map) => {
                let parts: Vec<String> = map
                    .iter()
                    .flat_map(|(t, ps)| ps.iter().map(move |p| format!("{t}-{p}")))
                    .collect();
                format!("KafkaV2[Assign[{}]]", parts.join(", "))
            }
        }
    }
}

/// What a group member cannot do: the group decides its partitions (not `assign`), and the partitions
/// move between members, so there are no ending offsets to stop at. `group.instance.id` is for this mode
/// only (static membership).
fn check_group_mode(
    topics: &TopicSelection,
    ending: &Option<OffsetSpec>,
    kafka: &BTreeMap<String, String>,
) -> Result<(), OptionError> {
    if matches!(topics, TopicSelection::Assign(_)) {
        return Err(OptionError::new(
            "assign",
            "with `consumerGroup = true` the group assigns the partitions: use `subscribe` or `subscribePattern`",
        ));
    }
    if ending.is_some() {
        return Err(OptionError::new(
            "endingOffsets",
            "a consumer group member runs until stopped: its partitions move between instances",
        ));
    }
    if kafka.contains_key("group.id") {
        return Err(OptionError::new(
            "kafka.group.id",
            "with `consumerGroup = true` the group is `weir-<name>`: rename the pipeline instead",
        ));
    }
    Ok(())
}

fn parse_bool(
    options: &mut BTreeMap<String, String>,
    key: &str,
    default: bool,
) -> Result<bool, OptionError> {
    match options.remove(key) {
        None => Ok(default),
        Some(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(OptionError::new(
                key,
                format!("expected true or false, found {text:?}"),
            )),
        },
    }
}

fn parse_assign(json: &str) -> Result<BTreeMap<String, Vec<i32>>, OptionError> {
    let map: BTreeMap<String, Vec<i32>> = serde_json::from_str(json).map_err(|e| {
        OptionError::new(
            "assign",
            format!("expected JSON like {{\"topicA\":[0,1]}}: {e}"),
        )
    })?;
    if map.values().all(Vec::is_empty) {
        return Err(OptionError::new("assign", "no partitions given"));
    }
    Ok(map)
}

fn parse_offsets(key: &str, text: &str, starting: bool) -> Result<OffsetSpec, OptionError> {
    match text.trim() {
        "earliest" if starting => return Ok(OffsetSpec::Earliest),
        "earliest" => {
            return Err(OptionError::new(
                key,
                "`earliest` is not allowed for endingOffsets (as in Spark)",
            ))
        }
        "latest" => return Ok(OffsetSpec::Latest),
        _ => {}
    }
    let json: BTreeMap<String, BTreeMap<String, i64>> = serde_json::from_str(text).map_err(|e| {
        OptionError::new(
            key,
            format!("expected earliest, latest or JSON like {{\"topicA\":{{\"0\":23,\"1\":-1}}}}: {e}"),
        )
    })?;
    let mut offsets = BTreeMap::new();
    for (topic, partitions) in json {
        for (partition, offset) in partitions {
            let partition: i32 = partition.parse().map_err(|_| {
                OptionError::new(
                    key,
                    format!("partition {partition:?} of topic {topic:?} is not a number"),
                )
            })?;
            if offset < -2 || (!starting && offset == -2) {
                return Err(OptionError::new(
                    key,
                    format!("offset {offset} for {topic}-{partition} is not valid (use an offset, -1 for latest{})", if starting { " or -2 for earliest" } else { "" }),
                ));
            }
            offsets.insert((topic.clone(), partition), offset);
        }
    }
    Ok(OffsetSpec::Specific(offsets))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.entry("kafka.bootstrap.servers".into())
            .or_insert_with(|| "b:9092".into());
        map
    }

    #[test]
    fn needs_exactly_one_topic_selection() {
        let err = SourceOptions::from_options(options(&[])).unwrap_err();
        assert!(err.message.contains("exactly one"));
        let err =
            SourceOptions::from_options(options(&[("subscribe", "a"), ("assign", "{\"a\":[0]}")]))
                .unwrap_err();
        assert!(err.message.contains("exactly one"));
    }

    #[test]
    fn ending_offsets_refuse_earliest() {
        let err = SourceOptions::from_options(options(&[
            ("subscribe", "a"),
            ("endingOffsets", "earliest"),
        ]))
        .unwrap_err();
        assert_eq!(err.key, "endingOffsets");
        let err = SourceOptions::from_options(options(&[
            ("subscribe", "a"),
            ("endingOffsets", r#"{"a":{"0":-2}}"#),
        ]))
        .unwrap_err();
        assert!(err.message.contains("-2"), "{}", err.message);
    }

    #[test]
    fn unknown_and_forbidden_keys_are_named() {
        let err =
            SourceOptions::from_options(options(&[("subscribe", "a"), ("startingOffset", "x")]))
                .unwrap_err();
        assert_eq!(err.key, "startingOffset");
        let err = SourceOptions::from_options(options(&[
            ("subscribe", "a"),
            ("kafka.auto.offset.reset", "earliest"),
        ]))
        .unwrap_err();
        assert_eq!(err.key, "kafka.auto.offset.reset");
    }

    #[test]
    fn pattern_matches_whole_names() {
        let parsed =
            SourceOptions::from_options(options(&[("subscribePattern", "tx-[0-9]+")])).unwrap();
        let TopicSelection::Pattern(regex) = parsed.topics else {
            panic!()
        };
        assert!(regex.is_match("tx-12"));
        assert!(!regex.is_match("tx-12-dead"));
    }
}
