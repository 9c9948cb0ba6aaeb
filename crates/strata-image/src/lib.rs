//! strata-image: the image model (under construction).

pub mod inspect;
