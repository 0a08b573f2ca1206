//! The render pipeline: references in manifests in, finished manifests out, all or nothing.
//!
//! 1. [`input`] turns what the user points at (a kustomization, a Helm chart, a folder of YAML,
//!    a stream on stdin) into documents.
//! 2. [`render`] collects every reference of every document, fetches each distinct
//!    `(store, path, version)` exactly once with bounded concurrency, then substitutes: keys are
//!    picked, modifiers applied, `data` of a Secret base64-encoded.
//! 3. Any failure anywhere means an error list and no documents; so does a Secret that still
//!    carries a reference marker afterwards ([`guard`]).
//!
//! This crate does not parse reference syntax (`kustodian-refs`), speak to stores
//! (`kustodian-stores`) or print anything.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod check;
mod error;
pub mod eso;
pub mod guard;
pub mod input;
mod modifiers;
mod pipeline;

pub use error::{RenderError, StoreWide};
pub use pipeline::{render, Options, Rendered, Stats};
