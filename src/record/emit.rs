//! See the module list in `record/mod.rs`.
