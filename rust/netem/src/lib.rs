//! lambdaroute's delay element, for kernels without the netem qdisc (DESIGN.md §7).
//!
//! iptables rules send packets to NFQUEUE queues; the element takes each queued packet, decides
//! at once whether it is lost (probability `loss`, from a seeded generator), and otherwise holds
//! it for the queue's `delay` and then accepts it. Every packet of one queue waits the same
//! delay, so a queue releases its packets in the order they arrived.
//!
//! - [`delay_line`]: the pure part, what to hold, drop and release when, under an injected
//!   clock (tested without sockets or sleeps);
//! - [`element`] (Linux): the NFQUEUE loop over the `nfq` crate that drives a [`DelayLine`] in
//!   real time.

pub mod delay_line;
#[cfg(target_os = "linux")]
pub mod element;

pub use delay_line::{Admission, DelayLine, QueueSpec, SpecError};
