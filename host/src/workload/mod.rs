//! The reference transaction workload (`shared/bench/fraud-window.md`): the same records in every language.
//!
//! A 64-bit LCG drives every field, so a test, the demo and the benchmark can regenerate the exact input and
//! compute the exact expected output without storing either. `nest.rs` does the same for the Nest camera
//! examples.

mod nest;

pub use nest::*;

/// One generated transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// `"name" + user`.
    pub name: String,
    /// `"sur" + user % 97`.
    pub surname: String,
    /// A string with two decimals, as the seeds send it.
    pub amount: String,
    /// A string, as the seeds send it.
    pub delta_t: String,
    /// 1 for about 10% of the records.
    pub flag: i32,
    /// Event time in ms: one record per ms, up to 2 s out of order.
    pub ts: i64,
}

impl Transaction {
    /// The record key: `name + surname`.
    pub fn key(&self) -> String {
        format!("{}{}", self.name, self.surname)
    }

    /// The record value: compact JSON with the keys in the workload's order.
    pub fn value(&self) -> String {
        format!(
            r#"{{"name":"{}","surname":"{}","amount":"{}","delta_t":"{}","flag":{},"ts":{}}}"#,
            self.name, self.surname, self.amount, self.delta_t, self.flag, self.ts
        )
    }

    /// What `examples/fraud` writes to `results` for this record: `None` unless it is flagged.
    pub fn fraud_result(&self) -> Option<String> {
        (self.flag == 1).then(|| {
            format!(
                r#"{{"id":"{}{}","name":"{}","surname":"{}","amount":"{}","delta_t":"{}","flag":1,"ts":{}}}"#,
                self.name, self.surname, self.name, self.surname, self.amount, self.delta_t, self.ts
            )
        })
    }
}

/// The first `n` transactions of the workload.
///
/// ```
/// let first = weir::internal::workload::transactions(1).next().unwrap();
/// assert!(first.name.starts_with("name"));
/// assert_eq!(weir::internal::workload::transactions(1000).count(), 1000);
/// ```
pub fn transactions(n: u64) -> impl Iterator<Item = Transaction> {
    let mut x: u64 = 42;
    (0..n).map(move |i| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let r = x >> 33;
        let user = r % 10000;
        let cents = r % 100000;
        Transaction {
            name: format!("name{user}"),
            surname: format!("sur{}", user % 97),
            amount: format!("{}.{:02}", cents / 100, cents % 100),
            delta_t: (r % 3600).to_string(),
            flag: i32::from((r >> 8).is_multiple_of(10)),
            ts: 1_700_000_000_000 + i as i64 - ((r >> 16) % 2000) as i64,
        }
    })
}

/// Event time of the first record.
pub const BASE_TS: i64 = 1_700_000_000_000;
/// Partitions of topic `tx`.
pub const PARTITIONS: i32 = 4;
/// The tumbling window of the job, in ms.
pub const WINDOW_MS: i64 = 10_000;

/// The closing record of each partition: `name = "close"`, `surname = partition`, `flag = 0` and an event
/// time past every window, so the watermark of every partition closes every window. Returns
/// (partition, record).
pub fn closing_records(n: u64) -> Vec<(i32, Transaction)> {
    (0..PARTITIONS)
        .map(|partition| {
            let tx = Transaction {
                name: "close".into(),
                surname: partition.to_string(),
                amount: "0.00".into(),
                delta_t: "0".into(),
                flag: 0,
                ts: BASE_TS + n as i64 + 60_000,
            };
            (partition, tx)
        })
        .collect()
}

/// One alert of the fraud-window job: a user with more than one flagged transaction in a window.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Alert {
    /// `name || surname`.
    pub id: String,
    /// Window start, ms.
    pub window_start: i64,
    /// Flagged transactions in the window.
    pub count: i64,
}

impl Alert {
    /// The alert as the job writes it: `{"id":…,"window_start":…,"window_end":…,"count":…}`.
    pub fn json(&self) -> String {
        format!(
            r#"{{"id":"{}","window_start":{},"window_end":{},"count":{}}}"#,
            self.id,
            self.window_start,
            self.window_start + WINDOW_MS,
            self.count
        )
    }
}

/// The exact alerts of the fraud-window job over the first `n` transactions, computed offline: count the
/// flagged transactions per (id, 10 s window) and keep the counts above one.
///
/// ```
/// let alerts = weir::internal::workload::fraud_window_alerts(100_000);
/// assert!(alerts.iter().all(|a| a.count > 1));
/// ```
pub fn fraud_window_alerts(n: u64) -> Vec<Alert> {
    let mut counts: std::collections::BTreeMap<(String, i64), i64> =
        std::collections::BTreeMap::new();
    for tx in transactions(n).filter(|t| t.flag == 1) {
        let start = tx.ts - tx.ts.rem_euclid(WINDOW_MS);
        *counts.entry((tx.key(), start)).or_default() += 1;
    }
    counts
        .into_iter()
        .filter(|(_, count)| *count > 1)
        .map(|((id, window_start), count)| Alert {
            id,
            window_start,
            count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's formulas, evaluated independently with u128 arithmetic.
    #[test]
    fn matches_the_spec_formulas() {
        let mut x: u128 = 42;
        for (i, tx) in transactions(500).enumerate() {
            x = (x * 6364136223846793005 + 1442695040888963407) % (1u128 << 64);
            let r = (x >> 33) as u64;
            assert_eq!(tx.name, format!("name{}", r % 10000));
            assert_eq!(tx.flag == 1, (r >> 8).is_multiple_of(10));
            let amount: f64 = tx.amount.parse().unwrap();
            assert!((amount - (r % 100000) as f64 / 100.0).abs() < 1e-9);
            assert_eq!(
                tx.ts,
                1_700_000_000_000 + i as i64 - ((r >> 16) % 2000) as i64
            );
        }
    }

    #[test]
    fn about_ten_percent_are_flagged() {
        let flagged = transactions(100_000).filter(|t| t.flag == 1).count();
        assert!((9_000..11_000).contains(&flagged), "{flagged}");
    }
}
