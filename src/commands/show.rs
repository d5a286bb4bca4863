//! `cbr show`.

use super::{Global, Outcome};
use crate::cli::ShowArgs;
use anyhow::Result;

pub fn run(_g: &Global, _args: ShowArgs) -> Result<Outcome> {
    anyhow::bail!("`cbr show` is not implemented yet")
}
