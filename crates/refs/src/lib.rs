//! The reference grammar of kustodian: finds secret references in a string
//! and turns them into one syntax tree.
//!
//! Three forms are understood, anywhere in a string and several per string
//! (see `docs/reference-grammar.md` for the full grammar):
//!
//! - argocd-vault-plugin inline-path placeholders,
//!   `<path:secret/data/app#password>`, `<path:PATH#KEY#VERSION>`, with
//!   modifiers: `<path:secret/data/app#tls | jsonPath {.crt} | base64encode>`;
//! - argocd-vault-plugin generic placeholders, `<password>`, which only mean
//!   something in a document annotated `avp.kubernetes.io/path`: they are
//!   returned only by [`parse_all_with_generic`] and
//!   [`is_whole_reference_with_generic`], so the caller decides;
//! - vals URIs, `ref+vault://secret/data/app?version=2#/password`, with an
//!   optional trailing `+` that ends the URI before more text;
//! - 1Password secret references, `op://VAULT/ITEM[/SECTION]/FIELD`, as a
//!   whole string or inside `{{ }}` (`op inject` templates), returned as vals
//!   references of scheme `op` with [`ValsRef::bare`] set.
//!
//! Each [`Reference`] carries its byte span, so [`substitute`] can put
//! resolved values back, and prints itself in canonical form with `Display`
//! (references are not secrets, so they are safe in messages).
//!
//! ```
//! use kustodian_refs::{parse_all, RefKind, substitute};
//!
//! let s = "postgres://<path:secret/data/db#user>:ref+sops://db.yaml#/password+@db";
//! let refs = parse_all(s).unwrap();
//! assert_eq!(refs.len(), 2);
//! assert!(matches!(&refs[0].kind, RefKind::AvpPath { key, .. } if key == "user"));
//! let out = substitute(s, &refs, |r| match &r.kind {
//!     RefKind::AvpPath { .. } => Ok::<_, ()>("app"),
//!     _ => Ok("hunter2"),
//! });
//! assert_eq!(out.unwrap(), "postgres://app:hunter2@db");
//! ```
//!
//! What it does not do: it fetches nothing, knows no stores or schemes (any
//! well-formed `ref+SCHEME://` parses), applies no modifiers, reads no
//! annotations and walks no YAML. It is pure: strings in, syntax tree out.
//! It never panics, and takes time linear in the input.
//!
//! Text that merely looks like markup (`<b>bold</b>`, `a < b`, `git ref+1`)
//! is not a reference and not an error. Text that clearly starts a reference
//! but is malformed (`<path:` without `#KEY` or `>`, an unknown modifier,
//! `ref+vault://` with a broken fragment) is a [`ParseError`] with a byte
//! offset and a message saying how to fix it.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod ast;
mod error;
mod parser;

pub use ast::{Modifier, RefKind, Reference, ValsRef};
pub use error::ParseError;

/// Substrings of which at least one is in every string holding an inline-path
/// placeholder or a vals URI (and in every string whose parse fails), for
/// callers that prefilter large inputs with their own multi-pattern search.
pub const PREFILTER_NEEDLES: [&str; 3] = ["<path:", "ref+", "op://"];

/// Every inline-path placeholder and vals URI in `s`, in order. Generic
/// `<KEY>` placeholders are not looked for: use [`parse_all_with_generic`] in
/// documents annotated `avp.kubernetes.io/path`.
///
/// Returns the first error when a reference is malformed.
pub fn parse_all(s: &str) -> Result<Vec<Reference>, ParseError> {
    if !contains_reference(s) {
        return Ok(Vec::new());
    }
    parser::parse(s, false)
}

/// Like [`parse_all`], and also returns generic `<KEY>` placeholders as
/// [`RefKind::AvpGeneric`]. A generic placeholder is `<`, a key with no
/// whitespace, `<` or `>`, optional `| modifier`s, and `>`, all on one line.
pub fn parse_all_with_generic(s: &str) -> Result<Vec<Reference>, ParseError> {
    parser::parse(s, true)
}

/// Cheap check: `false` means [`parse_all`] finds nothing and reports no
/// error; `true` means `s` contains `<path:`, `ref+` or `op://` and may hold a
/// reference (parse to be sure).
pub fn contains_reference(s: &str) -> bool {
    PREFILTER_NEEDLES.iter().any(|n| s.contains(n))
}

/// Like [`contains_reference`], for [`parse_all_with_generic`]: also `true`
/// when `s` has a `<` followed later by a `>`.
pub fn contains_reference_with_generic(s: &str) -> bool {
    contains_reference(s) || s.find('<').is_some_and(|p| s[p..].contains('>'))
}

/// Whether `s` is nothing but references (inline-path placeholders or vals
/// URIs) and whitespace, with at least one reference and no malformed one.
/// Such a value holds no secret text itself.
pub fn is_whole_reference(s: &str) -> bool {
    parse_all(s).is_ok_and(|refs| only_references(s, &refs))
}

/// Like [`is_whole_reference`], also counting generic `<KEY>` placeholders;
/// for documents annotated `avp.kubernetes.io/path`.
pub fn is_whole_reference_with_generic(s: &str) -> bool {
    parse_all_with_generic(s).is_ok_and(|refs| only_references(s, &refs))
}

fn only_references(s: &str, refs: &[Reference]) -> bool {
    if refs.is_empty() {
        return false;
    }
    let mut last = 0;
    for r in refs {
        match s.get(last..r.span.start) {
            Some(gap) if gap.trim().is_empty() => last = r.span.end,
            _ => return false,
        }
    }
    s.get(last..).is_some_and(|tail| tail.trim().is_empty())
}

/// Replaces each reference's span in `input` with what `resolve` returns for
/// it, left to right, and returns the new string; stops at the first error.
///
/// `refs` are those parsed from `input` (in order, not overlapping). A
/// reference whose span is out of order, out of range or not on `char`
/// boundaries is left as it is in the text rather than panicking.
pub fn substitute<S, E, F>(input: &str, refs: &[Reference], mut resolve: F) -> Result<String, E>
where
    F: FnMut(&Reference) -> Result<S, E>,
    S: AsRef<str>,
{
    let mut out = String::with_capacity(input.len());
    let mut last = 0;
    for r in refs {
        let (start, end) = (r.span.start, r.span.end);
        if start < last || end < start || input.get(start..end).is_none() {
            continue;
        }
        let value = resolve(r)?;
        out.push_str(&input[last..start]);
        out.push_str(value.as_ref());
        last = end;
    }
    out.push_str(&input[last..]);
    Ok(out)
}

#[cfg(test)]
mod tests;
