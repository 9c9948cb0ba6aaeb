//! Tests of the merged view (strata-layer's union merge in memory): its semantics
//! against the applier's, table by table and on random layers; the laws of the differ,
//! the writer, the applier and the merged view over generated trees; export; a real
//! peer (umoci, GNU tar).

// The applier's entry builders and sandboxes, and the writer's tree fixtures.
#[path = "../write/fixture.rs"]
#[allow(dead_code)]
mod fixture;
#[path = "../apply/util.rs"]
#[allow(dead_code)]
mod util;

mod common;
mod conformance;
mod differential;
mod laws;
mod peer;
mod plan;
mod semantics;
