//! The roles of lambdaroute over tokio and tonic. Each module is one role; the `lambdaroute`
//! binary only parses the command line and calls into here.
pub mod bench;
pub mod client;
pub mod computer;
pub mod controller;
pub mod destinations;
pub mod membership;
pub mod router;
pub mod table_tool;
