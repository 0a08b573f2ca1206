//! Kubernetes manifests as YAML/JSON documents with source positions.
//!
//! `kustodian-manifest` reads a YAML stream (several `---` documents, JSON, flow style, block
//! scalars, anchors and aliases with a bound on expansion, a UTF-8 BOM, CRLF line endings) into a
//! small tree of [`Node`]s in which every key and scalar knows its line, column and byte range.
//! It also writes such trees back out as a deterministic YAML stream ([`emit_stream`]) and offers
//! read-only helpers for Kubernetes objects ([`Object`]): kind, name, namespace, annotations and
//! the items of a `kind: List`. [`parse_stream_partial`] keeps the documents read before a
//! problem and lists repeated keys ([`Duplicate`]), for callers that must not fail open.
//!
//! Its one piece of I/O is [`read`]: bounded reads of regular files and streams, shared by every
//! crate so that no input (`/dev/zero`, a FIFO, a 1 GB file) can grow without bound.
//!
//! It does not know about secrets or references, and does not keep comments: callers that need
//! the raw text of a line (for `# kustodian:allow`, say) keep the source.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod emit;
mod json;
mod k8s;
mod node;
mod parse;
pub mod read;
mod span;

pub use emit::{
    emit_document, emit_stream, literal_block_ok, quote_if_needed, write_literal_block,
};
pub use k8s::{objects, Object};
pub use node::{Entry, Node, NodeKind, PathItem, ScalarStyle, ScalarType};
pub use parse::{
    parse_stream, parse_stream_partial, parse_stream_with, Document, Duplicate, Limits, ParseError,
    Parsed, MAX_DUPLICATES,
};
pub use read::{read_bounded, read_to_string_bounded, ReadError};
pub use span::{Pos, Span};
