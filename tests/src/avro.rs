//! Avro records of the reference transactions in the Confluent wire format, written with the `apache-avro`
//! crate (an implementation independent of the arrow-avro that Weir reads them with), for the Avro tests
//! and the JSON-against-Avro benchmark.

use apache_avro::types::{Record, Value};
pub use apache_avro::Schema;
use weir::internal::workload::Transaction;

/// The transaction schema; version 2 adds `channel` with a default, a compatible change.
pub fn transaction_schema(version: u32) -> String {
    let channel = if version == 2 {
        r#",{"name":"channel","type":"string","default":"web"}"#
    } else {
        ""
    };
    format!(
        r#"{{"type":"record","name":"Transaction","namespace":"weir.test","fields":[
            {{"name":"name","type":"string"}},{{"name":"surname","type":"string"}},
            {{"name":"amount","type":"string"}},{{"name":"delta_t","type":"string"}},
            {{"name":"flag","type":"int"}},{{"name":"ts","type":"long"}}{channel}]}}"#
    )
}

/// `tx` in the Confluent wire format: a zero byte, the schema id (big-endian), the Avro body.
pub fn framed(schema: &Schema, id: u32, tx: &Transaction, channel: Option<&str>) -> Vec<u8> {
    let mut record = Record::new(schema).unwrap();
    record.put("name", tx.name.as_str());
    record.put("surname", tx.surname.as_str());
    record.put("amount", tx.amount.as_str());
    record.put("delta_t", tx.delta_t.as_str());
    record.put("flag", tx.flag);
    record.put("ts", tx.ts);
    if let Some(channel) = channel {
        record.put("channel", channel);
    }
    let mut out = vec![0];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend(apache_avro::to_avro_datum(schema, Value::from(record)).unwrap());
    out
}
