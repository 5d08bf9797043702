//! One way to hand records to librdkafka and know they arrived, for every producer Weir has: the sink, the
//! demo's generator, the tests' and the benchmarks' inputs.
//!
//! librdkafka reports each record's fate later, in a delivery report, so a producer that only flushes
//! cannot tell a lost record from a delivered one. [`DeliveryFailures`] counts the failed reports; a
//! producer context keeps one. [`send_waiting`] retries a record while the local queue is full instead of
//! failing it, and [`flush_in_steps`] waits for the acknowledgements in 1 ms steps. [`CheckedProducer`]
//! puts the three together for inputs that must arrive whole.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, ToBytes};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::ClientContext;

/// How long a full local queue is served (delivery reports handled) before a record is offered again.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(10);

/// Failed deliveries since the last [`DeliveryFailures::take`], with the first reason.
#[derive(Default)]
pub(crate) struct DeliveryFailures {
    failed: AtomicU64,
    first: Mutex<Option<String>>,
}

impl DeliveryFailures {
    /// Counts one failed delivery; `reason` is kept if it is the first.
    pub(crate) fn record(&self, reason: impl FnOnce() -> String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(reason());
        }
    }

    /// How many deliveries failed since the last call, with the first reason; `None` when none did.
    pub(crate) fn take(&self) -> Option<(u64, String)> {
        let failed = self.failed.swap(0, Ordering::Relaxed);
        let first = self.first.lock().unwrap_or_else(|e| e.into_inner()).take();
        (failed > 0).then(|| (failed, first.unwrap_or_default()))
    }
}

/// Queues `record`, serving delivery reports while the local queue is full (a full queue means the broker
/// is slower than the producer, not that the record is bad); any other error is returned.
pub(crate) fn send_waiting<C, K, P>(
    producer: &BaseProducer<C>,
    mut record: BaseRecord<'_, K, P, C::DeliveryOpaque>,
) -> KafkaResult<()>
where
    C: ProducerContext,
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                record = returned;
                producer.poll(QUEUE_FULL_WAIT);
            }
            Err((error, _)) => return Err(error),
        }
    }
}

/// Waits until every queued record is acknowledged or failed, at most `timeout`.
///
/// Not `Producer::flush`: rdkafka 0.39 waits for acknowledgements in 100 ms polls that each run to their
/// end, so every flush took at least 100 ms (measured: 100 ms per batch with ~500 alerts acknowledged in a
/// few). Here the delivery reports are served in 1 ms steps.
pub(crate) fn flush_in_steps<C: ProducerContext>(
    producer: &BaseProducer<C>,
    timeout: Duration,
) -> KafkaResult<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match producer.flush(Duration::ZERO) {
            Ok(()) => return Ok(()),
            Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut))
                if Instant::now() < deadline =>
            {
                producer.poll(Duration::from_millis(1));
            }
            Err(error) => return Err(error),
        }
    }
}

/// A producer context that only counts failed deliveries.
#[derive(Default)]
struct DeliveryCheck(DeliveryFailures);

impl ClientContext for DeliveryCheck {}

impl ProducerContext for DeliveryCheck {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, message)) = result {
            use rdkafka::message::Message;
            self.0.record(|| {
                format!(
                    "{error} (topic {}, partition {})",
                    message.topic(),
                    message.partition()
                )
            });
        }
    }
}

/// A producer for records that must all arrive (the demo's input, the tests' and the benchmarks'
/// workloads): sends wait for room in the local queue, and [`CheckedProducer::finish`] fails unless the
/// broker acknowledged every record.
///
/// ```no_run
/// # fn main() -> anyhow::Result<()> {
/// use weir::internal::CheckedProducer;
/// let mut config = rdkafka::ClientConfig::new();
/// config.set("bootstrap.servers", "localhost:9092");
/// let mut producer = CheckedProducer::new(&config, "the demo's input")?;
/// producer.send(rdkafka::producer::BaseRecord::to("transactions").key("k").payload("v"))?;
/// producer.finish(std::time::Duration::from_secs(30))?;
/// # Ok(()) }
/// ```
pub struct CheckedProducer {
    producer: BaseProducer<DeliveryCheck>,
    what: String,
    sent: u64,
}

impl CheckedProducer {
    /// Creates the producer from `config`; `what` names the records in errors.
    pub fn new(config: &ClientConfig, what: &str) -> anyhow::Result<CheckedProducer> {
        let producer = config
            .create_with_context(DeliveryCheck::default())
            .with_context(|| format!("creating the producer of {what}"))?;
        Ok(CheckedProducer {
            producer,
            what: what.to_string(),
            sent: 0,
        })
    }

    /// Queues `record`, waiting while the local queue is full, and serves the delivery reports due.
    pub fn send<K, P>(&mut self, record: BaseRecord<'_, K, P>) -> anyhow::Result<()>
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        // The name is borrowed, not copied: this runs once per record.
        let topic = record.topic;
        send_waiting(&self.producer, record)
            .with_context(|| format!("producing {} to {topic}", self.what))?;
        self.producer.poll(Duration::ZERO);
        self.sent += 1;
        Ok(())
    }

    /// Waits up to `timeout` for every record to be acknowledged; fails if any was not. Returns how many
    /// records were sent.
    pub fn finish(self, timeout: Duration) -> anyhow::Result<u64> {
        flush_in_steps(&self.producer, timeout)
            .with_context(|| format!("waiting for the broker to acknowledge {}", self.what))?;
        if let Some((failed, first)) = self.producer.context().0.take() {
            anyhow::bail!(
                "{failed} of the {} records of {} were not delivered (the first error: {first})",
                self.sent,
                self.what
            );
        }
        Ok(self.sent)
    }
}
