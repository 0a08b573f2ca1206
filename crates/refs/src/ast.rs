//! The syntax tree: one [`Reference`] per placeholder or URI found in a string.

use std::fmt::{self, Display, Write as _};
use std::ops::Range;

/// One reference found in a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Byte range of the whole reference in the parsed string, from the `<`
    /// to the `>` of a placeholder, or from `ref+` (`secretref+`) to the end
    /// of a vals URI including its trailing `+`. Always on `char` boundaries.
    pub span: Range<usize>,
    /// What the reference points at.
    pub kind: RefKind,
    /// Modifiers to apply to the fetched value, in order (left to right).
    /// Always empty for vals URIs, which have none.
    pub modifiers: Vec<Modifier>,
}

/// The three forms of reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RefKind {
    /// argocd-vault-plugin inline-path placeholder `<path:PATH#KEY[#VERSION]>`.
    AvpPath {
        /// Where the secret lives in the store, e.g. `secret/data/app` or an ARN.
        path: String,
        /// The key inside that secret.
        key: String,
        /// A specific version of the secret; `None` means the latest.
        version: Option<String>,
    },
    /// argocd-vault-plugin generic placeholder `<KEY>`: a key in the secret
    /// named by the document's `avp.kubernetes.io/path` annotation. Only
    /// returned by the `*_with_generic` functions.
    AvpGeneric {
        /// The key inside the annotated secret.
        key: String,
    },
    /// A vals URI `ref+SCHEME://PATH[?PARAMS][#FRAGMENT][+]`, or a 1Password
    /// secret reference `op://VAULT/ITEM[/SECTION]/FIELD` (see [`ValsRef::bare`]).
    Vals(ValsRef),
}

/// A vals URI, `[secret]ref+SCHEME://PATH[?PARAMS][#FRAGMENT][+]`, with its
/// percent-escapes decoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ValsRef {
    /// Written as `secretref+` rather than `ref+` (vals' mark for values that
    /// `vals eval --exclude-secret` leaves alone). Resolved the same way.
    pub secretref: bool,
    /// The backend, lower-cased: `vault`, `sops`, `awssecrets`, `file`, ...
    /// Not checked against a list here; the stores decide what they support.
    pub scheme: String,
    /// Everything between `://` and `?`/`#`, percent-decoded. Empty only
    /// when parameters or a fragment follow (`ref+doppler://#FOO`).
    pub path: String,
    /// Query parameters in the order written, percent-decoded. A name may
    /// repeat; a parameter written without `=` has an empty value.
    pub params: Vec<(String, String)>,
    /// The fragment as JSON-pointer tokens, percent-decoded and with `~1`
    /// and `~0` unescaped: `#/a/b~1c` is `["a", "b/c"]`. The leading `/` is
    /// optional, as in vals (`#a/b` is `["a", "b"]`); empty tokens are kept
    /// (`#/a//b` is `["a", "", "b"]`). Never empty. `None` without `#`.
    pub fragment: Option<Vec<String>>,
    /// Ended by an explicit `+` (vals' terminator for a URI followed by more
    /// text). The `+` is inside [`Reference::span`].
    pub explicit_end: bool,
    /// Written without `ref+`: a 1Password secret reference,
    /// `op://VAULT/ITEM[/SECTION]/FIELD` (scheme `op`), as a whole string or
    /// inside `{{ }}` as `op inject` templates write it. Never percent-decoded
    /// and without a fragment.
    pub bare: bool,
}

impl ValsRef {
    /// The value of the first parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A value transformation after `|` in an argocd-vault-plugin placeholder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Modifier {
    /// `base64encode`
    Base64Encode,
    /// `base64decode`
    Base64Decode,
    /// `jsonPath EXPR`, with the Kubernetes JSONPath template as written
    /// (words re-joined by single spaces), e.g. `{.username}{':'}{.password}`.
    JsonPath(String),
    /// `jsonParse`
    JsonParse,
    /// `yamlParse`
    YamlParse,
    /// `indent N`: indent every line after the first by N spaces.
    Indent(usize),
    /// `sha256sum`
    Sha256Sum,
}

impl Modifier {
    /// The modifier names, as written in placeholders.
    pub const NAMES: [&'static str; 7] = [
        "base64encode",
        "base64decode",
        "jsonPath",
        "jsonParse",
        "yamlParse",
        "indent",
        "sha256sum",
    ];

    /// The modifier's name, as written in placeholders.
    pub fn name(&self) -> &'static str {
        match self {
            Modifier::Base64Encode => "base64encode",
            Modifier::Base64Decode => "base64decode",
            Modifier::JsonPath(_) => "jsonPath",
            Modifier::JsonParse => "jsonParse",
            Modifier::YamlParse => "yamlParse",
            Modifier::Indent(_) => "indent",
            Modifier::Sha256Sum => "sha256sum",
        }
    }
}

/// The modifier names for messages.
pub(crate) const MODIFIER_LIST: &str =
    "base64encode, base64decode, jsonPath, jsonParse, yamlParse, indent, sha256sum";

impl Display for Modifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Modifier::JsonPath(expr) => write!(f, "jsonPath {expr}"),
            Modifier::Indent(n) => write!(f, "indent {n}"),
            other => f.write_str(other.name()),
        }
    }
}

/// Writes the reference in canonical form: `<path:P#K#V | mod | mod>`,
/// `<K | mod>`, or `ref+scheme://path?k=v#/a/b+` with only the characters
/// that must be escaped percent-escaped. Parsing the output gives the same
/// kind and modifiers back. References are not secrets, so this is safe to
/// print in messages.
impl Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            RefKind::AvpPath { path, key, version } => {
                write!(f, "<path:{path}#{key}")?;
                if let Some(v) = version {
                    write!(f, "#{v}")?;
                }
                write_modifiers(f, &self.modifiers)?;
                f.write_char('>')
            }
            RefKind::AvpGeneric { key } => {
                write!(f, "<{key}")?;
                write_modifiers(f, &self.modifiers)?;
                f.write_char('>')
            }
            RefKind::Vals(v) => Display::fmt(v, f),
        }
    }
}

fn write_modifiers(f: &mut fmt::Formatter<'_>, modifiers: &[Modifier]) -> fmt::Result {
    for m in modifiers {
        write!(f, " | {m}")?;
    }
    Ok(())
}

/// Canonical form of a vals URI; see [`Reference`]'s `Display`.
impl Display for ValsRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.bare {
            write!(f, "{}://{}", self.scheme, self.path)?;
            for (i, (k, v)) in self.params.iter().enumerate() {
                write!(f, "{}{k}={v}", if i == 0 { '?' } else { '&' })?;
            }
            return Ok(());
        }
        if self.secretref {
            f.write_str("secret")?;
        }
        write!(f, "ref+{}://", self.scheme)?;
        escape(f, &self.path, b"%?#+")?;
        for (i, (k, v)) in self.params.iter().enumerate() {
            f.write_char(if i == 0 { '?' } else { '&' })?;
            escape(f, k, b"%#+&=")?;
            if !v.is_empty() {
                f.write_char('=')?;
                escape(f, v, b"%#+&=")?;
            }
        }
        if let Some(tokens) = &self.fragment {
            f.write_char('#')?;
            for t in tokens {
                f.write_char('/')?;
                let t = t.replace('~', "~0").replace('/', "~1");
                escape(f, &t, b"%?#+")?;
            }
        }
        if self.explicit_end {
            f.write_char('+')?;
        }
        Ok(())
    }
}

/// Writes `s`, percent-escaping the bytes in `special`, ASCII whitespace and
/// ASCII control characters.
fn escape(f: &mut fmt::Formatter<'_>, s: &str, special: &[u8]) -> fmt::Result {
    let mut last = 0;
    for (i, b) in s.bytes().enumerate() {
        if special.contains(&b) || b.is_ascii_whitespace() || b.is_ascii_control() {
            f.write_str(&s[last..i])?;
            write!(f, "%{b:02X}")?;
            last = i + 1;
        }
    }
    f.write_str(&s[last..])
}
