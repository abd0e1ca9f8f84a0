//! The `lambdaroute` binary: one subcommand per role. It parses the command line and hands over
//! to `lambdaroute-node`; nothing else lives here.

fn main() {}
