//! A schema registry client for `format = "avro"`, on the source and the sink: the three calls of the
//! Confluent REST API Weir needs, with the schemas cached for the life of the pipeline (a registered schema
//! never changes under its id). Karapace and Confluent's registry both serve this API.
//!
//! - The deserializer fetches a writer schema by id the first time a record names one
//!   (`GET /schemas/ids/{id}`), and, when the pipeline file gives no reader schema, reads the subject's
//!   latest version at planning (`GET /subjects/{subject}/versions/latest`).
//! - The sink registers the schema of its rows under its subject (`POST /subjects/{subject}/versions`),
//!   which answers the existing id when the schema is already there.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;

/// How long one registry request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A schema as the registry returns it.
#[derive(Debug, Deserialize)]
struct RegisteredSchema {
    /// The Avro schema, as JSON text.
    schema: String,
    /// `AVRO` when absent; `JSON` and `PROTOBUF` are not Avro.
    #[serde(default, rename = "schemaType")]
    schema_type: Option<String>,
    /// The schema's id (in a subject version's answer).
    #[serde(default)]
    id: Option<u32>,
}

/// The registry at one URL, with the writer schemas seen so far.
pub(crate) struct SchemaRegistry {
    url: String,
    /// `Basic ...` when the URL carried `user:password@`.
    authorization: Option<String>,
    agent: ureq::Agent,
    writers: Mutex<HashMap<u32, String>>,
}

impl SchemaRegistry {
    /// A client for the registry at `url` (e.g. `http://localhost:8081`). Credentials in the URL
    /// (`https://user:password@host`, as Confluent Cloud's API key and secret) are sent as HTTP basic
    /// authentication, and left out of the URL shown in plans and errors.
    pub(crate) fn new(url: &str) -> SchemaRegistry {
        use base64::Engine;
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .new_agent();
        let (url, user_info) = split_user_info(url.trim_end_matches('/'));
        let authorization = user_info.map(|user_info| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(user_info);
            format!("Basic {encoded}")
        });
        SchemaRegistry {
            url,
            authorization,
            agent,
            writers: Mutex::new(HashMap::new()),
        }
    }

    /// The registry's URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The writer schema registered under `id`, fetched once.
    pub(crate) fn writer_schema(&self, id: u32) -> Result<String, String> {
        if let Some(schema) = self.lock().get(&id) {
            return Ok(schema.clone());
        }
        let fetched = self.get(&format!("/schemas/ids/{id}"))?;
        self.lock().insert(id, fetched.schema.clone());
        Ok(fetched.schema)
    }

    /// Every writer schema fetched so far, by id.
    pub(crate) fn known_writers(&self) -> Vec<(u32, String)> {
        let mut known: Vec<_> = self.lock().iter().map(|(id, s)| (*id, s.clone())).collect();
        known.sort_by_key(|(id, _)| *id);
        known
    }

    /// The latest schema of `subject`, and its id.
    pub(crate) fn latest(&self, subject: &str) -> Result<(u32, String), String> {
        let latest = self.get(&format!("/subjects/{subject}/versions/latest"))?;
        let id = latest
            .id
            .ok_or_else(|| format!("the registry's answer for subject {subject:?} has no id"))?;
        self.lock().insert(id, latest.schema.clone());
        Ok((id, latest.schema))
    }

    /// Registers `schema` (Avro JSON) under `subject`; the registry answers its id, the existing one when
    /// the subject already holds the schema.
    pub(crate) fn register(&self, subject: &str, schema: &str) -> Result<u32, String> {
        #[derive(Deserialize)]
        struct Registered {
            id: u32,
        }
        let url = format!("{}/subjects/{subject}/versions", self.url);
        let request = self
            .agent
            .post(&url)
            .header("Content-Type", "application/vnd.schemaregistry.v1+json");
        let registered: Registered = self
            .authorized(request)
            .send_json(serde_json::json!({ "schema": schema }))
            .and_then(|mut response| response.body_mut().read_json())
            .map_err(|e| format!("schema registry {url}: registering the sink's schema: {e}"))?;
        self.lock().insert(registered.id, schema.to_string());
        Ok(registered.id)
    }

    /// `request` with the basic authentication header, when the URL carried credentials.
    fn authorized<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.authorization {
            Some(authorization) => request.header("Authorization", authorization),
            None => request,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, String>> {
        self.writers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `GET path` on the registry, as an Avro schema.
    fn get(&self, path: &str) -> Result<RegisteredSchema, String> {
        let url = format!("{}{path}", self.url);
        let request = self
            .agent
            .get(&url)
            .header("Accept", "application/vnd.schemaregistry.v1+json");
        let schema: RegisteredSchema = self
            .authorized(request)
            .call()
            .and_then(|mut response| response.body_mut().read_json())
            .map_err(|e| format!("schema registry {url}: {e}"))?;
        match schema.schema_type.as_deref() {
            None | Some("AVRO") => Ok(schema),
            Some(other) => Err(format!("schema registry {url}: a {other} schema, not Avro")),
        }
    }
}

/// `scheme://user:password@host...` as the URL without the credentials, and the credentials.
fn split_user_info(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rsplit_once('@') {
        Some((user_info, host)) => (
            format!("{scheme}://{host}{}", &rest[host_end..]),
            Some(user_info.to_string()),
        ),
        None => (url.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url_for_the_authorization_header() {
        let registry = SchemaRegistry::new("https://key:s3cret@registry.example.com/prefix/");
        assert_eq!(registry.url(), "https://registry.example.com/prefix");
        assert_eq!(
            registry.authorization.as_deref(),
            Some("Basic a2V5OnMzY3JldA==")
        );
        let plain = SchemaRegistry::new("http://localhost:8081");
        assert_eq!(plain.url(), "http://localhost:8081");
        assert_eq!(plain.authorization, None);
    }
}
