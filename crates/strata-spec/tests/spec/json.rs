//! Documents as Docker, podman and umoci write them survive a read/write round trip.

use serde_json::Value;
use strata_spec::{
    Descriptor, Digest, Error, ErrorChain, ImageConfig, Index, Manifest, ManifestOrIndex, MediaType, convert,
};

/// A config shaped like `docker save` output of an image built by `docker build`
/// and then `docker commit`ed: Docker-only fields, explicit nulls, Healthcheck, OnBuild.
const DOCKER_CONFIG: &str = r#"{
  "architecture": "amd64",
  "author": "xiao",
  "comment": "edit webapps dir",
  "config": {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false,
    "AttachStdout": false, "AttachStderr": false,
    "ExposedPorts": {"8080/tcp": {}},
    "Tty": false, "OpenStdin": false, "StdinOnce": false,
    "Env": ["PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8"],
    "Cmd": ["catalina.sh", "run"],
    "Healthcheck": {"Test": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"], "Interval": 30000000000},
    "ArgsEscaped": true,
    "Image": "sha256:1b0c2d",
    "Volumes": null,
    "WorkingDir": "/usr/local/tomcat",
    "Entrypoint": null,
    "OnBuild": ["RUN echo hi"],
    "Labels": {"maintainer": "x"},
    "Shell": ["/bin/bash", "-c"],
    "StopSignal": "SIGTERM"
  },
  "container": "6c5fe0b2b7e4",
  "container_config": {"Hostname": "6c5fe0b2b7e4", "Cmd": ["/bin/sh"], "Image": "tomcat", "Volumes": null, "OnBuild": null, "Labels": {}},
  "created": "2024-01-24T19:56:15.123456789Z",
  "docker_version": "24.0.7",
  "history": [
    {"created": "2024-01-11T02:36:55Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
    {"created": "2024-01-11T02:36:55Z", "created_by": "/bin/sh -c #(nop)  CMD [\"bash\"]", "empty_layer": true},
    {"created": "2024-01-24T19:56:15Z", "author": "xiao", "comment": "edit webapps dir", "created_by": "catalina.sh run"}
  ],
  "os": "linux",
  "rootfs": {"type": "layers", "diff_ids": [
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
  ]},
  "variant": null,
  "x-future-field": {"nested": [1, 2.5, "three", null, true]}
}"#;

const DOCKER_MANIFEST: &str = r#"{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1457,
              "digest": "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
   "layers": [
      {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 29534055,
       "digest": "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"},
      {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "size": 1,
       "digest": "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
       "urls": ["https://example.com/layer"]}
   ]
}"#;

const OCI_INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
  "manifests":[
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":7143,
     "digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "platform":{"architecture":"arm64","os":"linux","variant":"v8"},
     "annotations":{"org.opencontainers.image.ref.name":"v1","vnd.example":"x"}},
    {"mediaType":"application/vnd.in-toto+json","size":10,"artifactType":"application/spdx+json",
     "digest":"sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"}],
  "annotations":{"a":"b"}}"#;

fn value(s: &[u8]) -> Value {
    serde_json::from_slice(s).unwrap()
}

#[test]
fn docker_config_round_trips_losslessly() {
    let c = ImageConfig::from_slice(DOCKER_CONFIG.as_bytes()).unwrap();
    assert_eq!(c.author.as_deref(), Some("xiao"));
    let cfg = c.config.as_ref().unwrap();
    assert_eq!(cfg.cmd.as_deref(), Some(&["catalina.sh".to_string(), "run".to_string()][..]));
    assert!(cfg.healthcheck.is_some());
    assert_eq!(cfg.on_build.as_ref().map(Vec::len), Some(1));
    assert_eq!(c.history().len(), 3);
    assert!(c.history()[1].is_empty_layer());
    c.check_history().unwrap();

    let out = c.to_canonical_json();
    // Same JSON value: every field, every null, every unknown field.
    assert_eq!(value(&out), value(DOCKER_CONFIG.as_bytes()));
    // Byte-stable: parsing the output and writing again gives the same bytes.
    let again = ImageConfig::from_slice(&out).unwrap();
    assert_eq!(again, c);
    assert_eq!(again.to_canonical_json(), out);
    // Canonical: no whitespace outside strings, keys sorted at every level.
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains(": ") && !text.contains(", ") && !text.contains('\n'));
    assert!(text.starts_with(r#"{"architecture":"amd64","author":"xiao","comment""#), "{text}");
    assert!(text.contains(r#""Entrypoint":null"#));
    assert!(text.contains(r#""variant":null"#));
}

#[test]
fn oci_spec_is_lossy_where_strata_is_not() {
    // The reason strata does not store oci-spec types: they drop Docker-only fields.
    let c = ImageConfig::from_slice(DOCKER_CONFIG.as_bytes()).unwrap();
    let oci = convert::config_to_oci(&c).unwrap();
    let through_oci = serde_json::to_value(&oci).unwrap();
    assert!(through_oci.get("container_config").is_none(), "oci-spec kept container_config?");
    assert!(through_oci.get("x-future-field").is_none());
    assert!(value(&c.to_canonical_json()).get("container_config").is_some());
    // The conversion is still useful for what oci-spec does model.
    assert_eq!(oci.architecture().to_string(), "amd64");
    assert_eq!(oci.rootfs().diff_ids().len(), 2);
}

#[test]
fn manifests_and_indexes_round_trip() {
    let m = Manifest::from_slice(DOCKER_MANIFEST.as_bytes()).unwrap();
    assert_eq!(m.layers.len(), 2);
    assert!(m.layers[1].media_type.is_foreign_layer());
    assert_eq!(value(&m.to_canonical_json()), value(DOCKER_MANIFEST.as_bytes()));
    let oci = convert::manifest_to_oci(&m).unwrap();
    assert_eq!(oci.layers().len(), 2);

    let i = Index::from_slice(OCI_INDEX.as_bytes()).unwrap();
    assert_eq!(i.manifests[0].ref_name(), Some("v1"));
    assert_eq!(i.manifests[1].media_type, MediaType::Other("application/vnd.in-toto+json".into()));
    let out = i.to_canonical_json();
    assert_eq!(value(&out), value(OCI_INDEX.as_bytes()));
    assert_eq!(Index::from_slice(&out).unwrap().to_canonical_json(), out);
}

#[test]
fn canonical_output_has_a_stable_digest() {
    let c = ImageConfig::from_slice(DOCKER_CONFIG.as_bytes()).unwrap();
    let digests: Vec<Digest> = (0..20).map(|_| Digest::sha256_of(&c.clone().to_canonical_json())).collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn media_type_disagreement_is_an_error() {
    // CVE-2021-41190: a document must not be read as something its own mediaType denies.
    let err = Manifest::from_slice_as(DOCKER_MANIFEST.as_bytes(), &MediaType::OciManifest).unwrap_err();
    assert!(matches!(err, Error::MediaTypeMismatch { .. }), "{err}");
    let err = Index::from_slice_as(OCI_INDEX.as_bytes(), &MediaType::DockerManifestList).unwrap_err();
    assert!(matches!(err, Error::MediaTypeMismatch { .. }), "{err}");
    // A manifest type asked of an index parser, and the reverse.
    assert!(matches!(Manifest::from_slice_as(b"{}", &MediaType::OciIndex), Err(Error::WrongMediaTypeKind { .. })));
    assert!(matches!(Index::from_slice_as(b"{}", &MediaType::OciLayer), Err(Error::WrongMediaTypeKind { .. })));
    // A document that is both a manifest and an index.
    let both = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,
        "digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},"layers":[],"manifests":[]}"#;
    assert!(matches!(Manifest::from_slice(both.as_bytes()), Err(Error::Invalid { .. })));
    assert!(matches!(Index::from_slice(both.as_bytes()), Err(Error::Invalid { .. })));
    assert!(ManifestOrIndex::from_slice(both.as_bytes()).is_err());
    // Without a mediaType the shape decides.
    let idx = r#"{"schemaVersion":2,"manifests":[]}"#;
    assert!(matches!(ManifestOrIndex::from_slice(idx.as_bytes()), Ok(ManifestOrIndex::Index(_))));
    // Schema 1 is recognised and refused clearly.
    let err = ManifestOrIndex::from_slice_as(b"{}", &MediaType::DockerSchema1SignedManifest).unwrap_err();
    assert!(err.to_string().contains("schema1"), "{err}");
}

#[test]
fn bad_documents_get_typed_errors() {
    let cases: &[(&str, &str)] = &[
        ("not json", "invalid image config JSON"),
        ("[]", "invalid image config JSON"),
        (r#"{"os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#, "architecture"),
        (
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:../../x"]}}"#,
            "invalid digest",
        ),
        (r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"bogus","diff_ids":[]}}"#, "rootfs.type"),
        (r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"history":{}}"#, "history"),
    ];
    for (json, needle) in cases {
        let err = ImageConfig::from_slice(json.as_bytes()).unwrap_err();
        let err = ErrorChain(&err).to_string();
        assert!(err.contains(needle), "{json}: {err}");
    }
    let neg = r#"{"mediaType":"application/vnd.oci.image.layer.v1.tar","size":-1,
        "digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}"#;
    assert!(serde_json::from_str::<Descriptor>(neg).is_err());
    let m = r#"{"schemaVersion":1,"config":{"mediaType":"x","size":1,
        "digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},"layers":[]}"#;
    assert!(ErrorChain(&Manifest::from_slice(m.as_bytes()).unwrap_err()).to_string().contains("schemaVersion"));
}

/// Documents are read field by field and written straight through (no JSON tree in
/// between, for big indexes): the bytes are the canonical form all the same, with keys
/// sorted across typed and unknown fields, explicit nulls kept, and the last of duplicate
/// keys winning as in a JSON map.
#[test]
fn documents_write_the_canonical_form_directly() {
    let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let text = format!(
        r#"{{ "zz-extra": {{"b": 1, "a": [null, {{"y": 2, "x": 1}}]}}, "manifests": [
            {{"size": 1, "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "{d}",
              "artifactType": null, "platform": {{"os": "linux", "architecture": "amd64", "os.features": null}},
              "annotations": {{"org.opencontainers.image.ref.name": "v1", "a": "first"}}, "m-extra": true,
              "size": 2}} ],
            "schemaVersion": 2, "annotations": null, "aa-extra": "\u00e9\n"}}"#
    );
    let i = Index::from_slice(text.as_bytes()).unwrap();
    assert_eq!(i.manifests[0].size, 2, "the last duplicate key wins");
    let out = i.to_canonical_json();
    assert_eq!(out, strata_spec::to_canonical_json(&value(&out)).unwrap(), "{}", String::from_utf8_lossy(&out));
    assert_eq!(value(&out), {
        let mut v = value(text.as_bytes());
        v["manifests"][0]["size"] = 2.into();
        v
    });
    assert!(String::from_utf8_lossy(&out).contains(r#""annotations":null"#));
    assert!(String::from_utf8_lossy(&out).contains(r#""artifactType":null"#));
    // A required field that is null or absent is an error naming it.
    for bad in [r#"{"schemaVersion":null,"manifests":[]}"#, r#"{"manifests":[]}"#] {
        let e = ErrorChain(&Index::from_slice(bad.as_bytes()).unwrap_err()).to_string();
        assert!(e.contains("schemaVersion"), "{e}");
    }
    let e = ErrorChain(&Index::from_slice(br#"{"schemaVersion":"two","manifests":[]}"#).unwrap_err()).to_string();
    assert!(e.contains("field `schemaVersion`"), "{e}");
}
