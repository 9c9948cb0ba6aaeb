//! Media types of the OCI image spec and of Docker's schema2, and layer compression.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// Layer compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip (RFC 1952), possibly several concatenated members.
    #[default]
    Gzip,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The suffix used in OCI layer media types (`""`, `"+gzip"`, `"+zstd"`).
    pub fn oci_suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => "+gzip",
            Compression::Zstd => "+zstd",
        }
    }

    /// Detect compression from the first bytes of a blob (at least 4 bytes for zstd).
    ///
    /// Anything that is neither gzip nor zstd is taken as plain tar; the tar reader
    /// rejects it later if it is not.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

impl FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" | "tar" | "uncompressed" => Ok(Compression::None),
            "gzip" | "gz" => Ok(Compression::Gzip),
            "zstd" | "zst" => Ok(Compression::Zstd),
            _ => Err(format!("unknown compression {s:?} (expected none, gzip or zstd)")),
        }
    }
}

macro_rules! media_types {
    ($( $(#[$doc:meta])* $variant:ident => $s:literal, )*) => {
        /// A media type. Every OCI image type and every Docker schema2 type has a
        /// variant; anything else (artifacts, future types) is kept as [`MediaType::Other`]
        /// so that documents round-trip, and is rejected where a known type is required.
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum MediaType {
            $( $(#[$doc])* $variant, )*
            /// Any other media type, kept verbatim.
            Other(String),
        }

        impl MediaType {
            /// The media type string.
            pub fn as_str(&self) -> &str {
                match self {
                    $( MediaType::$variant => $s, )*
                    MediaType::Other(s) => s,
                }
            }

            /// Parse any string: known types become their variant, the rest `Other`.
            pub fn new(s: &str) -> MediaType {
                match s {
                    $( $s => MediaType::$variant, )*
                    other => MediaType::Other(other.to_owned()),
                }
            }

            /// Every known media type.
            pub const KNOWN: &'static [MediaType] = &[$( MediaType::$variant, )*];
        }
    };
}

media_types! {
    /// `application/vnd.oci.image.manifest.v1+json`
    OciManifest => "application/vnd.oci.image.manifest.v1+json",
    /// `application/vnd.oci.image.index.v1+json`
    OciIndex => "application/vnd.oci.image.index.v1+json",
    /// `application/vnd.oci.image.config.v1+json`
    OciConfig => "application/vnd.oci.image.config.v1+json",
    /// `application/vnd.oci.image.layer.v1.tar`
    OciLayer => "application/vnd.oci.image.layer.v1.tar",
    /// `application/vnd.oci.image.layer.v1.tar+gzip`
    OciLayerGzip => "application/vnd.oci.image.layer.v1.tar+gzip",
    /// `application/vnd.oci.image.layer.v1.tar+zstd`
    OciLayerZstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    /// `application/vnd.oci.image.layer.nondistributable.v1.tar` (deprecated by OCI)
    OciForeignLayer => "application/vnd.oci.image.layer.nondistributable.v1.tar",
    /// `application/vnd.oci.image.layer.nondistributable.v1.tar+gzip` (deprecated by OCI)
    OciForeignLayerGzip => "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    /// `application/vnd.oci.image.layer.nondistributable.v1.tar+zstd` (deprecated by OCI)
    OciForeignLayerZstd => "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    /// `application/vnd.oci.empty.v1+json`, the empty descriptor of artifacts
    OciEmpty => "application/vnd.oci.empty.v1+json",
    /// `application/vnd.docker.distribution.manifest.v2+json` (schema2 manifest)
    DockerManifest => "application/vnd.docker.distribution.manifest.v2+json",
    /// `application/vnd.docker.distribution.manifest.list.v2+json` (manifest list)
    DockerManifestList => "application/vnd.docker.distribution.manifest.list.v2+json",
    /// `application/vnd.docker.container.image.v1+json` (image config)
    DockerConfig => "application/vnd.docker.container.image.v1+json",
    /// `application/vnd.docker.image.rootfs.diff.tar` (uncompressed layer, rare)
    DockerLayer => "application/vnd.docker.image.rootfs.diff.tar",
    /// `application/vnd.docker.image.rootfs.diff.tar.gzip`
    DockerLayerGzip => "application/vnd.docker.image.rootfs.diff.tar.gzip",
    /// `application/vnd.docker.image.rootfs.diff.tar.zstd` (written by some newer tools)
    DockerLayerZstd => "application/vnd.docker.image.rootfs.diff.tar.zstd",
    /// `application/vnd.docker.image.rootfs.foreign.diff.tar.gzip` (Windows base layers)
    DockerForeignLayerGzip => "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    /// `application/vnd.docker.plugin.v1+json`
    DockerPluginConfig => "application/vnd.docker.plugin.v1+json",
    /// `application/vnd.docker.distribution.manifest.v1+json` (schema1: recognised, not supported)
    DockerSchema1Manifest => "application/vnd.docker.distribution.manifest.v1+json",
    /// `application/vnd.docker.distribution.manifest.v1+prettyjws` (signed schema1: recognised, not supported)
    DockerSchema1SignedManifest => "application/vnd.docker.distribution.manifest.v1+prettyjws",
}

/// The broad family a media type belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// OCI image spec.
    Oci,
    /// Docker image manifest schema 2.
    Docker,
}

impl MediaType {
    /// Parse a string that must be a media type strata knows.
    pub fn parse_known(s: &str) -> Result<MediaType, Error> {
        match MediaType::new(s) {
            MediaType::Other(o) => Err(Error::UnknownMediaType(o)),
            m => Ok(m),
        }
    }

    /// Whether this is a known type (not [`MediaType::Other`]).
    pub fn is_known(&self) -> bool {
        !matches!(self, MediaType::Other(_))
    }

    /// The family (OCI or Docker), if known.
    pub fn family(&self) -> Option<Family> {
        use MediaType::*;
        match self {
            OciManifest | OciIndex | OciConfig | OciLayer | OciLayerGzip | OciLayerZstd | OciForeignLayer
            | OciForeignLayerGzip | OciForeignLayerZstd | OciEmpty => Some(Family::Oci),
            DockerManifest
            | DockerManifestList
            | DockerConfig
            | DockerLayer
            | DockerLayerGzip
            | DockerLayerZstd
            | DockerForeignLayerGzip
            | DockerPluginConfig
            | DockerSchema1Manifest
            | DockerSchema1SignedManifest => Some(Family::Docker),
            Other(_) => None,
        }
    }

    /// An image manifest (OCI or Docker schema2).
    pub fn is_manifest(&self) -> bool {
        matches!(self, MediaType::OciManifest | MediaType::DockerManifest)
    }

    /// An image index or manifest list.
    pub fn is_index(&self) -> bool {
        matches!(self, MediaType::OciIndex | MediaType::DockerManifestList)
    }

    /// An image config.
    pub fn is_config(&self) -> bool {
        matches!(self, MediaType::OciConfig | MediaType::DockerConfig)
    }

    /// A layer (distributable or foreign).
    pub fn is_layer(&self) -> bool {
        self.layer_compression().is_some()
    }

    /// A foreign (non-distributable) layer, whose blob may be absent from stores.
    pub fn is_foreign_layer(&self) -> bool {
        use MediaType::*;
        matches!(self, OciForeignLayer | OciForeignLayerGzip | OciForeignLayerZstd | DockerForeignLayerGzip)
    }

    /// The compression of a layer type, or `None` if this is not a layer type.
    pub fn layer_compression(&self) -> Option<Compression> {
        use MediaType::*;
        match self {
            OciLayer | OciForeignLayer | DockerLayer => Some(Compression::None),
            OciLayerGzip | OciForeignLayerGzip | DockerLayerGzip | DockerForeignLayerGzip => Some(Compression::Gzip),
            OciLayerZstd | OciForeignLayerZstd | DockerLayerZstd => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The layer media type of `family` for `compression`.
    pub fn layer(family: Family, compression: Compression) -> MediaType {
        match (family, compression) {
            (Family::Oci, Compression::None) => MediaType::OciLayer,
            (Family::Oci, Compression::Gzip) => MediaType::OciLayerGzip,
            (Family::Oci, Compression::Zstd) => MediaType::OciLayerZstd,
            (Family::Docker, Compression::None) => MediaType::DockerLayer,
            (Family::Docker, Compression::Gzip) => MediaType::DockerLayerGzip,
            (Family::Docker, Compression::Zstd) => MediaType::DockerLayerZstd,
        }
    }

    /// The equivalent OCI media type. Fails for types with no OCI equivalent
    /// (schema1, plugin configs, unknown types).
    pub fn to_oci(&self) -> Result<MediaType, Error> {
        use MediaType::*;
        Ok(match self {
            OciManifest | OciIndex | OciConfig | OciLayer | OciLayerGzip | OciLayerZstd | OciForeignLayer
            | OciForeignLayerGzip | OciForeignLayerZstd | OciEmpty => self.clone(),
            DockerManifest => OciManifest,
            DockerManifestList => OciIndex,
            DockerConfig => OciConfig,
            DockerLayer => OciLayer,
            DockerLayerGzip => OciLayerGzip,
            DockerLayerZstd => OciLayerZstd,
            DockerForeignLayerGzip => OciForeignLayerGzip,
            DockerPluginConfig | DockerSchema1Manifest | DockerSchema1SignedManifest | Other(_) => {
                return Err(Error::WrongMediaTypeKind { media_type: self.to_string(), wanted: "convertible to OCI" });
            }
        })
    }

    /// The equivalent Docker schema2 media type. Fails for types with no Docker
    /// equivalent (the OCI empty descriptor, foreign layers other than gzip, unknown types).
    pub fn to_docker(&self) -> Result<MediaType, Error> {
        use MediaType::*;
        Ok(match self {
            DockerManifest
            | DockerManifestList
            | DockerConfig
            | DockerLayer
            | DockerLayerGzip
            | DockerLayerZstd
            | DockerForeignLayerGzip
            | DockerPluginConfig => self.clone(),
            OciManifest => DockerManifest,
            OciIndex => DockerManifestList,
            OciConfig => DockerConfig,
            OciLayer => DockerLayer,
            OciLayerGzip => DockerLayerGzip,
            OciLayerZstd => DockerLayerZstd,
            OciForeignLayerGzip => DockerForeignLayerGzip,
            OciForeignLayer
            | OciForeignLayerZstd
            | OciEmpty
            | DockerSchema1Manifest
            | DockerSchema1SignedManifest
            | Other(_) => {
                return Err(Error::WrongMediaTypeKind {
                    media_type: self.to_string(),
                    wanted: "convertible to Docker schema2",
                });
            }
        })
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MediaType {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(MediaType::new(s))
    }
}

impl From<&str> for MediaType {
    fn from(s: &str) -> Self {
        MediaType::new(s)
    }
}

impl serde::Serialize for MediaType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for MediaType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(MediaType::new(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_type_round_trips_through_its_string() {
        for m in MediaType::KNOWN {
            assert_eq!(&MediaType::new(m.as_str()), m);
            assert!(MediaType::parse_known(m.as_str()).is_ok());
        }
        assert!(matches!(MediaType::parse_known("application/x-nope"), Err(Error::UnknownMediaType(_))));
    }

    #[test]
    fn conversions_go_both_ways() {
        for m in MediaType::KNOWN {
            if let Ok(d) = m.to_docker() {
                assert_eq!(d.family(), Some(Family::Docker));
                if let Ok(back) = d.to_oci()
                    && m.family() == Some(Family::Oci)
                {
                    assert_eq!(&back, m, "{m} -> {d} -> {back}");
                }
            }
            if let Ok(o) = m.to_oci() {
                assert_eq!(o.family(), Some(Family::Oci));
                assert_eq!(o.is_layer(), m.is_layer());
                assert_eq!(o.layer_compression(), m.layer_compression());
            }
        }
        assert!(MediaType::DockerSchema1Manifest.to_oci().is_err());
        assert!(MediaType::Other("x".into()).to_docker().is_err());
    }

    #[test]
    fn sniffing() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
        assert_eq!(Compression::sniff(b"usr/"), Compression::None);
    }
}
