//! `cbr lint`.

use super::{Global, Outcome};
use crate::cli::LintArgs;
use anyhow::Result;

pub fn run(_g: &Global, _args: LintArgs) -> Result<Outcome> {
    anyhow::bail!("`cbr lint` is not implemented yet")
}
