//! A schema registry for the Avro tests: the two reads of the Confluent REST API that Weir makes, over
//! schemas the test registers up front.
//!
//! It stands in for a real registry because none can be installed here: Karapace is not on PyPI ("no
//! matching distribution"), and Confluent's and Apicurio's registries are JVM services from their own
//! download sites. The records themselves are written by the `apache-avro` crate, an Avro implementation
//! independent of the arrow-avro decoder Weir reads them with.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

/// A registry serving `subjects` (name, its schema versions in order); ids count from 1 in the order
/// given, subject by subject.
pub struct TestRegistry {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Each schema's id, in the order given.
    pub ids: Vec<u32>,
}

impl TestRegistry {
    /// Starts the registry on a free port, for the life of the test process.
    pub fn start(subjects: &[(&str, Vec<String>)]) -> TestRegistry {
        let mut schemas = Vec::new();
        let mut latest = Vec::new();
        for (subject, versions) in subjects {
            for schema in versions {
                schemas.push(schema.clone());
            }
            latest.push((subject.to_string(), schemas.len() as u32));
        }
        let ids = (1..=schemas.len() as u32).collect();
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the test registry");
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream, &schemas, &latest);
            }
        });
        TestRegistry { url, ids }
    }
}

/// Answers one request (`Connection: close`).
fn answer(
    mut stream: TcpStream,
    schemas: &[String],
    latest: &[(String, u32)],
) -> std::io::Result<()> {
    let mut request_line = String::new();
    let mut reader = BufReader::new(stream.try_clone()?);
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    let path = request_line.split(' ').nth(1).unwrap_or_default();
    let schema_json = |id: u32| -> Option<String> {
        let schema = schemas.get(id.checked_sub(1)? as usize)?;
        Some(serde_json::json!({ "id": id, "schema": schema }).to_string())
    };
    let body = if let Some(id) = path.strip_prefix("/schemas/ids/") {
        id.parse().ok().and_then(schema_json)
    } else if let Some(rest) = path.strip_prefix("/subjects/") {
        let subject = rest.strip_suffix("/versions/latest").unwrap_or_default();
        latest
            .iter()
            .find(|(name, _)| name == subject)
            .and_then(|(_, id)| schema_json(*id))
    } else {
        None
    };
    let (status, body) = match body {
        Some(body) => ("200 OK", body),
        None => (
            "404 Not Found",
            r#"{"error_code":40403,"message":"Schema not found"}"#.to_string(),
        ),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
