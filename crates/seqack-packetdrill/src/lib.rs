//! A packetdrill-syntax script runner for seqack.
//!
//! The language (lexer, parser, AST) follows packetdrill's grammar; the runner drives a
//! fresh seqack [`Stack`](seqack::Stack) per script in virtual time, through a small fake
//! kernel (file descriptors, sockets, errno) that turns the script's system calls into
//! stack commands, and checks every packet the stack sends against the script.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ast;
pub mod kernel;
pub mod lexer;
pub mod parser;
pub mod runner;
mod shell;
pub mod symbols;
mod syscalls;
pub mod wire;

pub use runner::{run_script, Failure, Profile, Report, RunOptions, Skipped};
