//! `cbr decode`.

use super::{Global, Outcome};
use crate::cli::DecodeArgs;
use anyhow::Result;

pub fn run(_g: &Global, _args: DecodeArgs) -> Result<Outcome> {
    anyhow::bail!("`cbr decode` is not implemented yet")
}
