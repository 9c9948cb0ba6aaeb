//! strata side by side with a real docker engine (`strata_testkit::docker`): the same
//! operation through both, the outcomes compared. Each module covers one part of
//! docker's behaviour; `docs/docker-compat.md` lists what differs and why.

mod both;
mod changes;
mod containers;
mod format;
mod ids;
mod messages;
mod references;
mod rmi;
