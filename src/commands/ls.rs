//! `cbr ls`.

use super::{Global, Outcome};
use crate::cli::LsArgs;
use anyhow::Result;

pub fn run(_g: &Global, _args: LsArgs) -> Result<Outcome> {
    anyhow::bail!("`cbr ls` is not implemented yet")
}
