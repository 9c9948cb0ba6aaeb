//! Referrers over the distribution API (distribution-spec 1.1): listing them with the
//! referrers API (`GET /v2/<repo>/referrers/<digest>`), or, where a registry has none
//! (distribution 2.8 answers 404), through the referrers tag schema: an OCI index
//! tagged `<alg>-<hex>` of the subject's digest.

use strata_spec::{Descriptor, Digest, Index, MediaType, referrers_tag};
use strata_store::MAX_DOCUMENT_SIZE;

use crate::client::{Body, Client, Method, Request, Scope, drain, read_limited};
use crate::error::{Error, Result};

/// `GET` an OCI index at `path`; `None` on 404.
fn get_index(client: &Client, path: &str, scope: &Scope) -> Result<Option<Index>> {
    let url = client.url(path)?;
    let resp =
        client.send(Request::new(Method::Get, url.clone()).header("Accept", MediaType::OciIndex.as_str()), scope)?;
    if resp.status().as_u16() == 404 {
        drain(resp);
        return Ok(None);
    }
    let resp = client.check(Method::Get, &url, resp, &[200], scope)?;
    let bytes = read_limited(resp, MAX_DOCUMENT_SIZE, &url)?;
    let index = Index::from_slice(&bytes).map_err(|source| Error::BadDocument { reference: url, source })?;
    Ok(Some(index))
}

/// The referrers of `subject` in `repo`: from the referrers API, else from the tag
/// schema's index, else none.
pub(crate) fn list(client: &Client, repo: &str, subject: &Digest, scope: &Scope) -> Result<Vec<Descriptor>> {
    if let Some(index) = get_index(client, &format!("/v2/{repo}/referrers/{subject}"), scope)? {
        return Ok(index.manifests);
    }
    let tag = referrers_tag(subject);
    Ok(get_index(client, &format!("/v2/{repo}/manifests/{tag}"), scope)?.map(|i| i.manifests).unwrap_or_default())
}

/// Add `referrer` to the tag schema's index of `subject` in `repo` (created when the
/// tag is absent; a descriptor already listed is not added twice), as a client must
/// after pushing a manifest with a `subject` to a registry that did not answer with
/// `OCI-Subject`.
pub(crate) fn add_to_tag_schema(
    client: &Client,
    repo: &str,
    subject: &Digest,
    referrer: &Descriptor,
    scope: &Scope,
) -> Result<()> {
    let tag = referrers_tag(subject);
    let mut index = get_index(client, &format!("/v2/{repo}/manifests/{tag}"), scope)?
        .unwrap_or_else(|| Index::new(Some(MediaType::OciIndex)));
    if index.manifests.iter().any(|d| d.digest == referrer.digest) {
        return Ok(());
    }
    index.manifests.push(referrer.clone());
    let bytes = index.to_canonical_json();
    let url = client.url(&format!("/v2/{repo}/manifests/{tag}"))?;
    let req = Request::new(Method::Put, url.clone())
        .header("Content-Type", MediaType::OciIndex.as_str())
        .body(Body::Bytes(&bytes));
    let resp = client.send(req, scope)?;
    drain(client.check(Method::Put, &url, resp, &[200, 201, 202], scope)?);
    Ok(())
}
