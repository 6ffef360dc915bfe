//! Peer servers for socketgate's server comparison (`bench/compare.sh`).
//!
//! Each binary implements the benchmark contract of socketgate's DESIGN.md
//! §6 on namespace `/`: event `echo` is emitted back to the sender with the
//! same arguments, event `broadcast` is emitted as `bcast` with the same
//! arguments to every connected socket, sender included.
//!
//! - `socketioxide-server`: the contract on socketioxide 0.18.9 (WebSocket
//!   and polling), written with the library's own idioms.
//! - `bare-server`: just enough engine.io v4 / socket.io v5 over WebSocket
//!   on tokio-tungstenite, the practical upper limit for one core.

#![forbid(unsafe_code)]

pub mod cli;
