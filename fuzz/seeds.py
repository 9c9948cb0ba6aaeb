#!/usr/bin/env python3
"""Seed corpora for the tar targets: small valid layers in each format (ustar, GNU long
names, PAX with xattrs, a PAX global header, whiteouts, links, devices), plain and gzip.
Usage: seeds.py DIR..."""
import gzip, io, os, sys, tarfile

def layer(fmt, pax_headers=None):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, pax_headers=pax_headers or {}) as t:
        def add(name, typ=tarfile.REGTYPE, data=b"", link="", mode=0o644, pax=None):
            i = tarfile.TarInfo(name)
            i.type, i.size, i.linkname, i.mode, i.mtime = typ, len(data), link, mode, 1600000000
            if typ in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                i.devmajor, i.devminor = 1, 3
            if pax and fmt == tarfile.PAX_FORMAT:
                i.pax_headers = pax
            t.addfile(i, io.BytesIO(data) if data else None)
        add("etc", tarfile.DIRTYPE, mode=0o755)
        add("etc/motd", data=b"hello", pax={"SCHILY.xattr.user.x": "1", "mtime": "1600000000.5"})
        add("d/" + "long" * 40 + "/f", data=b"long")
        add("l", tarfile.SYMTYPE, link="/" + "t" * 120)
        add("h", tarfile.LNKTYPE, link="etc/motd")
        add("dev/null", tarfile.CHRTYPE)
        add("fifo", tarfile.FIFOTYPE)
        add("etc/.wh.gone")
        add("opq/.wh..wh..opq")
        add("big", data=bytes(range(256)) * 8)
    return buf.getvalue()

blobs = {
    "gnu": layer(tarfile.GNU_FORMAT),
    "pax": layer(tarfile.PAX_FORMAT),
    "pax_global": layer(tarfile.PAX_FORMAT, {"comment": "global"}),
}
for d in sys.argv[1:]:
    os.makedirs(d, exist_ok=True)
    for name, b in blobs.items():
        open(os.path.join(d, name + ".tar"), "wb").write(b)
        open(os.path.join(d, name + ".tar.gz"), "wb").write(gzip.compress(b, mtime=0))
