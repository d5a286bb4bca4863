//! `cbr verify`.

use super::{Global, Outcome};
use crate::cli::VerifyArgs;
use anyhow::Result;

pub fn run(_g: &Global, _args: VerifyArgs) -> Result<Outcome> {
    anyhow::bail!("`cbr verify` is not implemented yet")
}
