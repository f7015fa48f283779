//! TLS on the listener (`TLS_CERT_FILE`, `TLS_KEY_FILE`), with ALPN offering h2 and http/1.1,
//! and mutual TLS (`TLS_CLIENT_CA_FILE`): certificates made for the test by rcgen, real
//! handshakes with reqwest (rustls) and tonic.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use e2e::{STARTUP_TIMEOUT, TempDir, TestApp, WAIT_TIMEOUT, run};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A test CA and what it signed, as PEM files in a temporary directory.
struct Pki {
    dir: TempDir,
    ca_pem: String,
    /// Client certificate and key, concatenated (what `reqwest::Identity::from_pem` reads).
    client_identity_pem: String,
    /// A certificate and key pair signed by another CA (not trusted by the server).
    stranger_identity_pem: String,
}

impl Pki {
    /// A CA; a server certificate for `localhost` and `127.0.0.1` and a client certificate it
    /// signed; a client certificate another CA signed.
    fn new() -> Self {
        let dir = TempDir::new();
        let (ca_pem, issuer) = ca("e2e test CA");
        let (server_cert, server_key) = leaf(
            &issuer,
            "e2e server",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = leaf(
            &issuer,
            "e2e client",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let (_, other_ca) = ca("another CA");
        let (stranger_cert, stranger_key) = leaf(
            &other_ca,
            "stranger",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let pki = Self {
            dir,
            ca_pem,
            client_identity_pem: format!("{client_cert}{client_key}"),
            stranger_identity_pem: format!("{stranger_cert}{stranger_key}"),
        };
        pki.write("ca.pem", &pki.ca_pem);
        pki.write("server.pem", &server_cert);
        pki.write("server.key", &server_key);
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, content: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, content).expect("write PEM file");
        path.display().to_string()
    }

    fn file(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

/// A self-signed CA: its certificate as PEM and its issuer.
fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).expect("self-sign the CA");
    (cert.pem(), Issuer::new(params, key))
}

/// A certificate for `names` signed by `issuer`: (certificate PEM, private key PEM).
fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    common_name: &str,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().expect("leaf key");
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names).expect("leaf params");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).expect("sign the leaf");
    (cert.pem(), key.serialize_pem())
}

/// How a test client talks HTTPS.
#[derive(Clone, Copy)]
enum Version {
    /// Whatever ALPN picks (h2 first).
    Negotiated,
    /// HTTP/1.1 only (ALPN http/1.1).
    Http1,
}

/// A reqwest client trusting only the test CA, resolving `localhost` to `addr`, presenting
/// `identity` (certificate and key PEM) when given.
fn https(pki: &Pki, addr: SocketAddr, version: Version, identity: Option<&str>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).expect("CA certificate");
    let mut builder = e2e::clients::builder()
        .no_proxy()
        .timeout(WAIT_TIMEOUT)
        .tls_certs_only([ca])
        .resolve("localhost", addr);
    if let Version::Http1 = version {
        builder = builder.http1_only();
    }
    if let Some(pem) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity"));
    }
    builder.build().expect("reqwest client")
}

fn ready_url(addr: SocketAddr) -> String {
    format!("https://localhost:{}/health/ready", addr.port())
}

/// Starts orchestrate with TLS from `pki` (and `extra` variables) and waits until
/// `GET /health/ready` answers 200 over HTTPS (presenting `identity`, when given).
async fn spawn_tls(pki: &Pki, extra: &[(&str, &str)], identity: Option<&str>) -> TestApp {
    let cert = pki.file("server.pem");
    let key = pki.file("server.key");
    let mut envs = vec![
        ("TLS_CERT_FILE", cert.as_str()),
        ("TLS_KEY_FILE", key.as_str()),
    ];
    envs.extend_from_slice(extra);
    let app = tokio::task::block_in_place(|| TestApp::start("orchestrate", &envs));
    let listening = tokio::task::block_in_place(|| {
        app.wait_for_log("listening on", |v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("listening on"))
        })
    });
    assert_eq!(listening["tls"], true, "{listening}");
    let client = https(pki, app.addr, Version::Negotiated, identity);
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        match client.get(ready_url(app.addr)).send().await {
            Ok(r) if r.status() == 200 => return app,
            other if Instant::now() >= deadline => {
                panic!(
                    "not ready over HTTPS within {STARTUP_TIMEOUT:?}: {other:?}\nlogs:\n{}",
                    app.logs().join("\n")
                )
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_answers_over_http2_negotiated_by_alpn() {
    let pki = Pki::new();
    let app = spawn_tls(&pki, &[], None).await;
    let r = https(&pki, app.addr, Version::Negotiated, None)
        .get(ready_url(app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "ALPN picked h2");
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_answers_over_http1_when_the_client_offers_only_http1() {
    let pki = Pki::new();
    let app = spawn_tls(&pki, &[], None).await;
    let r = https(&pki, app.addr, Version::Http1, None)
        .get(ready_url(app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_check_over_tls_is_serving() {
    let pki = Pki::new();
    let app = spawn_tls(&pki, &[], None).await;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    // The IP address in the URI; the certificate is checked against `localhost`.
    let channel = Endpoint::from_shared(format!("https://{}", app.addr))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(WAIT_TIMEOUT)
        .timeout(WAIT_TIMEOUT)
        .connect()
        .await
        .expect("gRPC over TLS");
    let r = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.status, ServingStatus::Serving as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_on_the_tls_port_gets_no_answer() {
    let pki = Pki::new();
    let app = spawn_tls(&pki, &[], None).await;
    let addr = app.addr;
    let r = tokio::task::spawn_blocking(move || e2e::http::get(addr, "/health/ready"))
        .await
        .unwrap();
    assert!(r.is_err(), "a cleartext request was answered: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_half_handshaken_tls_connections_are_closed_and_new_clients_served() {
    use std::io::{Read, Write};
    let pki = Pki::new();
    let app = spawn_tls(
        &pki,
        &[("MAX_CONNECTIONS", "2"), ("FIRST_REQUEST_TIMEOUT", "1s")],
        None,
    )
    .await;
    let addr = app.addr;
    let closed = tokio::task::spawn_blocking(move || {
        // One sends nothing; one starts a handshake (a ClientHello record header) and stalls.
        let silent = e2e::http::connect(addr).unwrap();
        let mut half = e2e::http::connect(addr).unwrap();
        half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).unwrap();
        [silent, half].map(|mut stream| {
            stream.set_read_timeout(Some(WAIT_TIMEOUT)).unwrap();
            let mut buf = [0u8; 1024];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => return true,
                    Ok(_) => {}
                    Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
                }
            }
        })
    })
    .await
    .unwrap();
    assert_eq!(closed, [true, true], "each stalled connection is closed");
    let client = https(&pki, addr, Version::Negotiated, None);
    let deadline = Instant::now() + WAIT_TIMEOUT;
    loop {
        match client.get(ready_url(addr)).send().await {
            Ok(r) if r.status() == 200 => break,
            other => assert!(Instant::now() < deadline, "locked out: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_a_client_without_a_certificate_and_serves_one_with() {
    let pki = Pki::new();
    let ca_file = pki.file("ca.pem");
    let with_cert = Some(pki.client_identity_pem.as_str());
    let app = spawn_tls(&pki, &[("TLS_CLIENT_CA_FILE", &ca_file)], with_cert).await;

    for version in [Version::Negotiated, Version::Http1] {
        let anonymous = https(&pki, app.addr, version, None)
            .get(ready_url(app.addr))
            .send()
            .await;
        assert!(
            anonymous.is_err(),
            "answered without a client certificate: {anonymous:?}"
        );

        let stranger = https(&pki, app.addr, version, Some(&pki.stranger_identity_pem))
            .get(ready_url(app.addr))
            .send()
            .await;
        assert!(
            stranger.is_err(),
            "answered a certificate of another CA: {stranger:?}"
        );

        let r = https(&pki, app.addr, version, with_cert)
            .get(ready_url(app.addr))
            .send()
            .await
            .expect("a client with a certificate the CA signed");
        assert_eq!(r.status(), 200);
    }
}

/// Runs orchestrate with TLS files that can't be used and returns its single stderr line.
fn tls_config_error(pki: &Pki, key_file: &str) -> String {
    let cert = pki.file("server.pem");
    let out = run(
        "orchestrate",
        &[],
        &[
            ("PORT", "0"),
            ("HOST", "127.0.0.1"),
            ("LOG_FORMAT", "json"),
            ("TLS_CERT_FILE", &cert),
            ("TLS_KEY_FILE", key_file),
        ],
        STARTUP_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("listening on"),
        "it must not serve: {stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one stderr line: {lines:?}");
    lines[0].to_owned()
}

#[test]
fn a_garbage_tls_key_file_exits_2_with_one_line_naming_it() {
    let pki = Pki::new();
    let garbage = pki.write("garbage.key", "this is not a PEM private key\n");
    let line = tls_config_error(&pki, &garbage);
    assert!(line.contains("TLS_KEY_FILE"), "{line}");
    assert!(line.contains(&garbage), "names the file: {line}");
}

#[test]
fn a_tls_key_that_does_not_match_the_certificate_exits_2_with_one_line_naming_it() {
    let pki = Pki::new();
    let other = KeyPair::generate().expect("key").serialize_pem();
    let other = pki.write("other.key", &other);
    let line = tls_config_error(&pki, &other);
    assert!(line.contains("TLS_KEY_FILE"), "{line}");
}
