#!/usr/bin/env python3
"""Seed corpora, so that each fuzzer starts from deep inside its parser.
Usage: seeds.py CORPUS_DIR  (writes CORPUS_DIR/<target>/<seed>)

- tar_reader, apply_layer, decompress: small valid layers in each format (ustar, GNU
  long names, PAX with xattrs, a PAX global header, whiteouts, links, devices), plain
  and gzip.
- archive_load: small valid archives that load: docker-archive in the old per-layer
  directory form (`<id>/layer.tar`, a symlinked duplicate), the Docker 25+
  `blobs/sha256/<hex>` form, the `<diff_id>.tar` form strata and skopeo write, a
  gzip-compressed one, and OCI archives (plain and gzip layers).
- dockerfile_parse: real-world Dockerfiles and a .dockerignore.
- reference_parse, spec_json: references, digests, platforms, media types, manifests.
- registry_headers: WWW-Authenticate and Content-Range values, base64 credentials."""
import base64, gzip, hashlib, io, json, os, sys, tarfile


def tar_bytes(add_members, fmt=tarfile.GNU_FORMAT, pax_headers=None):
    """A tar without tarfile's record padding: the members, then the two end blocks."""
    buf = io.BytesIO()
    t = tarfile.open(fileobj=buf, mode="w", format=fmt, pax_headers=pax_headers or {})
    add_members(t)
    end = t.offset
    t.close()
    return buf.getvalue()[:end] + b"\0" * 1024


def add(t, name, typ=tarfile.REGTYPE, data=b"", link="", mode=0o644, pax=None):
    i = tarfile.TarInfo(name)
    i.type, i.size, i.linkname, i.mode, i.mtime = typ, len(data), link, mode, 1600000000
    if typ in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        i.devmajor, i.devminor = 1, 3
    if pax and t.format == tarfile.PAX_FORMAT:
        i.pax_headers = pax
    t.addfile(i, io.BytesIO(data) if data else None)


def layer(fmt, pax_headers=None):
    def members(t):
        add(t, "etc", tarfile.DIRTYPE, mode=0o755)
        add(t, "etc/motd", data=b"hello", pax={"SCHILY.xattr.user.x": "1", "mtime": "1600000000.5"})
        add(t, "d/" + "long" * 40 + "/f", data=b"long")
        add(t, "l", tarfile.SYMTYPE, link="/" + "t" * 120)
        add(t, "h", tarfile.LNKTYPE, link="etc/motd")
        add(t, "dev/null", tarfile.CHRTYPE)
        add(t, "fifo", tarfile.FIFOTYPE)
        add(t, "etc/.wh.gone")
        add(t, "opq/.wh..wh..opq")
        add(t, "big", data=bytes(range(256)) * 8)
    return tar_bytes(members, fmt, pax_headers)


def small_layer(content):
    return tar_bytes(lambda t: add(t, "f", data=content), tarfile.USTAR_FORMAT)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def config(diff_ids):
    c = {"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for d in diff_ids]},
         "history": [{"created_by": "seed"} for _ in diff_ids]}
    return json.dumps(c, separators=(",", ":"), sort_keys=True).encode()


def archive(members):
    """members: (name, bytes) for files, (name, None, target) for symlinks."""
    def add_all(t):
        for m in members:
            if m[1] is None:
                add(t, m[0], tarfile.SYMTYPE, link=m[2], mode=0o777)
            else:
                add(t, m[0], data=m[1])
    return tar_bytes(add_all)


def archives():
    l1, l2 = small_layer(b"one"), small_layer(b"two")
    d1, d2 = sha(l1), sha(l2)
    c1, c2 = config([d1]), config([d1, d2])
    n1, n2 = sha(c1) + ".json", sha(c2) + ".json"
    out = {}
    manifest = json.dumps([
        {"Config": n1, "RepoTags": ["one:1"], "Layers": ["aaaa/layer.tar"]},
        {"Config": n2, "RepoTags": ["two:1", "two:latest"], "Layers": ["bbbb/layer.tar", "cccc/layer.tar"]},
    ]).encode()
    out["docker_dirs"] = archive([
        ("aaaa/VERSION", b"1.0"), ("aaaa/json", b"{}"), ("aaaa/layer.tar", l1),
        ("bbbb/layer.tar", None, "../aaaa/layer.tar"), ("cccc/layer.tar", l2),
        (n1, c1), (n2, c2), ("manifest.json", manifest), ("repositories", b'{"one":{"1":"%s"}}' % d1.encode()),
    ])
    manifest = json.dumps([{"Config": "blobs/sha256/" + sha(c1), "RepoTags": ["d25:1"],
                            "Layers": ["blobs/sha256/" + d1], "LayerSources": {}}]).encode()
    out["docker_blobs"] = archive([
        ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("blobs/sha256/" + d1, l1),
        ("blobs/sha256/" + sha(c1), c1), ("index.json", b'{"schemaVersion":2,"manifests":[]}'),
        ("manifest.json", manifest),
    ])
    manifest = json.dumps([{"Config": n2, "RepoTags": None, "Layers": [d1 + ".tar", d2 + ".tar"]}]).encode()
    flat = archive([("manifest.json", manifest), ("repositories", b"{}"), (n2, c2),
                    (d1 + ".tar", l1), (d2 + ".tar", l2)])
    out["docker_flat"] = flat
    out["docker_flat.gz"] = gzip.compress(flat, mtime=0)
    # Layers stored gzip-compressed in a docker-archive (docker load accepts them).
    g1 = gzip.compress(l1, mtime=0)
    manifest = json.dumps([{"Config": n1, "RepoTags": ["gz:1"], "Layers": ["g/layer.tar"]}]).encode()
    out["docker_gzip_layer"] = archive([(n1, c1), ("g/layer.tar", g1), ("manifest.json", manifest)])
    # OCI archives: one image with a gzip layer and a plain layer, tagged.
    def oci(layers, name):
        descs, blobs = [], []
        for raw, media in layers:
            descs.append({"mediaType": media, "digest": "sha256:" + sha(raw), "size": len(raw)})
            blobs.append(raw)
        cfg = c2 if len(layers) == 2 else c1
        m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                   "digest": "sha256:" + sha(cfg), "size": len(cfg)},
                        "layers": descs}, separators=(",", ":")).encode()
        idx = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                          "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                         "digest": "sha256:" + sha(m), "size": len(m),
                                         "platform": {"architecture": "amd64", "os": "linux"},
                                         "annotations": {"org.opencontainers.image.ref.name": name}}]}).encode()
        members = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", idx)]
        for b in [m, cfg] + blobs:
            members.append(("blobs/sha256/" + sha(b), b))
        return archive(members)
    out["oci"] = oci([(g1, "application/vnd.oci.image.layer.v1.tar+gzip"),
                      (l2, "application/vnd.oci.image.layer.v1.tar")], "oci:1")
    out["oci_one"] = oci([(l1, "application/vnd.oci.image.layer.v1.tar")], "latest")
    return out


DOCKERFILES = {
    "basic": """# syntax=docker/dockerfile:1
FROM debian:bookworm-slim AS base
ARG DEBIAN_FRONTEND=noninteractive
ENV LANG=C.UTF-8 PATH=/usr/local/bin:$PATH
RUN apt-get update \\
    && apt-get install -y --no-install-recommends ca-certificates curl \\
    # a comment inside a continuation
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --chown=1000:1000 --chmod=0755 src/ ./src/
ADD https://example.com/x.tar.gz /tmp/
USER 1000:1000
EXPOSE 8080/tcp 9090
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=3s --retries=3 CMD curl -f http://localhost/ || exit 1
ENTRYPOINT ["/app/run"]
CMD ["--port", "8080"]
""",
    "multistage": """ARG GO=1.22
FROM golang:${GO} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/app ./cmd/app

FROM scratch
COPY --from=build /out/app /app
LABEL org.opencontainers.image.title="app" version="1.0"
STOPSIGNAL SIGTERM
SHELL ["/bin/sh", "-c"]
ONBUILD RUN echo hi
ENTRYPOINT ["/app"]
""",
    "escape": """# escape=`
FROM mcr.microsoft.com/windows/servercore:ltsc2022
SHELL ["powershell", "-Command"]
RUN Write-Host `
    hello
COPY ["a b", "c:\\\\dest\\\\"]
ENV X="quoted ${Y:-default} ${Z:+alt}" W=$X
""",
    "odd": """from alpine
run echo "a \\
b" ; echo 'c'   \\

maintainer someone
arg A
arg B=2
env A ${A}b${B}
expose ${PORT:-80}
healthcheck NONE
cmd echo $HOME
""",
}
DOCKERIGNORE = """# comment
.git
**/*.log
!important.log
node_modules/
/build
*.tmp
!**/keep/*.tmp
[a-c]?.txt
"""

REFERENCES = [
    "alpine", "alpine:3.19", "library/alpine:latest", "docker.io/library/alpine@sha256:" + "a" * 64,
    "localhost:5000/x/y:tag", "[::1]:5000/a/b@sha256:" + "b" * 64, "ghcr.io/owner/repo:v1.2.3-rc.1",
    "registry.example.com:443/a/b/c/d:T_a-g.1", "sha256:" + "c" * 64, "sha512:" + "d" * 128,
    "linux/amd64", "linux/arm64/v8", "windows/amd64", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json", "gzip", "zstd",
]
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                       "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                  "digest": "sha256:" + "a" * 64, "size": 10},
                       "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                   "digest": "sha256:" + "b" * 64, "size": 20, "urls": ["http://x"]}]})
INDEX = json.dumps({"schemaVersion": 2, "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "c" * 64, "size": 3,
     "platform": {"os": "linux", "architecture": "arm64", "variant": "v8", "os.features": ["x"]},
     "annotations": {"org.opencontainers.image.ref.name": "v1"}}]})
CONFIG = config(["e" * 64]).decode()

HEADERS = [
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"',
    'Basic realm="Registry Realm"', 'Bearer realm="r\\"q", error="insufficient_scope", Basic realm="x"',
    'Negotiate abc==, Basic realm="x"', "bytes 0-99/200", "bytes 5-9/*",
    base64.b64encode(b"user:pa:ss").decode(),
]


def main():
    root = sys.argv[1]
    seeds = {}
    layers = {"gnu": layer(tarfile.GNU_FORMAT), "pax": layer(tarfile.PAX_FORMAT),
              "pax_global": layer(tarfile.PAX_FORMAT, {"comment": "global"})}
    for name, b in list(layers.items()):
        layers[name + ".gz"] = gzip.compress(b, mtime=0)
    for t in ["tar_reader", "apply_layer", "decompress"]:
        seeds[t] = layers
    seeds["archive_load"] = archives()
    seeds["dockerfile_parse"] = {**{k: v.encode() for k, v in DOCKERFILES.items()},
                                 "dockerignore": DOCKERIGNORE.encode()}
    text = {f"s{i}": s.encode() for i, s in enumerate(REFERENCES)}
    docs = {"manifest": MANIFEST.encode(), "index": INDEX.encode(), "config": CONFIG.encode()}
    seeds["reference_parse"] = {**text, **docs}
    seeds["spec_json"] = {**text, **docs}
    seeds["registry_headers"] = {f"h{i}": s.encode() for i, s in enumerate(HEADERS)}
    for target, files in seeds.items():
        d = os.path.join(root, target)
        os.makedirs(d, exist_ok=True)
        for name, b in files.items():
            with open(os.path.join(d, "seed-" + name), "wb") as f:
                f.write(b)


main()
