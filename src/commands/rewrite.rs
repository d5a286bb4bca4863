//! `cbr rewrite`.

use super::{Global, Outcome};
use crate::cli::RewriteArgs;
use anyhow::Result;

pub fn run(_g: &Global, _args: RewriteArgs) -> Result<Outcome> {
    anyhow::bail!("`cbr rewrite` is not implemented yet")
}
