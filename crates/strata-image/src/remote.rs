//! Pull and push through the image model (feature `registry`): `store.pull(ref)` and
//! `store.push(&image, ref)`, over [`strata_registry`].

use strata_registry::{PullOptions, Pulled, PushOptions, Pushed};
use strata_spec::Reference;
use strata_spec::progress::Progress;

use crate::error::{Error, Result};
use crate::image::Image;
use crate::store::Store;

/// Registry transfers.
impl Store {
    /// `docker pull REF`: fetch the image (the host platform's, when `reference` names
    /// an index) with the default options, tag it as the reference's familiar form
    /// (`ubuntu:latest`, `127.0.0.1:5000/base:1`) and open it.
    pub fn pull(&self, reference: &str) -> Result<Image> {
        let reference = Reference::parse(reference)?;
        Ok(self.pull_with(&reference, &PullOptions::default(), &strata_registry::NoProgress)?.0)
    }

    /// [`Store::pull`] with every option, reporting `Blob*` events to `progress`;
    /// returns the image and what the pull did.
    pub fn pull_with(
        &self,
        reference: &Reference,
        options: &PullOptions,
        progress: &dyn Progress,
    ) -> Result<(Image, Pulled)> {
        let pulled = strata_registry::pull(self.backend(), reference, options, progress)?;
        let image =
            self.image_at(&pulled.descriptor, &options.platform.clone().unwrap_or_else(strata_spec::Platform::host))?;
        self.index_layers(&image)?;
        Ok((image.with_name(Some(pulled.ref_name.clone())), pulled))
    }

    /// `docker push`: send `image` (its index, when it was opened through one) to
    /// `reference` with the default options.
    pub fn push(&self, image: &Image, reference: &str) -> Result<Pushed> {
        let reference = Reference::parse(reference)?;
        self.push_with(image, &reference, &PushOptions::default(), &strata_registry::NoProgress)
    }

    /// [`Store::push`] with every option, reporting `Blob*` events to `progress`.
    pub fn push_with(
        &self,
        image: &Image,
        reference: &Reference,
        options: &PushOptions,
        progress: &dyn Progress,
    ) -> Result<Pushed> {
        Ok(strata_registry::push(self.backend(), image.tag_target(), reference, options, progress)?)
    }
}

impl From<strata_registry::Error> for Error {
    fn from(e: strata_registry::Error) -> Self {
        Error::Registry(Box::new(e))
    }
}
