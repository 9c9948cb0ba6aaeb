//! Integration tests against a real registry (Debian's docker-registry, distribution
//! 2.8), a token server, skopeo, and fake servers for the faults a real registry does
//! not make on demand.

mod auth;
mod common;
mod faults;
mod interop;
mod platforms;
mod transfer;
