//! `cbr restore`.

use super::{Global, Outcome};
use crate::cli::RestoreArgs;
use anyhow::Result;

pub fn run(_g: &Global, _args: RestoreArgs) -> Result<Outcome> {
    anyhow::bail!("`cbr restore` is not implemented yet")
}
