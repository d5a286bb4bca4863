//! `cbr check`.

use super::{Global, Outcome};
use crate::cli::CheckArgs;
use anyhow::Result;

pub fn run(_g: &Global, _args: CheckArgs) -> Result<Outcome> {
    anyhow::bail!("`cbr check` is not implemented yet")
}
