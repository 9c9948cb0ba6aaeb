//! strata-build: the parser on real-world snippets, builds without RUN (config, history,
//! trees), the cache, RUN in namespaces (root), ADD of URLs, and agreement with buildah and umoci.

mod common;
mod fetch;
mod interop;
mod mounts;
mod parallel;
mod parser;
mod platform;
mod reproducible;
mod run;
mod shared_cache;
mod steps;
mod syntax;
