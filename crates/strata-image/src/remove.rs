//! `docker rmi` on an OCI image layout: untag, refuse what docker refuses, delete, prune
//! untagged parents, then collect the blobs nothing needs any more.
//!
//! An image is *in the store* while an entry of `index.json` reaches it, tagged or not;
//! removing its last tag leaves an untagged entry when it has children, as docker keeps an
//! untagged parent. A *child* is an image made on top of another
//! ([`ImageConfig::is_child_of`]); the *parent* is the closest image the store has that
//! it is a child of.

use std::collections::HashMap;

use strata_spec::{ANNOTATION_REF_NAME, Descriptor, Digest, ImageConfig, Index, Platform, Reference};
use strata_store::GcReport;

use crate::containers::ANNOTATION_CONTAINER;
use crate::error::{Conflict, Error, Result};
use crate::resolve::{self, Match};
use crate::store::Store;

/// Options of [`Store::remove`]: `docker rmi`'s flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoveOptions {
    /// `-f`/`--force`: an image named by id goes with every tag it has. (An image other
    /// images were made on is never deleted, as in docker.)
    pub force: bool,
    /// Delete the untagged parents of a deleted image that nothing else needs any more;
    /// `--no-prune` turns it off.
    pub prune: bool,
}

impl Default for RemoveOptions {
    fn default() -> Self {
        RemoveOptions { force: false, prune: true }
    }
}

impl RemoveOptions {
    /// Set `force`.
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Set `prune`.
    pub fn prune(mut self, prune: bool) -> Self {
        self.prune = prune;
        self
    }
}

/// One thing [`Store::remove`] did; `docker rmi` prints a line for each, in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Removed {
    /// A tag went: `Untagged: tomcat02:1.0` (the name as stored).
    Untagged(String),
    /// An image went: `Deleted: sha256:<image id>`.
    Image(Digest),
    /// A stack of layers no image of the store has any more, by chain id (see
    /// [`RootFs::chain_ids`](strata_spec::RootFs::chain_ids)), top layer first: the
    /// other `Deleted:` lines of docker's output. The layer blobs themselves go when GC
    /// finds nothing else uses them ([`RemoveReport::gc`]).
    Layer(Digest),
}

/// What [`Store::remove`] did.
#[derive(Debug, Default)]
pub struct RemoveReport {
    /// What was removed, name after name.
    pub removed: Vec<Removed>,
    /// The names that could not be removed, and why; the others were removed (as
    /// `docker rmi` goes on with the next name).
    pub failed: Vec<(String, Error)>,
    /// What GC removed after: the blobs of deleted images no other image uses. `None`
    /// when no image was deleted, or when GC refused to run (an image the index lists
    /// cannot be read): the blobs then stay until a `gc` that can.
    pub gc: Option<GcReport>,
}

impl Store {
    /// Remove images like `docker rmi`, name after name:
    ///
    /// - a tag is removed; when it was the image's last tag, the image is deleted too,
    ///   unless another image was made on top of it (then it stays, untagged);
    /// - an image named by id (or its start, or a digest) is deleted with its tag; one
    ///   that several tags name needs `opts.force` ([`Conflict::MultipleTags`]), and one
    ///   that other images were made on is never deleted
    ///   ([`Conflict::DependentChildren`]);
    /// - the untagged parents of a deleted image that have no other child go too, unless
    ///   `opts.prune` is off.
    ///
    /// A name that fails (not found, a conflict) is reported in
    /// [`RemoveReport::failed`] and the next name is removed all the same. Blobs no image
    /// needs any more are then removed (GC).
    pub fn remove(&self, names: &[&str], opts: &RemoveOptions) -> Result<RemoveReport> {
        let mut report = RemoveReport::default();
        for name in names {
            match self.remove_one(name, opts) {
                Ok(done) => report.removed.extend(done),
                Err(e) => report.failed.push(((*name).to_owned(), e)),
            }
        }
        if report.removed.iter().any(|r| matches!(r, Removed::Image(_))) {
            // A store GC refuses to collect (an image the index lists is missing or
            // unreadable) keeps the deleted images' blobs until a later `gc`: the
            // removal itself is done.
            report.gc = match self.gc(false) {
                Ok(gc) => Some(gc),
                Err(Error::Store(strata_store::Error::GcAborted { .. })) => None,
                Err(e) => return Err(e),
            };
        }
        Ok(report)
    }

    fn remove_one(&self, name: &str, opts: &RemoveOptions) -> Result<Vec<Removed>> {
        let matched = resolve::classify_in(self.backend(), name)?;
        let image = match (self.image(name), &matched) {
            (Ok(img), _) => img,
            // A tag whose image cannot be read (a blob is missing): the tag can still go.
            (Err(_), Match::Ref(stored, _)) => {
                self.backend().remove_ref(stored)?;
                return Ok(vec![Removed::Untagged(stored.clone())]);
            }
            (Err(e), _) => return Err(e),
        };
        // Docker's rule: the id path when what was typed is the start of the image's id.
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        let by_id = matches!(matched, Match::Digest(_) | Match::Prefix(_))
            || (!hex.is_empty() && image.id().hex().starts_with(hex));
        let tag = match matched {
            Match::Ref(stored, _) if !by_id => Some(stored),
            _ => None,
        };
        // A tag of content another tag still names: docker only untags (no image goes, no
        // container can object), which needs no model of the whole index.
        if let Some(stored) = &tag
            && self.backend().remove_ref_if_shared(stored)?.is_some()
        {
            return Ok(vec![Removed::Untagged(stored.clone())]);
        }

        let users = match self.path() {
            Some(_) => self.containers()?.image_users()?,
            None => Vec::new(),
        };
        let mut outcome: Result<Vec<Removed>> = Ok(Vec::new());
        let host = Platform::host();
        self.backend().update_index(&mut |index| {
            outcome = Model::read(self, index, &host, users.clone()).and_then(|mut model| {
                let out = model.remove(image.id(), tag.as_deref(), name, opts)?;
                model.write(index);
                Ok(out)
            });
            // A failure changes nothing: the index is written only when `index` changed.
            Ok(())
        })?;
        outcome
    }
}

/// An image of the index: its id and config.
struct Node {
    id: Digest,
    config: ImageConfig,
    chain_ids: Vec<Digest>,
}

/// The index as images: its entries (in order) and the image each reaches; the
/// entries that keep containers' images, apart and untouched; the containers (image id,
/// short container id, running).
struct Model {
    entries: Vec<(Descriptor, Option<usize>)>,
    nodes: Vec<Node>,
    /// Per node: how many entries reach it (so "is it live" is no scan of the entries).
    reached: Vec<usize>,
    kept: Vec<Descriptor>,
    /// The layer chains the kept entries' images have: a container holds them.
    kept_chains: std::collections::HashSet<Digest>,
    users: Vec<(Digest, String, bool)>,
}

impl Model {
    fn read(store: &Store, index: &Index, platform: &Platform, users: Vec<(Digest, String, bool)>) -> Result<Model> {
        let listed = store.open_listed(index, platform);
        let mut model = Model {
            entries: Vec::with_capacity(index.manifests.len()),
            nodes: Vec::new(),
            reached: Vec::new(),
            kept: Vec::new(),
            kept_chains: Default::default(),
            users,
        };
        // Per listed image: its node (images with one id, say a manifest and an index
        // picking it, are one node).
        let mut by_id: HashMap<&Digest, usize> = HashMap::new();
        for (d, &slot) in index.manifests.iter().zip(&listed.entry) {
            // Not an image this platform can read: left as it is.
            let img = listed.images.get(slot).and_then(|r| r.as_ref().ok());
            if d.annotation(ANNOTATION_CONTAINER).is_some() {
                if let Some(img) = img {
                    model.kept_chains.extend(img.config().rootfs.chain_ids());
                }
                model.kept.push(d.clone());
                continue;
            }
            let node = img.map(|img| {
                *by_id.entry(img.id()).or_insert_with(|| {
                    let chain_ids = img.config().rootfs.chain_ids();
                    model.nodes.push(Node { id: img.id().clone(), config: img.config().clone(), chain_ids });
                    model.reached.push(0);
                    model.nodes.len() - 1
                })
            });
            if let Some(n) = node {
                model.reached[n] += 1;
            }
            model.entries.push((d.clone(), node));
        }
        Ok(model)
    }

    fn write(self, index: &mut Index) {
        index.manifests = self.entries.into_iter().map(|(d, _)| d).chain(self.kept).collect();
    }

    /// A container made from `node`'s image: (short id, running), running ones first.
    fn user(&self, node: usize) -> Option<(&str, bool)> {
        let id = &self.nodes[node].id;
        let mut users: Vec<&(Digest, String, bool)> = self.users.iter().filter(|u| &u.0 == id).collect();
        users.sort_by_key(|u| !u.2);
        users.first().map(|u| (u.1.as_str(), u.2))
    }

    /// docker's `ImageDelete` for one name: `tag` when it was named by a tag.
    fn remove(&mut self, id: &Digest, tag: Option<&str>, name: &str, opts: &RemoveOptions) -> Result<Vec<Removed>> {
        let not_found = || Error::ImageNotFound(name.to_owned());
        let node = self.nodes.iter().position(|n| n.id == *id).ok_or_else(not_found)?;
        let mut out = Vec::new();
        let mut quiet = false;
        match tag {
            Some(stored) => {
                let at = self.entries.iter().position(|(d, _)| d.ref_name() == Some(stored)).ok_or_else(not_found)?;
                // docker's rule: the last tag of an image a container uses goes only by force
                // (the image would be left dangling).
                if !opts.force
                    && self.tags(node).len() == 1
                    && let Some((container, _)) = self.user(node)
                {
                    return Err(Error::ReferenceInUse {
                        reference: name.to_owned(),
                        container: container.to_owned(),
                        image: id.clone(),
                    });
                }
                self.untag(at, &mut out);
                if !self.tags(node).is_empty() {
                    return Ok(out);
                }
                // The last tag: the image goes too, unless something holds it.
                quiet = true;
            }
            None => {
                let tags = self.tags(node);
                if let [only] = tags[..] {
                    self.check(node, true, opts.force)?;
                    self.untag(only, &mut out);
                }
            }
        }
        self.delete(node, opts.force, opts.prune, quiet, &mut out)?;
        Ok(out)
    }

    /// docker's `imageDeleteHelper`: delete `node` unless a conflict holds it (an error,
    /// or nothing when `quiet`), then its untagged parent the same way when `prune`.
    fn delete(&mut self, node: usize, force: bool, prune: bool, quiet: bool, out: &mut Vec<Removed>) -> Result<()> {
        if let Err(e) = self.check(node, force, force) {
            return if quiet { Ok(()) } else { Err(e) };
        }
        let parent = self.parent(node);
        let mut tags: Vec<(String, String)> = self
            .tags(node)
            .into_iter()
            .filter_map(|i| self.entries[i].0.ref_name().map(str::to_owned))
            .map(|n| (Reference::parse(&n).map_or_else(|_| n.clone(), |r| r.to_string()), n))
            .collect();
        // In docker's order: by the full reference.
        tags.sort();
        out.extend(tags.into_iter().map(|(_, n)| Removed::Untagged(n)));
        self.entries.retain(|(_, n)| *n != Some(node));
        self.reached[node] = 0;
        out.push(Removed::Image(self.nodes[node].id.clone()));
        let live: std::collections::HashSet<&Digest> = (0..self.nodes.len())
            .filter(|&n| self.is_live(n))
            .flat_map(|n| &self.nodes[n].chain_ids)
            .chain(&self.kept_chains)
            .collect();
        let gone: Vec<Removed> = self.nodes[node]
            .chain_ids
            .iter()
            .rev()
            .filter(|c| !live.contains(c))
            .cloned()
            .map(Removed::Layer)
            .collect();
        out.extend(gone);
        match parent {
            Some(p) if prune => self.delete(p, false, true, true, out),
            _ => Ok(()),
        }
    }

    /// The conflict that keeps `node` from being deleted, in docker's order: children and
    /// running containers always, tags unless `ignore_tags`, stopped containers unless
    /// `force`.
    fn check(&self, node: usize, ignore_tags: bool, force: bool) -> Result<()> {
        let conflict = |reason| Err(Error::Conflict { image: self.nodes[node].id.clone(), reason });
        let me = &self.nodes[node].config;
        if (0..self.nodes.len()).any(|n| n != node && self.is_live(n) && self.nodes[n].config.is_child_of(me)) {
            return conflict(Conflict::DependentChildren);
        }
        let user = self.user(node);
        if let Some((c, true)) = user {
            return conflict(Conflict::RunningContainer(c.to_owned()));
        }
        if !ignore_tags && !self.tags(node).is_empty() {
            return conflict(Conflict::MultipleTags);
        }
        if let Some((c, false)) = user.filter(|_| !force) {
            return conflict(Conflict::StoppedContainer(c.to_owned()));
        }
        Ok(())
    }

    /// Remove the tag of entry `at`; the image stays, untagged, when no other entry
    /// reaches it.
    fn untag(&mut self, at: usize, out: &mut Vec<Removed>) {
        let (desc, node) = self.entries.remove(at);
        if let Some(name) = desc.ref_name() {
            out.push(Removed::Untagged(name.to_owned()));
        }
        if let Some(n) = node {
            self.reached[n] -= 1;
        }
        if let Some(n) = node.filter(|&n| self.reached[n] == 0) {
            self.reached[n] += 1;
            let mut untagged = desc;
            if let Some(a) = untagged.annotations.as_mut() {
                a.remove(ANNOTATION_REF_NAME);
            }
            if untagged.annotations.as_ref().is_some_and(|a| a.is_empty()) {
                untagged.annotations = None;
            }
            self.entries.insert(at, (untagged, node));
        }
    }

    fn tags(&self, node: usize) -> Vec<usize> {
        (0..self.entries.len())
            .filter(|&i| self.entries[i].1 == Some(node) && self.entries[i].0.ref_name().is_some())
            .collect()
    }

    fn is_live(&self, node: usize) -> bool {
        self.reached[node] > 0
    }

    /// The closest live image `node` is a child of.
    fn parent(&self, node: usize) -> Option<usize> {
        let me = &self.nodes[node].config;
        (0..self.nodes.len())
            .filter(|&p| p != node && self.is_live(p) && me.is_child_of(&self.nodes[p].config))
            .max_by_key(|&p| self.nodes[p].config.history().len())
    }
}
