//! `passerelle central`.

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum CentralCommand {}

pub(crate) fn run(command: CentralCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
