//! One module per subcommand.

pub mod audit;
pub mod bench;
pub mod certs;
pub mod demo;
pub mod init;
pub mod keys;
pub mod serve;
pub mod state;
mod support;
pub mod wallet;
