//! `passerelle pki`.

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum PkiCommand {}

pub(crate) fn run(command: PkiCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
