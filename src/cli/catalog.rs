//! `passerelle catalog`.

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum CatalogCommand {}

pub(crate) fn run(command: CatalogCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
