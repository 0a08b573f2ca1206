//! Known credential formats: the one table of patterns that mark a value as a credential
//! whatever its key (cloud keys, VCS and chat tokens, Vault tokens, age keys, private keys,
//! JWTs, URLs with a password, htpasswd lines). Secret data takes its severity from here
//! ([`crate::value::classify`]); every other line of every text file is searched with it
//! ([`find_in_line`]), skipping matches that are documentation placeholders.

use std::sync::OnceLock;

use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use crate::finding::Severity;

/// One known format.
pub(crate) struct Format {
    /// The pattern (bytes regex).
    pub re: &'static str,
    /// How bad a match is.
    pub severity: Severity,
    /// A noun phrase for messages; never value text.
    pub what: &'static str,
}

const fn f(re: &'static str, severity: Severity, what: &'static str) -> Format {
    Format { re, severity, what }
}

use Severity::{Critical, High};

/// Every known format. The index of [`URL_PASSWORD`] is special: its password part is judged
/// (a `${VAR}` or `<placeholder>` password is not a credential).
pub(crate) const FORMATS: &[Format] = &[
    f(
        r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|PuTTY-User-Key-File-",
        Critical,
        "a private key",
    ),
    // `-----BEGIN ... PRIVATE KEY` base64-encoded, as a kubeconfig's `client-key-data` or a
    // talosconfig's `key` holds it (the encoding of each label, from the first byte).
    f(
        r"\bLS0tLS1CRUdJTiB(?:QUklWQVRFIEtFWS|SU0EgUFJJVkFURSBLRVkt|FQyBQUklWQVRFIEtFWS|EU0EgUFJJVkFURSBLRVkt|PUEVOU1NIIFBSSVZBVEUgS0VZ|FTkNSWVBURUQgUFJJVkFURSBLRVkt|FRDI1NTE5IFBSSVZBVEUgS0VZ|QR1AgUFJJVkFURSBLRVkgQkxPQ0st)",
        Critical,
        "a private key (base64-encoded)",
    ),
    f(
        r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",
        Critical,
        "an AWS access key",
    ),
    f(
        r#"(?i)(?:aws.{0,24}?(?:secret|private)|secret_?access_?key).{0,20}?['"]?\s*[:=]\s*['"]?[A-Za-z0-9/+]{40}(?:[^A-Za-z0-9/+=]|$)"#,
        Critical,
        "an AWS secret access key",
    ),
    f(
        r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{22,}",
        Critical,
        "a GitHub token",
    ),
    f(
        r"\bgl(?:pat|rt|dt|ptt|soat|cbt|ft|imt)-[A-Za-z0-9_\-]{20,}",
        Critical,
        "a GitLab token",
    ),
    f(
        r"\bxox[abeoprs]-[A-Za-z0-9\-]{10,}",
        Critical,
        "a Slack token",
    ),
    f(r"\bAIza[0-9A-Za-z_\-]{35}", Critical, "a Google API key"),
    f(
        r"\b[sr]k_live_[0-9A-Za-z]{20,}",
        Critical,
        "a Stripe live key",
    ),
    f(r"\bnpm_[A-Za-z0-9]{36}\b", Critical, "an npm token"),
    f(
        r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}",
        Critical,
        "a PyPI token",
    ),
    f(
        r"AccountKey=[A-Za-z0-9+/]{80,}={0,2}",
        Critical,
        "an Azure storage key",
    ),
    f(
        r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b",
        Critical,
        "a SendGrid API key",
    ),
    f(r"\bhv[sb]\.[A-Za-z0-9_\-]{24,}", Critical, "a Vault token"),
    f(
        r"AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}",
        Critical,
        "an age secret key",
    ),
    f(
        r"\b[0-9]{8,10}:AA[0-9A-Za-z_\-]{33}(?:[^0-9A-Za-z_\-]|$)",
        Critical,
        "a Telegram bot token",
    ),
    f(
        r"\bgl(?:sa|c)_[A-Za-z0-9+/]{32,}(?:_[0-9a-fA-F]{8}|={0,2})",
        Critical,
        "a Grafana token",
    ),
    f(
        r"\bdo[opr]_v1_[0-9a-f]{64}\b",
        Critical,
        "a DigitalOcean token",
    ),
    f(
        r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}T3BlbkFJ[A-Za-z0-9_\-]{20,}",
        Critical,
        "an OpenAI API key",
    ),
    f(
        r"\bsk-ant-(?:api|admin|oat)[0-9]{2}-[A-Za-z0-9_\-]{80,}",
        Critical,
        "an Anthropic API key",
    ),
    f(r"\bhf_[A-Za-z]{34}\b", Critical, "a Hugging Face token"),
    f(
        r"\bdckr_(?:pat|oat)_[A-Za-z0-9_\-]{27,}",
        Critical,
        "a Docker Hub token",
    ),
    f(
        r"\btskey-(?:auth|client|api|scim|webhook)-[A-Za-z0-9]{6,}-[A-Za-z0-9]{20,}",
        Critical,
        "a Tailscale key",
    ),
    f(
        r"\bdp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9._\-]{40,}",
        Critical,
        "a Doppler token",
    ),
    f(
        r"\b[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_\-=]{60,}",
        Critical,
        "a Terraform Cloud token",
    ),
    f(
        r"\bshp(?:at|ca|pa|ss)_[0-9a-fA-F]{32}\b",
        Critical,
        "a Shopify token",
    ),
    f(r"\blin_api_[A-Za-z0-9]{40}\b", Critical, "a Linear API key"),
    f(
        r"\bAKCp[A-Za-z0-9]{69}\b|\bcmVmdGtuOjAxOj[A-Za-z0-9]{40,}",
        Critical,
        "a JFrog token",
    ),
    f(
        r"\bsntry[su]_[A-Za-z0-9+/=_\-]{40,}",
        Critical,
        "a Sentry token",
    ),
    f(
        r"\bPMAK-[0-9a-f]{24}-[0-9a-f]{34}\b",
        Critical,
        "a Postman API key",
    ),
    f(
        r"\bsha256~[A-Za-z0-9_\-]{43}(?:[^A-Za-z0-9_\-]|$)",
        Critical,
        "an OpenShift token",
    ),
    f(
        r"\bv1\.0-[0-9a-f]{24}-[0-9a-f]{146}\b",
        Critical,
        "a Cloudflare Origin CA key",
    ),
    f(
        r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",
        High,
        "a JSON Web Token",
    ),
    f(
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/]{20,}",
        High,
        "a Slack webhook URL",
    ),
    f(
        r"https://(?:discord(?:app)?\.com/api/webhooks|[a-z0-9-]+\.webhook\.office\.com/webhookb2)/[A-Za-z0-9_/@\-]{20,}",
        High,
        "a chat webhook URL",
    ),
    f(
        r"(?i)[?&;]\s*(?:password|pwd)\s*=\s*[^&;\s'\x22]{6,}",
        High,
        "a connection string with a password",
    ),
    f(
        r"\b[A-Za-z][A-Za-z0-9+.\-]{1,20}://[^/\s:@]{0,256}:[^/\s@]{1,256}@",
        High,
        "a URL with a password",
    ),
    f(
        r"(?m)^[\s\x22'-]*[A-Za-z0-9_.@\-]{1,64}:(?:\$apr1\$[./0-9A-Za-z]{1,8}\$[./0-9A-Za-z]{22}|\$2[aby]\$\d{2}\$[./0-9A-Za-z]{53}|\{SHA\}[A-Za-z0-9+/]{27}=)",
        High,
        "an htpasswd line",
    ),
];

/// The index of "a URL with a password" in [`FORMATS`].
const URL_PASSWORD: usize = FORMATS.len() - 2;

/// The index of "a connection string with a password" in [`FORMATS`].
const QUERY_PASSWORD: usize = FORMATS.len() - 3;

/// [`FORMATS`] as one set (which formats match).
pub(crate) fn set() -> &'static RegexSet {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    // ASCII classes and word boundaries: the lazy DFA serves them (Unicode `\b` would send
    // every search to the much slower PikeVM), and a token's characters are ASCII anyway.
    SET.get_or_init(|| {
        RegexSetBuilder::new(FORMATS.iter().map(|f| f.re))
            .unicode(false)
            .build()
            .expect("formats compile")
    })
}

/// [`FORMATS`] one by one (where they match).
fn each() -> &'static [Regex] {
    static ALL: OnceLock<Vec<Regex>> = OnceLock::new();
    ALL.get_or_init(|| {
        FORMATS
            .iter()
            .map(|f| {
                RegexBuilder::new(f.re)
                    .unicode(false)
                    .build()
                    .expect("formats compile")
            })
            .collect()
    })
}

/// Text that marks a match as a documentation sample, not a credential.
const SAMPLE_WORDS: &[&str] = &[
    "example",
    "xxxxx",
    "dummy",
    "sample",
    "placeholder",
    "redacted",
    "changeme",
    "your",
    "fake",
    "0000000000",
    "1234567890",
];

/// Whether matched text is a documentation sample (`AKIAIOSFODNN7EXAMPLE`, `ghp_xxxx...`).
fn is_sample(m: &[u8]) -> bool {
    let lower = String::from_utf8_lossy(m).to_ascii_lowercase();
    SAMPLE_WORDS.iter().any(|w| lower.contains(w))
}

/// Whether the password of a `scheme://user:password@` match is a real value: not a variable
/// (`$VAR`, `${VAR}`, `$(VAR)`, `%s`), a placeholder (`<password>`, `{{ .pw }}`, `***`), or
/// a word that only names the field.
pub(crate) fn url_password_is_real(m: &[u8]) -> bool {
    let Some(at) = m.iter().rposition(|b| *b == b'@') else {
        return false;
    };
    let before = &m[..at];
    let Some(colon) = before.iter().rposition(|b| *b == b':') else {
        return false;
    };
    // Userinfo built from references or variables (`<path:db#user>:<path:db#pw>@`).
    let scheme_end = before
        .windows(3)
        .position(|w| w == b"://")
        .map_or(0, |i| i + 3);
    if is_variable_text(&before[scheme_end..]) {
        return false;
    }
    password_is_real(&before[colon + 1..])
}

/// Whether text holds a reference, a variable or a format directive rather than a literal:
/// `<...>`, `{...}`, `${VAR}`, `$(VAR)`, `$VAR`, `%s`, `%(name)s` (a percent sign before
/// anything else, as in `%40` or a generated password, is literal text).
fn is_variable_text(t: &[u8]) -> bool {
    t.iter().any(|b| b"<>{}".contains(b))
        || t.windows(2).any(|w| {
            (w[0] == b'$' && (w[1] == b'(' || w[1] == b'_' || w[1].is_ascii_uppercase()))
                || (w[0] == b'%' && b"sdvq({".contains(&w[1]))
        })
}

/// Whether a password taken from a URL or a connection string is a real value: 3 characters or
/// more, not a variable or placeholder, not a word that names the field.
fn password_is_real(pw: &[u8]) -> bool {
    if pw.is_empty() || pw.len() < 3 {
        return false;
    }
    if matches!(pw[0], b'$' | b'<' | b'{' | b'%' | b'*' | b'[' | b'(') {
        return false;
    }
    let lower = String::from_utf8_lossy(pw).to_ascii_lowercase();
    !([
        "password", "passwd", "pass", "pw", "pwd", "secret", "token", "xxx",
    ]
    .contains(&lower.as_str())
        || is_sample(pw))
}

/// Whether the password of a `;Password=...` / `&password=...` match is a real value, judged as
/// a URL's password is.
fn query_password_is_real(m: &[u8]) -> bool {
    let Some(eq) = m.iter().position(|b| *b == b'=') else {
        return false;
    };
    let pw = m[eq + 1..].trim_ascii_start();
    !is_variable_text(pw) && password_is_real(pw)
}

/// The most severe known credential on one line of text (a comment, a script, a YAML value):
/// the column (1-based, in bytes) where it starts, its class and the matched bytes (for the
/// fingerprint only). Documentation samples and URLs whose password is a variable are skipped.
pub(crate) fn find_in_line(line: &[u8]) -> Option<(usize, &'static Format, &[u8])> {
    let may = candidates(line);
    first_match(line, (0..FORMATS.len()).filter(|i| may & (1 << i) != 0))
}

/// The match of the most severe of the formats `which` (in index order) in `line`, skipping
/// documentation samples and URLs or connection strings whose password is not one.
fn first_match(
    line: &[u8],
    which: impl Iterator<Item = usize>,
) -> Option<(usize, &'static Format, &[u8])> {
    let mut best: Option<(usize, &'static Format, &[u8])> = None;
    for i in which {
        let fmt = &FORMATS[i];
        if best.is_some_and(|b| b.1.severity >= fmt.severity) {
            continue;
        }
        let found = each()[i].find_iter(line).find(|m| {
            !is_sample(m.as_bytes())
                && (i != URL_PASSWORD || url_password_is_real(m.as_bytes()))
                && (i != QUERY_PASSWORD || query_password_is_real(m.as_bytes()))
        });
        if let Some(m) = found {
            best = Some((m.start() + 1, fmt, m.as_bytes()));
        }
    }
    best
}

/// For each of [`FORMATS`], the literals of which every match holds one
/// ([`super::prefilter::required_literals_of`]; `None`: none can be derived), worked out once
/// for the line search and the prefilter.
pub(crate) fn literals() -> &'static [Option<Vec<Vec<u8>>>] {
    static LITERALS: OnceLock<Vec<Option<Vec<Vec<u8>>>>> = OnceLock::new();
    LITERALS.get_or_init(|| {
        FORMATS
            .iter()
            .map(|f| super::prefilter::required_literals_of(f.re))
            .collect()
    })
}

/// The formats that may match `line`, as bits of their indexes: those with a required literal
/// ([`super::prefilter::required_literals_of`]) the line holds, and those without any. One
/// literal search instead of the whole set's, which matters: most lines that reach here hold
/// the literal of one format at most.
fn candidates(line: &[u8]) -> u128 {
    const _: () = assert!(FORMATS.len() <= 128);
    struct Literals {
        searcher: aho_corasick::AhoCorasick,
        /// The format of each literal of `searcher`.
        format: Vec<usize>,
        /// Formats without a required literal.
        always: u128,
    }
    static LITERALS: OnceLock<Literals> = OnceLock::new();
    let lits = LITERALS.get_or_init(|| {
        let (mut all, mut format, mut always) = (Vec::new(), Vec::new(), 0u128);
        for (i, lits) in literals().iter().enumerate() {
            match lits {
                Some(lits) if !lits.is_empty() => {
                    format.extend(std::iter::repeat_n(i, lits.len()));
                    all.extend(lits.iter().cloned());
                }
                _ => always |= 1 << i,
            }
        }
        Literals {
            searcher: aho_corasick::AhoCorasick::new(&all).expect("literals build"),
            format,
            always,
        }
    });
    lits.searcher
        .find_overlapping_iter(line)
        .fold(lits.always, |may, m| {
            may | 1 << lits.format[m.pattern().as_usize()]
        })
}

#[cfg(test)]
mod tests {
    /// The literal candidates find exactly what the whole set finds.
    #[test]
    fn literal_candidates_find_what_the_set_finds() {
        let by_set = |line: &[u8]| {
            first_match(line, set().matches(line).iter()).map(|(c, f, _)| (c, f.what))
        };
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");
        let mut lines = 0;
        let mut stack = vec![std::path::PathBuf::from(root)];
        while let Some(p) = stack.pop() {
            if p.is_dir() {
                stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            for line in bytes.split(|&b| b == b'\n') {
                lines += 1;
                let got = find_in_line(line).map(|(c, f, _)| (c, f.what));
                assert_eq!(
                    got,
                    by_set(line),
                    "{}: {}",
                    p.display(),
                    String::from_utf8_lossy(line).len()
                );
            }
        }
        assert!(lines > 10_000, "{lines}");
    }
    use super::*;

    fn what(line: &str) -> Option<&'static str> {
        find_in_line(line.as_bytes()).map(|(_, f, _)| f.what)
    }

    #[test]
    fn finds_each_format_and_skips_samples() {
        let age = format!(
            "AGE-SECRET-KEY-1{}",
            "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"
                .repeat(2)
                .get(..58)
                .unwrap()
        );
        for (line, expect) in [
            ("key: AKIAQ3EGVP7NMT2JXW4A", "an AWS access key"),
            ("export AWS_SECRET_ACCESS_KEY=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", "an AWS secret access key"),
            ("hvs.CAESIJ3k9v8sGq2Wm4b7pQyXz1LrT5nKcD0a", "a Vault token"),
            (age.as_str(), "an age secret key"),
            ("url: https://hooks.slack.com/services/T0AB12CDE/B0FG34HIJ/AbCdEfGhIjKlMnOpQrStUvWx", "a Slack webhook URL"),
            ("admin:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/", "an htpasswd line"),
            ("postgres://app:Sup3rS3cret@db:5432/app", "a URL with a password"),
        ] {
            assert_eq!(what(line), Some(expect), "{line}");
        }
        for line in [
            "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
            "postgres://app:${DB_PASSWORD}@db:5432/app",
            "postgres://app:<password>@db/app",
            "postgres://<path:db#user>:<path:db#pw>@db:5432/app",
            "redis://:password@redis:6379",
            "digest: sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
            "uid: 3f2a9c1e-7b4d-4e2a-9f1c-0d5e6a7b8c9d",
        ] {
            assert_eq!(what(line), None, "{line}");
        }
    }
}
