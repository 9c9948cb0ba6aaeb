//! Interop with umoci, skopeo and oci-image-tool.
