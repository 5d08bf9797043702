//! Brokers that demand TLS, SASL or both, for the tests of Weir's secured connections.
//!
//! tansu 0.6.0 can do neither for us. Its `--cert` option is parsed, but the broker never uses the TLS
//! acceptor it builds; and with `--authentication` it offers only SCRAM, whose credentials its one storage
//! engine (memory/S3) does not keep (upserting a user is a no-op, looking one up finds nothing), so every
//! login fails with "unknown-user". So the secured broker is tansu behind fronts that do the checking:
//! - **TLS**: stunnel (Debian's `stunnel4`) terminates TLS with a certificate signed by a test CA;
//! - **SASL**: [`SaslGate`] answers the SASL handshake itself (PLAIN), refuses a wrong password with
//!   `SASL_AUTHENTICATION_FAILED` as a Kafka broker does, and then passes the connection through.
//!
//! tansu advertises the outermost front, so every connection a client makes, bootstrap or not, goes
//! through the same checks. Weir's side is real: librdkafka's own TLS and SASL clients, configured only
//! through the pipeline file's `kafka.*` keys.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::{free_port, tansu_advertising, Broker};

/// Kafka's error code for a failed SASL authentication.
const SASL_AUTHENTICATION_FAILED: i16 = 58;
/// Kafka's error code for a SASL mechanism the broker does not offer.
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;

/// PEM files for the TLS tests: a CA, the broker's certificate and key (for `localhost` and `127.0.0.1`)
/// signed by it, and a second CA that signed nothing.
pub struct TestCertificates {
    /// The CA that signed the broker's certificate.
    pub ca: PathBuf,
    /// A CA unrelated to the broker.
    pub wrong_ca: PathBuf,
    /// The broker's certificate.
    pub certificate: PathBuf,
    /// The broker's private key.
    pub key: PathBuf,
}

impl TestCertificates {
    /// Generates the certificates into `dir`.
    pub fn generate(dir: &Path) -> anyhow::Result<TestCertificates> {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let ca_params = |name: &str| -> anyhow::Result<CertificateParams> {
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            Ok(params)
        };
        let ca = CertifiedIssuer::self_signed(ca_params("weir test CA")?, KeyPair::generate()?)?;
        let wrong_ca =
            CertifiedIssuer::self_signed(ca_params("unrelated CA")?, KeyPair::generate()?)?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let certificate = params.signed_by(&key, &ca)?;
        let write = |name: &str, pem: String| -> anyhow::Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, pem)?;
            Ok(path)
        };
        Ok(TestCertificates {
            ca: write("ca.pem", ca.pem())?,
            wrong_ca: write("wrong-ca.pem", wrong_ca.pem())?,
            certificate: write("broker.pem", certificate.pem())?,
            key: write("broker.key", key.serialize_pem())?,
        })
    }
}

/// What the secured broker demands.
pub struct Security<'a> {
    /// TLS with these certificates.
    pub tls: Option<&'a TestCertificates>,
    /// SASL PLAIN with this user name and password.
    pub sasl: Option<(&'a str, &'a str)>,
}

/// Starts tansu behind the fronts `security` asks for; `bootstrap` is the outermost front.
pub fn secured_tansu(security: Security<'_>, dir: &Path) -> Broker {
    let front = free_port();
    let mut broker = tansu_advertising(&format!("127.0.0.1:{front}"));
    let tansu_address = broker.bootstrap.clone();
    let gate_address = match security.sasl {
        Some((user, password)) => {
            let port = if security.tls.is_some() {
                free_port()
            } else {
                front
            };
            SaslGate::start(port, &tansu_address, user, password);
            format!("127.0.0.1:{port}")
        }
        None => tansu_address,
    };
    if let Some(certificates) = security.tls {
        let stunnel = stunnel(front, &gate_address, certificates, dir);
        broker.keep_running(stunnel);
    }
    broker.bootstrap = format!("127.0.0.1:{front}");
    broker.client_options = security.client_options();
    wait_for_port(&broker.bootstrap);
    broker
}

impl Security<'_> {
    /// The `kafka.*` options (without the prefix) a client needs to pass the fronts.
    pub fn client_options(&self) -> Vec<(String, String)> {
        let protocol = match (self.tls.is_some(), self.sasl.is_some()) {
            (false, false) => "PLAINTEXT",
            (true, false) => "SSL",
            (false, true) => "SASL_PLAINTEXT",
            (true, true) => "SASL_SSL",
        };
        let mut options = vec![("security.protocol", protocol.to_string())];
        if let Some(certificates) = self.tls {
            options.push(("ssl.ca.location", certificates.ca.display().to_string()));
        }
        if let Some((user, password)) = self.sasl {
            options.push(("sasl.mechanism", "PLAIN".to_string()));
            options.push(("sasl.username", user.to_string()));
            options.push(("sasl.password", password.to_string()));
        }
        options
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }
}

/// stunnel accepting TLS on `port` and passing the plaintext on to `upstream`.
fn stunnel(port: u16, upstream: &str, certificates: &TestCertificates, dir: &Path) -> Child {
    let config = dir.join(format!("stunnel-{port}.conf"));
    std::fs::write(
        &config,
        format!(
            "foreground = yes\npid =\n[kafka]\naccept = 127.0.0.1:{port}\nconnect = {upstream}\n\
             cert = {}\nkey = {}\n",
            certificates.certificate.display(),
            certificates.key.display()
        ),
    )
    .expect("writing the stunnel configuration");
    Command::new("stunnel")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting stunnel (Debian's stunnel4; `bash scripts/test.sh` installs it)")
}

fn wait_for_port(address: &str) {
    for _ in 0..200 {
        if TcpStream::connect(address).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nothing listens on {address}");
}

/// A SASL PLAIN front for a broker without SASL: it relays ApiVersions, answers SaslHandshake and
/// SaslAuthenticate itself, closes the connection on any other request before a successful login (as
/// Kafka does), and after one passes the bytes through both ways.
pub struct SaslGate;

impl SaslGate {
    /// Listens on 127.0.0.1:`port` for the life of the test process, in front of `upstream`.
    pub fn start(port: u16, upstream: &str, user: &str, password: &str) {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("binding the SASL gate");
        let (upstream, user, password) =
            (upstream.to_string(), user.to_string(), password.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, user, password) = (upstream.clone(), user.clone(), password.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, &upstream, &user, &password);
                });
            }
        });
    }
}

/// One client connection through the gate.
fn serve(mut client: TcpStream, upstream: &str, user: &str, password: &str) -> anyhow::Result<()> {
    let mut broker = TcpStream::connect(upstream)?;
    loop {
        let frame = read_frame(&mut client)?;
        let mut body = Bytes::from(frame.clone());
        let api_key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let key = ApiKey::try_from(api_key).map_err(|_| anyhow::anyhow!("unknown API key"))?;
        let header = RequestHeader::decode(&mut body, key.request_header_version(version))?;
        let respond = |client: &mut TcpStream,
                       encode: &dyn Fn(&mut BytesMut) -> anyhow::Result<()>| {
            let mut out = BytesMut::new();
            ResponseHeader::default()
                .with_correlation_id(header.correlation_id)
                .encode(&mut out, key.response_header_version(version))?;
            encode(&mut out)?;
            write_frame(client, &out)
        };
        match key {
            ApiKey::ApiVersions => {
                write_frame(&mut broker, &frame)?;
                let reply = read_frame(&mut broker)?;
                write_frame(&mut client, &reply)?;
            }
            ApiKey::SaslHandshake => {
                let request = SaslHandshakeRequest::decode(&mut body, version)?;
                let error = if request.mechanism.as_str() == "PLAIN" {
                    0
                } else {
                    UNSUPPORTED_SASL_MECHANISM
                };
                respond(&mut client, &|out| {
                    SaslHandshakeResponse::default()
                        .with_error_code(error)
                        .with_mechanisms(vec![StrBytes::from_static_str("PLAIN")])
                        .encode(out, version)
                })?;
            }
            ApiKey::SaslAuthenticate => {
                let request = SaslAuthenticateRequest::decode(&mut body, version)?;
                // PLAIN's message: [authzid] NUL authcid NUL password (RFC 4616).
                let mut parts = request.auth_bytes.split(|b| *b == 0).skip(1);
                let accepted = parts.next() == Some(user.as_bytes())
                    && parts.next() == Some(password.as_bytes());
                let (error, message) = if accepted {
                    (0, None)
                } else {
                    (
                        SASL_AUTHENTICATION_FAILED,
                        Some(StrBytes::from_static_str(
                            "Authentication failed: Invalid username or password",
                        )),
                    )
                };
                respond(&mut client, &|out| {
                    SaslAuthenticateResponse::default()
                        .with_error_code(error)
                        .with_error_message(message.clone())
                        .encode(out, version)
                })?;
                if !accepted {
                    return Ok(());
                }
                return pass_through(client, broker);
            }
            _ => return Ok(()),
        }
    }
}

/// Copies bytes both ways until either side closes.
fn pass_through(client: TcpStream, broker: TcpStream) -> anyhow::Result<()> {
    let (mut client_in, mut broker_out) = (client.try_clone()?, broker.try_clone()?);
    let upstream = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut broker_out);
        let _ = broker_out.shutdown(std::net::Shutdown::Both);
    });
    let (mut broker_in, mut client_out) = (broker, client);
    let _ = std::io::copy(&mut broker_in, &mut client_out);
    let _ = client_out.shutdown(std::net::Shutdown::Both);
    let _ = upstream.join();
    Ok(())
}

fn read_frame(stream: &mut TcpStream) -> anyhow::Result<Vec<u8>> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut frame)?;
    Ok(frame)
}

fn write_frame(stream: &mut TcpStream, frame: &[u8]) -> anyhow::Result<()> {
    stream.write_all(&(frame.len() as i32).to_be_bytes())?;
    stream.write_all(frame)?;
    Ok(())
}
