//! Whole SOPS files for the generators (`files`, `envs`, KSOPS): read inside the repository,
//! decrypted with the identities sops would use (`SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`, the
//! default key files), read from the operator's environment only: an `ARGOCD_ENV_` twin or a
//! plugin config's `env` cannot point them elsewhere. Messages name files and keys, never
//! values.

use std::cell::OnceCell;

use kustodian_sops::{Format, Identities, Plaintext, Value, Zeroizing};
use kustodian_stores::Config;

use super::context::Context;

/// Reads SOPS files for one run.
pub struct SopsFiles {
    config: Config,
    ids: OnceCell<Identities>,
}

/// A decrypted file.
pub struct Decrypted {
    /// The path as written in the configuration.
    pub name: String,
    format: Format,
    plain: Plaintext,
}

impl SopsFiles {
    /// A reader for files relative to the context's folder.
    pub fn new(ctx: &Context) -> Self {
        SopsFiles {
            config: ctx.config(),
            ids: OnceCell::new(),
        }
    }

    fn identities(&self) -> &Identities {
        self.ids.get_or_init(|| {
            Identities::load(&kustodian_stores::sops_files::key_sources(&self.config))
        })
    }

    /// Decrypts the SOPS file at `rel` (relative to the run's folder, inside the repository).
    pub fn read(&self, rel: &str) -> Result<Decrypted, String> {
        let path = kustodian_stores::sops_files::confine(&self.config.root, &self.config.base, rel)
            .map_err(|e| e.to_string())?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if ext == "env" || ext == "ini" {
            return Err(format!(
                "{rel}: SOPS files in the {ext} format are not supported; encrypt the values as YAML (`KEY: value` lines) instead"
            ));
        }
        let src =
            kustodian_stores::sops_files::read_store_file(&path, rel).map_err(|e| e.to_string())?;
        let format = Format::from_path(&path);
        let plain = kustodian_sops::decrypt(&src, format, self.identities(), rel)
            .map_err(|e| e.to_string())?;
        Ok(Decrypted {
            name: rel.to_string(),
            format,
            plain,
        })
    }
}

impl Decrypted {
    /// The decrypted file as text, in its own format (what `sops decrypt` prints).
    pub fn text(&self) -> Result<Zeroizing<String>, String> {
        self.plain
            .to_text(self.format, &self.name)
            .map_err(|e| e.to_string())
    }

    /// The top-level keys and values: the mapping of a YAML or JSON file, or the `KEY=value`
    /// lines of a binary file holding dotenv text.
    pub fn flat_entries(&self) -> Result<Vec<(String, Zeroizing<String>)>, String> {
        if self.format == Format::Binary {
            return parse_dotenv(&self.text()?, &self.name);
        }
        let mut out = Vec::new();
        for doc in self.plain.documents() {
            for (k, v) in doc.entries() {
                match v {
                    Value::Null => out.push((k.to_string(), Zeroizing::new(String::new()))),
                    Value::Map(_) | Value::Seq(_) => {
                        return Err(format!(
                            "{}: key {k:?} holds a nested value; envs takes flat files of `KEY: value` lines (use files: to keep a whole file under one key)",
                            self.name
                        ))
                    }
                    scalar => out.push((k.to_string(), scalar.to_text().unwrap_or_default())),
                }
            }
        }
        Ok(out)
    }
}

/// `KEY=value` lines; blank lines, `#` comments and `export ` are allowed, values may be quoted.
/// Errors give the line number, never its text.
pub fn parse_dotenv(text: &str, name: &str) -> Result<Vec<(String, Zeroizing<String>)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("{name}: line {} is not KEY=value", i + 1));
        };
        let k = k.trim();
        if k.is_empty() || k.contains(char::is_whitespace) {
            return Err(format!("{name}: line {} has no valid key", i + 1));
        }
        let v = v.trim();
        let v = match (v.chars().next(), v.chars().last()) {
            (Some('"'), Some('"')) | (Some('\''), Some('\'')) if v.len() >= 2 => &v[1..v.len() - 1],
            _ => v,
        };
        out.push((k.to_string(), Zeroizing::new(v.to_string())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_lines() {
        let kv = parse_dotenv("# c\nexport A=1\nB = \"two words\"\n\nC='x=y'\n", "f").unwrap();
        let kv: Vec<_> = kv.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(kv, vec![("A", "1"), ("B", "two words"), ("C", "x=y")]);
    }

    #[test]
    fn dotenv_errors_hide_the_line() {
        let e = parse_dotenv("canary-secret-line\n", "f").unwrap_err();
        assert!(!e.contains("canary"), "{e}");
        assert!(e.contains("line 1"));
    }
}
