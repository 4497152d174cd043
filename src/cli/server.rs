//! `passerelle server`.

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ServerCommand {}

pub(crate) fn run(command: ServerCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
