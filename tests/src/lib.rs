//! Helpers shared by the black-box tests, and the side-by-side benchmark (`bench`), whose
//! load generator is the `deepstream-bench` binary.

pub mod bench;
