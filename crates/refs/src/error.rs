//! The one error type of the parser.

use thiserror::Error;

use crate::ast::MODIFIER_LIST;

/// Why a string that clearly starts a reference could not be parsed.
///
/// Every variant carries `offset`, the byte offset in the parsed string where
/// the problem was found, and its message says what was expected and how to
/// fix it. Messages quote no input text except a mistyped modifier name, so
/// they are safe to print (references are not secrets, and text around them
/// is never echoed).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// `op://` that is not `op://VAULT/ITEM[/SECTION]/FIELD`.
    #[error("byte {offset}: a 1Password secret reference needs a vault, an item and a field; expected `op://VAULT/ITEM/FIELD` or `op://VAULT/ITEM/SECTION/FIELD`, nothing left empty")]
    OpReference {
        /// Offset of `op://`.
        offset: usize,
    },

    /// `<path:` with no `>` anywhere after it.
    #[error("byte {offset}: `<path:` placeholder is never closed; expected `<path:PATH#KEY>`, add the closing `>`")]
    Unclosed {
        /// Offset of the `<` that opens the placeholder.
        offset: usize,
    },

    /// A line break or `<` inside `<path:PATH#KEY`, before the `>` or `|`.
    #[error("byte {offset}: unexpected {found} inside a `<path:` placeholder; expected `<path:PATH#KEY>` on one line, is the closing `>` missing?")]
    UnexpectedInPlaceholder {
        /// Offset of the offending character.
        offset: usize,
        /// What was found, e.g. "line break" or "`<`".
        found: &'static str,
    },

    /// `<path:PATH>` without `#KEY`.
    #[error("byte {offset}: placeholder has no key; expected `<path:PATH#KEY>`, for example `<path:secret/data/app#password>`")]
    MissingKey {
        /// Offset of the `<` that opens the placeholder.
        offset: usize,
    },

    /// More than two `#` in `<path:...>`.
    #[error("byte {offset}: too many `#` in placeholder; expected `<path:PATH#KEY>` or `<path:PATH#KEY#VERSION>`")]
    TooManyHashes {
        /// Offset of the third `#`.
        offset: usize,
    },

    /// An empty path, key or version in `<path:...>`.
    #[error("byte {offset}: empty {part} in placeholder; expected `<path:PATH#KEY>` or `<path:PATH#KEY#VERSION>` with nothing left empty")]
    EmptyPart {
        /// Offset where the empty part is.
        offset: usize,
        /// "path", "key" or "version".
        part: &'static str,
    },

    /// A `|` followed by nothing.
    #[error("byte {offset}: empty modifier after `|`; remove the `|` or name one of {list}", list = MODIFIER_LIST)]
    EmptyModifier {
        /// Offset of the `|`.
        offset: usize,
    },

    /// A modifier name that argocd-vault-plugin does not know.
    #[error("byte {offset}: unknown modifier \"{name}\"; expected one of {list}{hint}", list = MODIFIER_LIST, hint = suggestion_hint(.suggestion))]
    UnknownModifier {
        /// Offset of the modifier name.
        offset: usize,
        /// The name as written (cut to 40 characters).
        name: String,
        /// A known modifier that the name was probably meant to be.
        suggestion: Option<&'static str>,
    },

    /// A known modifier with the wrong arguments.
    #[error("byte {offset}: modifier `{modifier}` {problem}; write it as `{usage}`")]
    ModifierArguments {
        /// Offset of the modifier name.
        offset: usize,
        /// The modifier's name.
        modifier: &'static str,
        /// What is wrong, e.g. "takes no arguments".
        problem: &'static str,
        /// How the modifier is written.
        usage: &'static str,
    },

    /// `ref+://...` with no scheme.
    #[error("byte {offset}: missing scheme after `ref+`; expected `ref+SCHEME://PATH`, for example `ref+vault://secret/data/app#/password`")]
    MissingScheme {
        /// Offset of the `ref+` (or `secretref+`).
        offset: usize,
    },

    /// A scheme with characters other than letters, digits, `.` and `-`, or
    /// not starting with a letter.
    #[error("byte {offset}: invalid scheme in `ref+SCHEME://`; a scheme starts with a letter and holds only letters, digits, `.` and `-`, as in `ref+vault://`")]
    InvalidScheme {
        /// Offset of the scheme.
        offset: usize,
    },

    /// `ref+SCHEME://` followed by nothing (end of string, whitespace or
    /// `+`), or by no path, no parameter and no fragment (`ref+vault://?`).
    #[error("byte {offset}: nothing after `ref+SCHEME://`; expected `ref+SCHEME://PATH`, for example `ref+sops://secrets.yaml#/db/password`")]
    EmptyValsPath {
        /// Offset of the `ref+` (or `secretref+`).
        offset: usize,
    },

    /// `%` not followed by two hex digits, or escapes that decode to
    /// something other than UTF-8.
    #[error("byte {offset}: invalid percent-escape in `ref+` URI; use `%` followed by two hex digits of UTF-8 bytes, and write a literal `%` as `%25`")]
    BadPercentEscape {
        /// Offset of the `%` (or of the escaped part).
        offset: usize,
    },

    /// `ref+...#/key?param=...`: parameters must come before the fragment.
    #[error("byte {offset}: `?` after the `#` fragment; put parameters before it, as in `ref+vault://PATH?version=2#/key` (write a literal `?` in a key as `%3F`)")]
    ParamsAfterFragment {
        /// Offset of the `?`.
        offset: usize,
    },

    /// A `#` with nothing (or only `/`) after it.
    #[error(
        "byte {offset}: empty `#` fragment; expected `#/key` or `#/key/subkey`, or drop the `#`"
    )]
    EmptyFragment {
        /// Offset of the `#`.
        offset: usize,
    },

    /// A `~` in the fragment not followed by `0` or `1`.
    #[error("byte {offset}: invalid `~` escape in the `#` fragment; write `~` as `~0` and `/` inside a key as `~1`")]
    BadPointerEscape {
        /// Offset of the `#`.
        offset: usize,
    },

    /// `?=value` or `?a=1&=2`.
    #[error("byte {offset}: empty parameter name; expected `?name=value&name2=value2`")]
    EmptyParamName {
        /// Offset of the parameter.
        offset: usize,
    },
}

impl ParseError {
    /// Byte offset in the parsed string where the problem was found.
    pub fn offset(&self) -> usize {
        match self {
            ParseError::Unclosed { offset }
            | ParseError::OpReference { offset }
            | ParseError::UnexpectedInPlaceholder { offset, .. }
            | ParseError::MissingKey { offset }
            | ParseError::TooManyHashes { offset }
            | ParseError::EmptyPart { offset, .. }
            | ParseError::EmptyModifier { offset }
            | ParseError::UnknownModifier { offset, .. }
            | ParseError::ModifierArguments { offset, .. }
            | ParseError::MissingScheme { offset }
            | ParseError::InvalidScheme { offset }
            | ParseError::EmptyValsPath { offset }
            | ParseError::BadPercentEscape { offset }
            | ParseError::ParamsAfterFragment { offset }
            | ParseError::EmptyFragment { offset }
            | ParseError::BadPointerEscape { offset }
            | ParseError::EmptyParamName { offset } => *offset,
        }
    }
}

fn suggestion_hint(s: &Option<&'static str>) -> String {
    match s {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}
