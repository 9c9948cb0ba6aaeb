#!/usr/bin/env python3
"""Write an OCI image layout with a big index, as strata would have written it.

FAMILIES chains of DEPTH images each: image k of a chain has k+1 one-file layers and
k+1 history entries, each built on image k-1 (so `inspect` has a parent to find and
`rmi` children to respect); every image has TAGS tags. Index entries =
FAMILIES * DEPTH * TAGS, family after family. Blobs: one manifest, one config and one
layer (gzip) per image, with strata's layer records (diff_id and size) beside them.

usage: gen_index.py DIR FAMILIES DEPTH TAGS
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"


def canonical(v):
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def main():
    root, families, depth, tags = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    blobs = os.path.join(root, "blobs", "sha256")
    records = os.path.join(root, ".strata", "records", "layer", "sha256")
    for d in (blobs, records, os.path.join(root, ".strata", "tmp")):
        os.makedirs(d, exist_ok=True)

    def put(data):
        hexd = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, hexd), "wb") as f:
            f.write(data)
        return "sha256:" + hexd

    entries = []
    base_time = 1_700_000_000
    for fam in range(families):
        diff_ids, layers, history = [], [], []
        for level in range(depth):
            content = f"family {fam} level {level}\n".encode()
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
                info = tarfile.TarInfo(f"f{fam}/l{level}")
                info.size, info.mtime, info.mode = len(content), base_time, 0o644
                t.addfile(info, io.BytesIO(content))
            tar = buf.getvalue()
            blob = gzip.compress(tar, compresslevel=6, mtime=0)
            digest = put(blob)
            diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
            with open(os.path.join(records, digest[7:]), "wb") as f:
                f.write(json.dumps({"diffId": diff_id, "size": len(content)}, separators=(",", ":")).encode())
            diff_ids.append(diff_id)
            layers.append({"mediaType": OCI_LAYER_GZIP, "digest": digest, "size": len(blob)})
            created = time_text(base_time + fam * depth + level)
            history.append({"created": created, "created_by": f"strata commit (family {fam}, step {level})"})
            config = canonical({
                "architecture": "amd64", "os": "linux", "created": created,
                "config": {"Env": ["PATH=/usr/bin:/bin"]},
                "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
                "history": list(history),
            })
            cdigest = put(config)
            manifest = canonical({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": cdigest, "size": len(config)},
                "layers": list(layers),
            })
            mdigest = put(manifest)
            for t in range(tags):
                entries.append({
                    "annotations": {REF_NAME: f"scale/f{fam}-l{level}:t{t}"},
                    "digest": mdigest, "mediaType": OCI_MANIFEST, "size": len(manifest),
                })
    index = canonical({"manifests": entries, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "schemaVersion": 2})
    with open(os.path.join(root, "index.json"), "wb") as f:
        f.write(index)
    with open(os.path.join(root, "oci-layout"), "wb") as f:
        f.write(b'{"imageLayoutVersion":"1.0.0"}')
    print(f"{len(entries)} index entries, {families * depth} images, {len(index)} bytes of index.json")


def time_text(secs):
    import datetime
    return datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


if __name__ == "__main__":
    main()
