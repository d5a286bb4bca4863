//! `cbr encode`.

use super::{Global, Outcome};
use crate::cli::EncodeArgs;
use anyhow::Result;

pub fn run(_g: &Global, _args: EncodeArgs) -> Result<Outcome> {
    anyhow::bail!("`cbr encode` is not implemented yet")
}
