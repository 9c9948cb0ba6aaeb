//! Test support: a real registry (Debian's docker-registry, distribution 2.8) started
//! per test, a token server, a scriptable fake registry, and images built in code.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use strata_registry::spec::{Descriptor, Digest, History, ImageConfig, Index, Manifest, MediaType, Platform};
use strata_registry::store::{Backend, MemoryStore};
use strata_registry::{Credentials, RegistryOptions};

/// Whether the registry binary is here (skips the test outside CI when it is not).
pub fn have_registry() -> bool {
    strata_testkit::require_tool("docker-registry")
}

/// Options for tests: no credentials file of the machine's, quick retries.
pub fn options(dir: &Path) -> RegistryOptions {
    RegistryOptions {
        auth_file: Some(dir.join("no-such-auth.json")),
        retries: 2,
        retry_delay: Duration::from_millis(20),
        ..Default::default()
    }
}

/// A free port on 127.0.0.1 (bound and released; the registry takes it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// How a test registry authenticates and serves.
pub enum Mode {
    /// Plain HTTP, anonymous.
    Plain,
    /// HTTPS with this certificate and key (PEM files), anonymous.
    Tls { cert: PathBuf, key: PathBuf },
    /// Plain HTTP with htpasswd basic auth (bcrypt file).
    Htpasswd { file: PathBuf },
    /// Plain HTTP with bearer tokens from `realm`, signed by the key of `cert`.
    Token { realm: String, service: String, issuer: String, cert: PathBuf },
}

/// A running docker-registry with its own storage, killed by PID when dropped.
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    config: PathBuf,
    child: Option<Child>,
}

impl Registry {
    pub fn start(mode: Mode) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let auth = match &mode {
            Mode::Plain | Mode::Tls { .. } => String::new(),
            Mode::Htpasswd { file } => {
                format!("auth:\n  htpasswd:\n    realm: strata-test\n    path: {}\n", file.display())
            }
            Mode::Token { realm, service, issuer, cert } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                cert.display()
            ),
        };
        let tls = match &mode {
            Mode::Tls { cert, key } => {
                format!("  tls:\n    certificate: {}\n    key: {}\n", cert.display(), key.display())
            }
            _ => String::new(),
        };
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{tls}{auth}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let mut r = Registry { dir, port, config, child: None };
        r.restart();
        r
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A reference on this registry.
    pub fn reference(&self, repo_tag: &str) -> strata_registry::spec::Reference {
        strata_registry::spec::Reference::parse(&format!("{}/{repo_tag}", self.host())).unwrap()
    }

    /// The PID, for killing from a progress callback.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap()
    }

    /// (Re)start on the same port and storage; wait until it listens.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "registry already running");
        let log = std::fs::File::create(self.dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let log = std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
                panic!("docker-registry exited ({status}):\n{log}");
            }
            assert!(Instant::now() < deadline, "docker-registry did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL the registry and reap it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// SIGKILL a process by PID (from a progress callback that cannot reach the `Child`).
pub fn kill_pid(pid: u32) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
}

/// A CA, and a server certificate it signed for 127.0.0.1 and localhost, in `dir`.
pub struct TestCa {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn make_ca(dir: &Path) -> TestCa {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "strata test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let t = TestCa { ca: dir.join("ca.pem"), cert: dir.join("server.pem"), key: dir.join("server.key") };
    std::fs::write(&t.ca, ca_cert.pem()).unwrap();
    std::fs::write(&t.cert, cert.pem()).unwrap();
    std::fs::write(&t.key, key.serialize_pem()).unwrap();
    t
}

/// An htpasswd file (bcrypt, as distribution requires) made by `htpasswd -Bbn`.
pub fn make_htpasswd(dir: &Path, user: &str, password: &str) -> PathBuf {
    let line = strata_testkit::run(Command::new("htpasswd").args(["-Bbn", user, password]));
    let path = dir.join("htpasswd");
    std::fs::write(&path, line.trim_end().to_owned() + "\n").unwrap();
    path
}

// ---------------------------------------------------------------------------------
// A minimal HTTP/1.1 server: one request per connection, handler writes the response.

/// A request as the fake server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Lowercase header names.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap()
    }

    pub fn query(&self, key: &str) -> Vec<String> {
        let q = self.target.split_once('?').map_or("", |(_, q)| q);
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| percent_decode(v))
            .collect()
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

type Handler = dyn Fn(&Seen, &[u8], &mut TcpStream) + Send + Sync;

/// A scriptable HTTP server on 127.0.0.1; every request is recorded.
pub struct FakeServer {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    pub fn start(handler: impl Fn(&Seen, &[u8], &mut TcpStream) + Send + Sync + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = conn else { continue };
                let (handler, seen) = (handler.clone(), seen2.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let Some((req, body)) = read_request(&mut stream) else { return };
                    seen.lock().unwrap().push(req.clone());
                    handler(&req, &body, &mut stream);
                    let _ = stream.flush();
                });
            }
        });
        FakeServer { port, seen, stop, thread: Some(thread) }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(stream: &mut TcpStream) -> Option<(Seen, Vec<u8>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    // A TLS handshake (strata tries HTTPS first on loopback): not for us, hang up.
    if reader.fill_buf().ok()?.first() == Some(&0x16) {
        return None;
    }
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some((Seen { method, target, headers }, body))
}

/// Write a complete response (`Connection: close`).
pub fn respond(stream: &mut TcpStream, status: u16, headers: &[(&str, String)], body: &[u8]) {
    respond_partial(stream, status, headers, body, body.len());
}

/// Write a response whose `Content-Length` says `body.len()` but send only `send`
/// bytes of the body, then close: a connection cut mid-transfer.
pub fn respond_partial(stream: &mut TcpStream, status: u16, headers: &[(&str, String)], body: &[u8], send: usize) {
    let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body[..send.min(body.len())]);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

// ---------------------------------------------------------------------------------
// A token server for distribution's `auth: token` mode.

/// Issues ES256 JWTs the registry accepts (the signing certificate goes in the JWT's
/// `x5c` header and in the registry's `rootcertbundle`), for one user.
pub struct TokenServer {
    pub server: FakeServer,
    pub service: String,
    pub issuer: String,
    pub cert: PathBuf,
    pub issued: Arc<AtomicUsize>,
}

impl TokenServer {
    pub fn start(dir: &Path, user: &str, password: &str) -> TokenServer {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "strata token signer");
        let cert = params.self_signed(&key).unwrap();
        let cert_path = dir.join("token-signer.pem");
        std::fs::write(&cert_path, cert.pem()).unwrap();
        let x5c = base64::engine::general_purpose::STANDARD.encode(cert.der().as_ref());
        let rng = ring::rand::SystemRandom::new();
        let signer = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &rng,
        )
        .unwrap();
        let service = "strata-test-registry".to_owned();
        let issuer = "strata-test-issuer".to_owned();
        let issued = Arc::new(AtomicUsize::new(0));
        let want = Credentials::new(user, password).to_base64();
        let (svc, iss, count) = (service.clone(), issuer.clone(), issued.clone());
        let server = FakeServer::start(move |req, _, stream| {
            if req.path() != "/token" {
                return respond(stream, 404, &[], b"");
            }
            if req.header("authorization") != Some(&format!("Basic {want}")) {
                return respond(stream, 401, &[], br#"{"details":"bad credentials"}"#);
            }
            let mut access = Vec::new();
            for scope in req.query("scope") {
                let mut parts = scope.splitn(3, ':');
                let (Some(kind), Some(name), Some(actions)) = (parts.next(), parts.next(), parts.next()) else {
                    continue;
                };
                access.push(
                    serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}),
                );
            }
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
            let n = count.fetch_add(1, Ordering::SeqCst);
            let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [x5c]});
            let claims = serde_json::json!({
                "iss": iss, "sub": "tester", "aud": svc, "exp": now + 300, "nbf": now - 10, "iat": now,
                "jti": format!("t{n}"), "access": access,
            });
            let b64 = |v: &serde_json::Value| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
            };
            let signing_input = format!("{}.{}", b64(&header), b64(&claims));
            let sig = signer.sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes()).unwrap();
            let token =
                format!("{signing_input}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig.as_ref()));
            let body = serde_json::to_vec(&serde_json::json!({"token": token, "expires_in": 300})).unwrap();
            respond(stream, 200, &[("Content-Type", "application/json".into())], &body);
        });
        TokenServer { server, service, issuer, cert: cert_path, issued }
    }

    pub fn realm(&self) -> String {
        format!("http://{}/token", self.server.host())
    }

    pub fn mode(&self) -> Mode {
        Mode::Token {
            realm: self.realm(),
            service: self.service.clone(),
            issuer: self.issuer.clone(),
            cert: self.cert.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------
// Images built in code.

/// Deterministic pseudo-random bytes (xorshift64*): incompressible test data.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A tar of `files`, and whether to gzip it.
pub fn layer_tar(files: &[(&str, &[u8])], gzip: bool) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    let tar = b.into_inner().unwrap();
    if !gzip {
        return tar;
    }
    let mut gz = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

/// An image in a store: its manifest, config and layer descriptors.
#[derive(Clone, Debug)]
pub struct TestImage {
    pub manifest: Descriptor,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

impl TestImage {
    pub fn blobs(&self) -> Vec<Digest> {
        std::iter::once(self.config.digest.clone()).chain(self.layers.iter().map(|l| l.digest.clone())).collect()
    }
}

/// Put an image of `layers` (each a list of files) for `platform` into `store`, as an
/// OCI image (gzip layers) or a Docker schema2 one, and tag it `tag` if given.
pub fn make_image(
    store: &dyn Backend,
    layers: &[Vec<(&str, Vec<u8>)>],
    platform: &str,
    docker: bool,
    tag: Option<&str>,
) -> TestImage {
    let platform = Platform::parse(platform).unwrap();
    let mut config = ImageConfig::new(&platform);
    let mut descs = Vec::new();
    for files in layers {
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (*n, d.as_slice())).collect();
        let tar = layer_tar(&refs, false);
        let gz = layer_tar(&refs, true);
        config.push_layer(Digest::sha256_of(&tar), History::default());
        let info = store.put_blob(&gz).unwrap();
        let mt = if docker { MediaType::DockerLayerGzip } else { MediaType::OciLayerGzip };
        descs.push(Descriptor::new(mt, info.digest, info.size));
    }
    let cfg = store.put_blob(&config.to_canonical_json()).unwrap();
    let (cfg_mt, m_mt) = if docker {
        (MediaType::DockerConfig, MediaType::DockerManifest)
    } else {
        (MediaType::OciConfig, MediaType::OciManifest)
    };
    let config = Descriptor::new(cfg_mt, cfg.digest, cfg.size);
    let manifest = Manifest::new(m_mt.clone(), config.clone(), descs.clone());
    let m = store.put_blob(&manifest.to_canonical_json()).unwrap();
    let manifest = Descriptor::new(m_mt, m.digest, m.size);
    if let Some(tag) = tag {
        store.set_ref(tag, &manifest).unwrap();
    }
    TestImage { manifest, config, layers: descs }
}

/// A small two-layer image in a fresh memory store, tagged `src`.
pub fn small_image(seed: u64) -> (MemoryStore, TestImage) {
    let store = MemoryStore::new();
    let img = make_image(
        &store,
        &[
            vec![("etc/hostname", format!("host-{seed}\n").into_bytes()), ("bin/tool", random_bytes(seed, 70_000))],
            vec![("data/blob", random_bytes(seed + 1, 200_000))],
        ],
        "linux/amd64",
        false,
        Some("src"),
    );
    (store, img)
}

/// An index of `images` (their platforms from their configs), tagged `tag`.
pub fn make_index(store: &dyn Backend, images: &[(TestImage, &str)], tag: &str) -> Descriptor {
    let mut index = Index::new(Some(MediaType::OciIndex));
    for (img, platform) in images {
        let mut d = img.manifest.clone();
        d.platform = Some(Platform::parse(platform).unwrap());
        index.manifests.push(d);
    }
    let info = store.put_blob(&index.to_canonical_json()).unwrap();
    let desc = Descriptor::new(MediaType::OciIndex, info.digest, info.size);
    store.set_ref(tag, &desc).unwrap();
    desc
}
