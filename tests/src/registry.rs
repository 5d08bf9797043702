//! A schema registry for the Avro tests: the three calls of the Confluent REST API that Weir makes (a schema
//! by id, a subject's latest version, registering a schema), over schemas the test registers up front and
//! those Weir's sink registers.
//!
//! It stands in for a real registry because none can be installed here: Karapace is not on PyPI ("no
//! matching distribution"), and Confluent's and Apicurio's registries are JVM services from their own
//! download sites. The records themselves are written by the `apache-avro` crate and by confluent-kafka's
//! own `AvroSerializer`, both independent of the arrow-avro Weir reads them with.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// The schemas (id `i + 1` at index `i`) and each subject's latest id.
#[derive(Default)]
struct Registered {
    schemas: Vec<String>,
    latest: Vec<(String, u32)>,
}

impl Registered {
    /// Registers `schema` under `subject`: its existing id, or a new one.
    fn register(&mut self, subject: &str, schema: String) -> u32 {
        let id = match self.schemas.iter().position(|s| *s == schema) {
            Some(i) => i as u32 + 1,
            None => {
                self.schemas.push(schema);
                self.schemas.len() as u32
            }
        };
        self.latest.retain(|(name, _)| name != subject);
        self.latest.push((subject.to_string(), id));
        id
    }
}

/// A registry serving `subjects` (name, its schema versions in order); ids count from 1 in the order
/// given, subject by subject.
pub struct TestRegistry {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Each schema's id, in the order given.
    pub ids: Vec<u32>,
    registered: Arc<Mutex<Registered>>,
}

impl TestRegistry {
    /// Starts the registry on a free port, for the life of the test process.
    pub fn start(subjects: &[(&str, Vec<String>)]) -> TestRegistry {
        let mut registered = Registered::default();
        let mut ids = Vec::new();
        for (subject, versions) in subjects {
            for schema in versions {
                ids.push(registered.register(subject, schema.clone()));
            }
        }
        let registered = Arc::new(Mutex::new(registered));
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the test registry");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let serving = registered.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream, &serving);
            }
        });
        TestRegistry {
            url,
            ids,
            registered,
        }
    }

    /// The latest schema of `subject` and its id, e.g. one Weir's sink registered.
    pub fn latest(&self, subject: &str) -> Option<(u32, String)> {
        let registered = self.registered.lock().unwrap();
        let (_, id) = registered.latest.iter().find(|(name, _)| name == subject)?;
        Some((*id, registered.schemas[*id as usize - 1].clone()))
    }
}

/// Answers one request (`Connection: close`).
fn answer(mut stream: TcpStream, registered: &Mutex<Registered>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut parts = request_line.split(' ');
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let mut registered = registered.lock().unwrap();
    let schema_json = |registered: &Registered, id: u32| -> Option<String> {
        let schema = registered.schemas.get(id.checked_sub(1)? as usize)?;
        Some(serde_json::json!({ "id": id, "schema": schema }).to_string())
    };
    let subject = path.strip_prefix("/subjects/");
    let reply = match (method, path.strip_prefix("/schemas/ids/"), subject) {
        ("GET", Some(id), _) => id.parse().ok().and_then(|id| schema_json(&registered, id)),
        ("GET", None, Some(rest)) => {
            let subject = rest.strip_suffix("/versions/latest").unwrap_or_default();
            let id = registered
                .latest
                .iter()
                .find(|(name, _)| name == subject)
                .map(|(_, id)| *id);
            id.and_then(|id| schema_json(&registered, id))
        }
        ("POST", None, Some(rest)) => {
            let subject = rest.strip_suffix("/versions").unwrap_or_default();
            let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            request["schema"].as_str().map(|schema| {
                let id = registered.register(subject, schema.to_string());
                serde_json::json!({ "id": id }).to_string()
            })
        }
        _ => None,
    };
    let (status, reply) = match reply {
        Some(reply) => ("200 OK", reply),
        None => (
            "404 Not Found",
            r#"{"error_code":40403,"message":"Schema not found"}"#.to_string(),
        ),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    )
}
