//! One module per subcommand; each exposes its clap `...Command` and a `run` function.

pub(crate) mod audit;
pub(crate) mod bench;
pub(crate) mod call;
pub(crate) mod catalog;
pub(crate) mod central;
pub(crate) mod demo;
pub(crate) mod pki;
pub(crate) mod server;
