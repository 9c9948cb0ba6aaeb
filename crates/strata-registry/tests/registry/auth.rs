//! Authentication and transport: htpasswd basic auth, the token flow, TLS, login.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::atomic::Ordering;

use strata_registry::store::MemoryStore;
use strata_registry::{AuthFile, Credentials, Error, NoProgress, PullOptions, PushOptions, login, logout, pull, push};

use crate::common::*;

#[test]
fn basic_auth_with_htpasswd() {
    if !have_registry() || !strata_testkit::require_tool("htpasswd") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = make_htpasswd(tmp.path(), "alice", "s3cret");
    let reg = Registry::start(Mode::Htpasswd { file });
    let (src, img) = small_image(20);
    let dest = reg.reference("private/app:1");
    let push_with = |creds: Option<Credentials>| {
        let mut registry = options(tmp.path());
        registry.credentials = creds;
        push(&src, &img.manifest, &dest, &PushOptions { registry, ..Default::default() }, &NoProgress)
    };

    let err = push_with(None).unwrap_err();
    match &err {
        Error::Unauthorized { registry, repository, status, credentials_sent, .. } => {
            assert_eq!(
                (registry.as_str(), repository.as_str(), *status, *credentials_sent),
                (reg.host().as_str(), "private/app", 401, false)
            );
        }
        e => panic!("expected 401, got {e}"),
    }
    assert!(err.to_string().contains("no credentials were sent"), "{err}");

    let err = push_with(Some(Credentials::new("alice", "wrong"))).unwrap_err();
    assert!(matches!(err, Error::Unauthorized { credentials_sent: true, status: 401, .. }), "{err}");
    assert!(err.to_string().contains("credentials were sent and refused"), "{err}");
    assert!(err.to_string().contains(&reg.host()), "{err}");

    push_with(Some(Credentials::new("alice", "s3cret"))).unwrap();

    // Pull with credentials from a docker config file.
    let auth = AuthFile::at(tmp.path().join("docker/config.json"));
    auth.set(&reg.host(), &Credentials::new("alice", "s3cret")).unwrap();
    let mut registry = options(tmp.path());
    registry.auth_file = Some(auth.path().to_owned());
    let pulled =
        pull(&MemoryStore::new(), &dest, &PullOptions { registry, ..Default::default() }, &NoProgress).unwrap();
    assert_eq!(pulled.descriptor.digest, img.manifest.digest);
}

#[test]
fn login_checks_credentials_and_writes_the_docker_config() {
    if !have_registry() || !strata_testkit::require_tool("htpasswd") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = make_htpasswd(tmp.path(), "alice", "s3cret");
    let reg = Registry::start(Mode::Htpasswd { file });
    let config = tmp.path().join("docker/config.json");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    let before = r#"{"auths":{"other.example:5000":{"auth":"eDp5"}},"credsStore":"desktop","psFormat":"table"}"#;
    std::fs::write(&config, before).unwrap();
    let mut opts = options(tmp.path());
    opts.auth_file = Some(config.clone());

    let err = login(&reg.host(), &Credentials::new("alice", "nope"), &opts).unwrap_err();
    assert!(matches!(err, Error::Unauthorized { credentials_sent: true, .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before, "a failed login changed the file");

    let written = login(&format!("http://{}/v2/", reg.host()), &Credentials::new("alice", "s3cret"), &opts).unwrap();
    assert_eq!(written.path(), config);
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert_eq!(value["auths"][reg.host()]["auth"], "YWxpY2U6czNjcmV0"); // alice:s3cret
    assert_eq!(value["auths"]["other.example:5000"]["auth"], "eDp5");
    assert_eq!(value["credsStore"], "desktop");
    assert_eq!(value["psFormat"], "table");
    assert_eq!(std::fs::metadata(&config).unwrap().permissions().mode() & 0o777, 0o600);

    // skopeo reads what we wrote.
    if strata_testkit::require_tool("skopeo") {
        let (src, img) = small_image(21);
        let registry = opts.clone();
        push(
            &src,
            &img.manifest,
            &reg.reference("app:1"),
            &PushOptions { registry, ..Default::default() },
            &NoProgress,
        )
        .unwrap();
        let out = strata_testkit::run(Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--authfile",
            config.to_str().unwrap(),
            &format!("docker://{}/app:1", reg.host()),
        ]));
        assert!(out.contains(img.config.digest.as_str()), "{out}");
    }

    assert!(logout(&reg.host(), &opts).unwrap());
    assert!(!logout(&reg.host(), &opts).unwrap());
    assert_eq!(AuthFile::at(&config).get(&reg.host()).unwrap(), None);
    assert!(AuthFile::at(&config).get("other.example:5000").unwrap().is_some());
}

#[test]
fn bearer_token_flow_with_a_token_server() {
    if !have_registry() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tokens = TokenServer::start(tmp.path(), "bob", "hunter2");
    let reg = Registry::start(tokens.mode());
    let (src, img) = small_image(22);
    let dest = reg.reference("team/app:1");
    let mut registry = options(tmp.path());
    registry.credentials = Some(Credentials::new("bob", "hunter2"));

    let pushed = push(
        &src,
        &img.manifest,
        &dest,
        &PushOptions { registry: registry.clone(), ..Default::default() },
        &NoProgress,
    )
    .unwrap();
    assert_eq!(pushed.blobs_uploaded, 3);
    // One token for the whole push (cached per scope), whatever the number of requests.
    assert_eq!(tokens.issued.load(Ordering::SeqCst), 1);
    let scopes: Vec<Vec<String>> = tokens.server.requests().iter().map(|r| r.query("scope")).collect();
    assert_eq!(scopes, vec![vec!["repository:team/app:pull,push".to_owned()]]);
    let services: Vec<Vec<String>> = tokens.server.requests().iter().map(|r| r.query("service")).collect();
    assert_eq!(services, vec![vec![tokens.service.clone()]]);

    let pulled = pull(
        &MemoryStore::new(),
        &dest,
        &PullOptions { registry: registry.clone(), ..Default::default() },
        &NoProgress,
    )
    .unwrap();
    assert_eq!(pulled.descriptor.digest, img.manifest.digest);
    assert_eq!(tokens.issued.load(Ordering::SeqCst), 2);

    // Mounting asks for pull access to the source repository too.
    let mount = PushOptions { registry: registry.clone(), mount_from: Some("team/app".into()), ..Default::default() };
    let pushed = push(&src, &img.manifest, &reg.reference("team/copy:1"), &mount, &NoProgress).unwrap();
    assert_eq!(pushed.blobs_mounted, 3);
    let last = tokens.server.requests().last().unwrap().query("scope");
    assert_eq!(last, vec!["repository:team/copy:pull,push".to_owned(), "repository:team/app:pull".to_owned()]);

    // Wrong password: the token server refuses, and the error says so.
    let mut wrong = registry.clone();
    wrong.credentials = Some(Credentials::new("bob", "nope"));
    let err =
        pull(&MemoryStore::new(), &dest, &PullOptions { registry: wrong.clone(), ..Default::default() }, &NoProgress)
            .unwrap_err();
    assert!(
        matches!(&err, Error::Unauthorized { credentials_sent: true, repository, .. } if repository == "team/app"),
        "{err}"
    );

    // No credentials at all.
    let mut anonymous = registry.clone();
    anonymous.credentials = None;
    let err = pull(&MemoryStore::new(), &dest, &PullOptions { registry: anonymous, ..Default::default() }, &NoProgress)
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { credentials_sent: false, .. }), "{err}");

    // Login goes through the token server too.
    let config = tmp.path().join("config.json");
    let mut opts = registry.clone();
    opts.auth_file = Some(config.clone());
    assert!(login(&reg.host(), &Credentials::new("bob", "nope"), &opts).is_err());
    assert!(!config.exists());
    login(&reg.host(), &Credentials::new("bob", "hunter2"), &opts).unwrap();
    assert_eq!(AuthFile::at(&config).get(&reg.host()).unwrap(), Some(Credentials::new("bob", "hunter2")));
}

#[test]
fn tls_with_an_extra_ca() {
    if !have_registry() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ca = make_ca(tmp.path());
    let reg = Registry::start(Mode::Tls { cert: ca.cert.clone(), key: ca.key.clone() });
    let (src, img) = small_image(23);
    let dest = reg.reference("secure:1");

    // Not trusted: a TLS error, and no fallback to plain HTTP.
    let err = push(
        &src,
        &img.manifest,
        &dest,
        &PushOptions { registry: options(tmp.path()), ..Default::default() },
        &NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err}");

    let mut trusted = options(tmp.path());
    trusted.tls_ca_files = vec![ca.ca.clone()];
    push(&src, &img.manifest, &dest, &PushOptions { registry: trusted.clone(), ..Default::default() }, &NoProgress)
        .unwrap();
    let pulled =
        pull(&MemoryStore::new(), &dest, &PullOptions { registry: trusted, ..Default::default() }, &NoProgress)
            .unwrap();
    assert_eq!(pulled.descriptor.digest, img.manifest.digest);

    // Insecure: any certificate.
    let mut insecure = options(tmp.path());
    insecure.insecure = true;
    pull(&MemoryStore::new(), &dest, &PullOptions { registry: insecure, ..Default::default() }, &NoProgress).unwrap();

    // A CA file with no certificate in it is a clear error.
    let empty = tmp.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let mut bad = options(tmp.path());
    bad.tls_ca_files = vec![empty.clone()];
    let err = pull(&MemoryStore::new(), &dest, &PullOptions { registry: bad, ..Default::default() }, &NoProgress)
        .unwrap_err();
    assert!(matches!(&err, Error::Config { path, .. } if *path == empty), "{err}");
}
