//! `cbr recover`.

use super::{Global, Outcome};
use crate::cli::RecoverArgs;
use anyhow::Result;

pub fn run(_g: &Global, _args: RecoverArgs) -> Result<Outcome> {
    anyhow::bail!("`cbr recover` is not implemented yet")
}
