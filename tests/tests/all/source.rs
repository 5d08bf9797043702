//! Source semantics on a real broker: startingOffsets / endingOffsets / assign / subscribePattern,
//! maxOffsetsPerTrigger, and headers through to the sink.

use weir_tests::*;

/// Produces `p{partition}-{i}` (as key and value) for i in 0..n to each partition.
fn fill(broker: &Broker, topic: &str, partitions: i32, n: usize) {
    broker.create_topic(topic, partitions);
    for p in 0..partitions {
        let values: Vec<String> = (0..n).map(|i| format!("p{p}-{i}")).collect();
        produce_to(&broker.bootstrap, topic, p, &values, &[]);
    }
}

/// A pipeline that copies records (as strings) from `source` options to topic `out`, keeping partitions.
fn copy_pipeline(source: &str, sink_format: &str) -> String {
    format!(
        r#"
[source]
kafka.bootstrap.servers = "${{BROKER}}"
{source}
[deserializer]
format = "string"
[sink]
kafka.bootstrap.servers = "${{BROKER}}"
topic = "out"
format = "{sink_format}"
"#
    )
}

async fn copy(broker: &Broker, source: &str) -> anyhow::Result<(weir::RunSummary, Vec<String>)> {
    let dir = scratch_dir();
    let spec = pipeline_spec(&dir, &broker.bootstrap, &copy_pipeline(source, "json"))?;
    let summary = run_pipeline(spec).await?;
    let mut keys: Vec<String> = read_topic(&broker.bootstrap, "out")?
        .into_iter()
        .map(|r| String::from_utf8(r.key.unwrap_or_default()).unwrap())
        .collect();
    keys.sort();
    Ok((summary, keys))
}

fn keys(partition: i32, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("p{partition}-{i}")).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn starting_and_ending_offsets_as_json() {
    let broker = tansu();
    fill(&broker, "t", 2, 10);
    broker.create_topic("out", 2);
    let (summary, got) = copy(
        &broker,
        r#"subscribe = "t"
startingOffsets = '{"t":{"0":3,"1":-2}}'
endingOffsets = '{"t":{"0":7,"1":-1}}'"#,
    )
    .await
    .unwrap();
    let mut expected = keys(0, 3..7);
    expected.extend(keys(1, 0..10));
    assert_eq!(got, sorted(expected));
    assert_eq!(summary.input_rows, 14);
}

#[tokio::test(flavor = "multi_thread")]
async fn assign_reads_only_the_given_partitions_and_latest_reads_nothing() {
    let broker = tansu();
    fill(&broker, "t", 2, 5);
    broker.create_topic("out", 2);
    let (_, got) = copy(
        &broker,
        "assign = '{\"t\":[1]}'\nstartingOffsets = \"earliest\"\nendingOffsets = \"latest\"",
    )
    .await
    .unwrap();
    assert_eq!(got, keys(1, 0..5));

    let (summary, _) = copy(
        &broker,
        "subscribe = \"t\"\nstartingOffsets = \"latest\"\nendingOffsets = \"latest\"",
    )
    .await
    .unwrap();
    assert_eq!(summary.input_rows, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribe_pattern_matches_whole_topic_names() {
    let broker = tansu();
    fill(&broker, "pat-a", 1, 3);
    fill(&broker, "pat-b", 1, 2);
    fill(&broker, "pat-a-other", 1, 4);
    fill(&broker, "other", 1, 4);
    broker.create_topic("out", 1);
    let (summary, _) =
        copy(&broker, "subscribePattern = \"pat-[a-z]\"\nstartingOffsets = \"earliest\"\nendingOffsets = \"latest\"")
            .await
            .unwrap();
    assert_eq!(summary.input_rows, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn max_offsets_per_trigger_splits_batches() {
    let broker = tansu();
    fill(&broker, "t", 1, 20);
    broker.create_topic("out", 1);
    let (summary, got) = copy(
        &broker,
        "subscribe = \"t\"\nstartingOffsets = \"earliest\"\nendingOffsets = \"latest\"\nmaxOffsetsPerTrigger = 5",
    )
    .await
    .unwrap();
    assert_eq!(got.len(), 20);
    assert_eq!(summary.batches, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_round_trip_through_the_sink() {
    let broker = tansu();
    broker.create_topic("t", 1);
    broker.create_topic("out", 1);
    let headers = [
        ("trace", Some("abc")),
        ("empty", None),
        ("trace", Some("second")),
    ];
    produce_to(
        &broker.bootstrap,
        "t",
        0,
        &["v1".into(), "v2".into()],
        &headers,
    );
    let dir = scratch_dir();
    let source = "subscribe = \"t\"\nstartingOffsets = \"earliest\"\nendingOffsets = \"latest\"\nincludeHeaders = true";
    let spec = pipeline_spec(&dir, &broker.bootstrap, &copy_pipeline(source, "kafka")).unwrap();
    run_pipeline(spec).await.unwrap();
    let out = read_topic(&broker.bootstrap, "out").unwrap();
    assert_eq!(values(&out), ["v1", "v2"]);
    let expected: Vec<(String, Option<Vec<u8>>)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.map(|v| v.as_bytes().to_vec())))
        .collect();
    for record in out {
        assert_eq!(record.headers, expected);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_topics_and_offsets_are_named() {
    let broker = tansu();
    fill(&broker, "t", 2, 1);
    broker.create_topic("out", 1);
    let error = copy(
        &broker,
        "subscribe = \"missing\"\nendingOffsets = \"latest\"",
    )
    .await
    .unwrap_err();
    assert!(
        format!("{error:#}").contains("topic \"missing\" does not exist"),
        "{error:#}"
    );
    let error = copy(
        &broker,
        "subscribe = \"t\"\nstartingOffsets = '{\"t\":{\"0\":0}}'",
    )
    .await
    .unwrap_err();
    assert!(
        format!("{error:#}").contains("has no offset for t-1"),
        "{error:#}"
    );
    let error = copy(&broker, "assign = '{\"t\":[7]}'").await.unwrap_err();
    assert!(
        format!("{error:#}").contains("partition t-7 does not exist"),
        "{error:#}"
    );
}

/// An unbounded run with `subscribePattern` picks up a topic created after it started (Spark: new topics
/// and partitions are read from their beginning), triggers on `processingTime`, and stops on request.
#[tokio::test(flavor = "multi_thread")]
async fn a_running_query_picks_up_new_topics_and_stops_on_request() {
    let broker = tansu();
    fill(&broker, "live-a", 1, 3);
    broker.create_topic("out", 1);
    let dir = scratch_dir();
    let source = "subscribePattern = \"live-.*\"\nstartingOffsets = \"earliest\"";
    let text = copy_pipeline(source, "json") + "\n[trigger]\nprocessingTime = \"200ms\"\n";
    let pipeline =
        weir::Pipeline::new(pipeline_spec(&dir, &broker.bootstrap, &text).unwrap()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(pipeline.run(async {
        let _ = stopped.await;
    }));

    let wait_for = |count: usize| {
        let bootstrap = broker.bootstrap.clone();
        async move {
            for _ in 0..300 {
                if read_topic(&bootstrap, "out").unwrap().len() >= count {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("fewer than {count} records reached `out` in 30 s");
        }
    };
    wait_for(3).await;
    fill(&broker, "live-b", 1, 4);
    wait_for(7).await;

    stop.send(()).unwrap();
    let summary = tokio::time::timeout(std::time::Duration::from_secs(30), run)
        .await
        .expect("the query stops on request")
        .unwrap()
        .unwrap();
    assert_eq!(summary.input_rows, 7);
    let mut keys: Vec<String> = read_topic(&broker.bootstrap, "out")
        .unwrap()
        .into_iter()
        .map(|r| String::from_utf8(r.key.unwrap()).unwrap())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        ["p0-0", "p0-0", "p0-1", "p0-1", "p0-2", "p0-2", "p0-3"]
    );
}

/// librdkafka's mock cluster keeps 5 MiB per partition and drops the oldest records beyond it, which is
/// exactly the data loss `failOnDataLoss` is about: offsets asked for that are gone from the broker.
#[tokio::test(flavor = "multi_thread")]
async fn fail_on_data_loss_fails_or_skips_ahead() {
    let broker = mock_cluster();
    broker.create_topic("t", 1);
    broker.create_topic("out", 1);
    let big = "x".repeat(1000);
    let values: Vec<String> = (0..6000).map(|i| format!("{i}-{big}")).collect();
    produce_to(&broker.bootstrap, "t", 0, &values, &[]);
    let source =
        "subscribe = \"t\"\nstartingOffsets = '{\"t\":{\"0\":0}}'\nendingOffsets = \"latest\"";
    let error = copy(&broker, source).await.unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains("of t-0 are no longer available on the broker"),
        "{message}"
    );
    assert!(message.contains("failOnDataLoss = false"), "{message}");

    let (summary, _) = copy(&broker, &format!("{source}\nfailOnDataLoss = false"))
        .await
        .unwrap();
    assert!(
        summary.input_rows > 0 && summary.input_rows < 6000,
        "{}",
        summary.input_rows
    );
}

/// A copy of topic `t` with a checkpoint in `dir`, the given trigger and at most 10 records a batch.
fn scheduled_copy(dir: &std::path::Path, trigger: &str) -> String {
    format!(
        "checkpointLocation = \"{}\"\n{}\n[trigger]\n{trigger}\n",
        dir.join("checkpoint").display(),
        copy_pipeline(
            "subscribe = \"t\"\nstartingOffsets = \"earliest\"\nmaxOffsetsPerTrigger = 10",
            "json"
        )
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn available_now_reads_what_is_there_at_start_in_capped_batches_then_stops_and_resumes() {
    let broker = tansu();
    fill(&broker, "t", 2, 30);
    broker.create_topic("out", 2);
    let dir = scratch_dir();
    let text = scheduled_copy(&dir, "availableNow = true");
    let first = run_pipeline(pipeline_spec(&dir, &broker.bootstrap, &text).unwrap())
        .await
        .unwrap();
    assert_eq!(first.input_rows, 60);
    assert!(
        first.batches >= 6,
        "{} batches of at most 10",
        first.batches
    );

    // The next scheduled run reads only what came since.
    let later: Vec<String> = (30..35).map(|i| format!("p0-{i}")).collect();
    produce_to(&broker.bootstrap, "t", 0, &later, &[]);
    let second = run_pipeline(pipeline_spec(&dir, &broker.bootstrap, &text).unwrap())
        .await
        .unwrap();
    assert_eq!(second.input_rows, 5);
    let got: Vec<String> = read_topic(&broker.bootstrap, "out")
        .unwrap()
        .into_iter()
        .map(|r| String::from_utf8(r.key.unwrap_or_default()).unwrap())
        .collect();
    let mut expected = keys(0, 0..35);
    expected.extend(keys(1, 0..30));
    assert_eq!(sorted(got), sorted(expected));
}

#[tokio::test(flavor = "multi_thread")]
async fn once_reads_everything_in_one_batch_whatever_max_offsets_says() {
    let broker = tansu();
    fill(&broker, "t", 2, 500);
    broker.create_topic("out", 2);
    let dir = scratch_dir();
    let text = scheduled_copy(&dir, "once = true");
    let summary = run_pipeline(pipeline_spec(&dir, &broker.bootstrap, &text).unwrap())
        .await
        .unwrap();
    assert_eq!((summary.batches, summary.input_rows), (1, 1000));
    let again = run_pipeline(pipeline_spec(&dir, &broker.bootstrap, &text).unwrap())
        .await
        .unwrap();
    assert_eq!((again.batches, again.input_rows), (0, 0));
}
