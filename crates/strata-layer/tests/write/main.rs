//! Tests of the writing side of strata-layer: the layer writer, snapshots, the three
//! differs, their laws (property tests) and real peers (umoci, gzip, pigz, tar).

mod differs;
mod fixture;
mod laws;
mod layers;
mod peers;
mod snapshots;
mod writer;
