//! The store's tags as typed values ([`Store::tags`]), apart from the rows
//! `docker images` shows ([`Store::images`]).

use strata_spec::Descriptor;

use crate::error::Result;
use crate::resolve;
use crate::store::Store;

/// One tag of a store: its name and what it points at.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Tag {
    /// The name as stored (`tomcat02:1.0`, `127.0.0.1:5000/base:latest`).
    pub name: String,
    /// Its repository part (`tomcat02`).
    pub repository: String,
    /// Its tag part (`1.0`).
    pub tag: String,
    /// The manifest or index it points at (without the ref-name annotation).
    pub descriptor: Descriptor,
}

impl Store {
    /// Every tag, sorted by name. Reads only the index: no manifest or config is
    /// opened (open one with [`Store::image`] by its name).
    pub fn tags(&self) -> Result<Vec<Tag>> {
        let mut tags: Vec<Tag> = self
            .backend()
            .refs()?
            .into_iter()
            .map(|(name, mut descriptor)| {
                let (repository, tag) = resolve::split_name(&name);
                if let Some(a) = descriptor.annotations.as_mut() {
                    a.remove(strata_spec::ANNOTATION_REF_NAME);
                }
                if descriptor.annotations.as_ref().is_some_and(|a| a.is_empty()) {
                    descriptor.annotations = None;
                }
                Tag { name, repository, tag, descriptor }
            })
            .collect();
        tags.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(tags)
    }
}

#[cfg(test)]
mod tests {
    use crate::{CommitOptions, LayerBuilder, LayerInput, Store};

    #[test]
    fn tags_are_sorted_typed_and_point_at_their_images() {
        let store = Store::in_memory();
        let mut files = LayerBuilder::new();
        files.file("etc/motd", b"hi".to_vec());
        let a = store.import(LayerInput::Files(&files), &CommitOptions::default().tag("zeta:1")).unwrap();
        store.tag(&a, "alpha").unwrap();
        store.tag(&a, "127.0.0.1:5000/x/y:2").unwrap();
        let tags = store.tags().unwrap();
        let names: Vec<&str> = tags.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["127.0.0.1:5000/x/y:2", "alpha:latest", "zeta:1"]);
        assert_eq!((tags[0].repository.as_str(), tags[0].tag.as_str()), ("127.0.0.1:5000/x/y", "2"));
        for t in &tags {
            assert_eq!(t.descriptor.digest, *a.digest());
            assert!(t.descriptor.annotations.is_none(), "{t:?}");
            assert_eq!(store.image(&t.name).unwrap().id(), a.id());
        }
    }
}
