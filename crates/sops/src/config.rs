//! `.sops.yaml` creation rules: which recipients and selection option a new file gets.
//!
//! [`find_config`] walks up from the file's directory to the nearest `.sops.yaml` (this and
//! [`crate::keys`] are the crate's only I/O). [`creation_rule`] is pure: the first rule whose
//! `path_regex` matches the file's path relative to the config's directory (a rule without
//! `path_regex` matches everything), as sops chooses. Of a rule it reads the master keys:
//! `age`, `pgp`, `kms` (comma-separated strings or lists; KMS entries may be `ARN+ROLE_ARN`,
//! with the rule's `aws_profile` and `encryption_context`), `gcp_kms` resource ids and
//! `hc_vault_transit_uri`, or `key_groups` (each with `age`, `pgp`, `kms` as maps of
//! `arn`/`role`/`context`/`aws_profile`, `gcp_kms` as maps of `resource_id`, and `hc_vault`
//! URIs) with `shamir_threshold`; and `encrypted_regex`, `unencrypted_regex`,
//! `encrypted_suffix`, `unencrypted_suffix`, the comment regexes and `mac_only_encrypted`.
//! Other keys are ignored, as sops ignores what it does not know.

use std::path::{Path, PathBuf};

use kustodian_manifest::{parse_stream, Node};
use regex::Regex;

use crate::error::{Error, Result};
use crate::master::{
    gcp_kms_keys_from_list, kms_keys_from_list, AzureKvKey, KmsKey, MasterKey, VaultKey,
};
use crate::tree::Selection;
use crate::KeyPlan;

/// What a creation rule asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreationRule {
    /// Age recipients (`age1...`) of every group.
    pub age: Vec<String>,
    /// Every master key, by key group, and the Shamir threshold.
    pub keys: KeyPlan,
    /// The selection option, if the rule sets one.
    pub selection: Option<Selection>,
    /// `mac_only_encrypted`.
    pub mac_only_encrypted: bool,
}

/// The nearest `.sops.yaml` in `dir` or a parent directory (at most 100 levels up).
pub fn find_config(dir: &Path) -> Option<PathBuf> {
    let mut d = std::path::absolute(dir).ok()?;
    for _ in 0..100 {
        let p = d.join(".sops.yaml");
        if p.is_file() {
            return Some(p);
        }
        if !d.pop() {
            break;
        }
    }
    None
}

/// Finds the `.sops.yaml` for `file` and its matching rule. `Ok(None)` when there is no
/// config file or it has no `creation_rules`.
pub fn load_creation_rule(file: &Path) -> Result<Option<(PathBuf, CreationRule)>> {
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Some(config) = find_config(dir) else {
        return Ok(None);
    };
    load_creation_rule_from(&config, file).map(|r| r.map(|r| (config, r)))
}

/// Reads the config at `config` and picks the rule for `file`.
pub fn load_creation_rule_from(config: &Path, file: &Path) -> Result<Option<CreationRule>> {
    let src = kustodian_manifest::read::read_to_string_bounded(
        config,
        kustodian_manifest::read::SMALL_FILE_LIMIT,
    )
    .map_err(|e| Error::Config {
        path: config.display().to_string(),
        what: format!("cannot read: {e}"),
    })?;
    let config_dir =
        std::path::absolute(config.parent().unwrap_or(Path::new("."))).unwrap_or_default();
    let file_abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let rel = file_abs.strip_prefix(&config_dir).unwrap_or(&file_abs);
    let rel = rel.to_string_lossy().replace('\\', "/");
    creation_rule(&src, &config.display().to_string(), &rel)
}

/// Picks the rule for `rel_path` (the file's path relative to the config's directory) from
/// the text of a `.sops.yaml`. `Ok(None)` when it has no `creation_rules`.
pub fn creation_rule(
    config_src: &str,
    config_name: &str,
    rel_path: &str,
) -> Result<Option<CreationRule>> {
    let err = |what: String| Error::Config {
        path: config_name.into(),
        what,
    };
    let docs =
        parse_stream(config_src).map_err(|e| err(format!("line {}: {}", e.pos.line, e.message)))?;
    let Some(rules) = docs.first().and_then(|d| d.root.get("creation_rules")) else {
        return Ok(None);
    };
    let Some(rules) = rules.as_seq() else {
        return Err(err("creation_rules must be a list".into()));
    };
    for rule in rules {
        let matches = match rule
            .get("path_regex")
            .and_then(Node::as_scalar)
            .filter(|s| !s.is_empty())
        {
            None => true,
            Some(re) => Regex::new(re)
                .map_err(|e| err(format!("path_regex `{re}` does not compile: {e}")))?
                .is_match(rel_path),
        };
        if matches {
            return parse_rule(rule, config_name, rel_path).map(Some);
        }
    }
    Err(Error::NoCreationRule {
        config: config_name.into(),
        file: rel_path.into(),
    })
}

fn keys_of(n: Option<&Node>) -> Vec<String> {
    match n {
        Some(n) if n.as_seq().is_some() => n
            .as_seq()
            .unwrap_or_default()
            .iter()
            .filter_map(Node::as_scalar)
            .flat_map(|s| s.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        Some(n) => n
            .as_scalar()
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        None => Vec::new(),
    }
}

fn context_of(n: Option<&Node>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = n
        .and_then(Node::as_map)
        .unwrap_or_default()
        .iter()
        .filter_map(|e| {
            Some((
                e.key.as_scalar()?.to_string(),
                e.value.as_scalar()?.to_string(),
            ))
        })
        .collect();
    v.sort();
    v
}

/// The keys of a rule's flat lists, or of one entry of its `key_groups`.
fn group_of(n: &Node, in_group: bool, config_name: &str) -> Result<Vec<MasterKey>> {
    let mut keys: Vec<MasterKey> = keys_of(n.get("age"))
        .into_iter()
        .map(MasterKey::Age)
        .collect();
    keys.extend(keys_of(n.get("pgp")).into_iter().map(MasterKey::Pgp));
    let profile = n.get("aws_profile").and_then(Node::as_scalar);
    match n.get("kms") {
        Some(list) if in_group && list.as_seq().is_some() => {
            for item in list.as_seq().unwrap_or_default() {
                let arn =
                    item.get("arn")
                        .and_then(Node::as_scalar)
                        .ok_or_else(|| Error::Config {
                            path: config_name.into(),
                            what: "a kms entry of key_groups has no arn".into(),
                        })?;
                let get = |k: &str| {
                    item.get(k)
                        .and_then(Node::as_scalar)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                };
                keys.push(MasterKey::Kms(KmsKey {
                    arn: arn.to_string(),
                    role: get("role"),
                    context: context_of(item.get("context")),
                    aws_profile: get("aws_profile"),
                }));
            }
        }
        other => {
            let context = context_of(n.get("encryption_context"));
            for list in keys_of(other) {
                keys.extend(
                    kms_keys_from_list(&list, &context, profile)
                        .into_iter()
                        .map(MasterKey::Kms),
                );
            }
        }
    }
    let vault_key = if in_group {
        "hc_vault"
    } else {
        "hc_vault_transit_uri"
    };
    for uri in keys_of(n.get(vault_key)) {
        keys.push(MasterKey::Vault(VaultKey::from_uri(&uri)?));
    }
    // `gcp_kms`: a comma-separated string or list in a rule, a list of `resource_id` maps
    // in `key_groups`.
    for item in n.get("gcp_kms").and_then(Node::as_seq).unwrap_or_default() {
        if let Some(id) = item.get("resource_id").and_then(Node::as_scalar) {
            keys.extend(gcp_kms_keys_from_list(id));
        } else if in_group && item.as_scalar().is_none() {
            return Err(Error::Config {
                path: config_name.into(),
                what: "a gcp_kms entry of key_groups has no resource_id".into(),
            });
        }
    }
    for list in keys_of(n.get("gcp_kms")) {
        keys.extend(gcp_kms_keys_from_list(&list));
    }
    // `azure_keyvault`: key URLs in a rule, maps of `vaultUrl`/`key`/`version` in `key_groups`.
    for item in n
        .get("azure_keyvault")
        .and_then(Node::as_seq)
        .unwrap_or_default()
    {
        if item.as_scalar().is_some() {
            continue;
        }
        let get = |k: &str| item.get(k).and_then(Node::as_scalar).map(str::trim);
        match (get("vaultUrl"), get("key"), get("version")) {
            (Some(v), Some(k), Some(ver)) if !v.is_empty() && !k.is_empty() && !ver.is_empty() => {
                keys.push(MasterKey::AzureKv(AzureKvKey {
                    vault_url: v.trim_end_matches('/').to_string(),
                    name: k.to_string(),
                    version: ver.to_string(),
                }))
            }
            _ => {
                return Err(Error::Config {
                    path: config_name.into(),
                    what: "an azure_keyvault entry of key_groups needs vaultUrl, key and version"
                        .into(),
                })
            }
        }
    }
    for url in keys_of(n.get("azure_keyvault")) {
        keys.push(MasterKey::AzureKv(AzureKvKey::from_url(&url)?));
    }
    Ok(keys)
}

fn parse_rule(rule: &Node, config_name: &str, rel_path: &str) -> Result<CreationRule> {
    let groups = match rule.get("key_groups").and_then(Node::as_seq) {
        Some(groups) if !groups.is_empty() => groups
            .iter()
            .map(|g| group_of(g, true, config_name))
            .collect::<Result<Vec<_>>>()?,
        _ => vec![group_of(rule, false, config_name)?],
    };
    let shamir_threshold = match rule.get("shamir_threshold").and_then(Node::as_scalar) {
        None => 0,
        Some(t) => t.trim().parse::<usize>().map_err(|_| Error::Config {
            path: config_name.into(),
            what: format!("shamir_threshold must be a whole number, not {t:?}"),
        })?,
    };
    let keys = KeyPlan {
        groups,
        shamir_threshold,
    };
    if keys.is_empty() {
        return Err(Error::OnlyAge {
            config: config_name.into(),
            file: rel_path.into(),
        });
    }
    let age = keys
        .groups
        .iter()
        .flatten()
        .filter_map(|k| match k {
            MasterKey::Age(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    let mut selection = None;
    for key in Selection::KEYS {
        if let Some(v) = rule
            .get(key)
            .and_then(Node::as_scalar)
            .filter(|s| !s.is_empty())
        {
            if selection.is_some() {
                return Err(Error::ConflictingRules);
            }
            selection = Selection::from_key(key, v.to_string());
        }
    }
    let mac_only_encrypted =
        rule.get("mac_only_encrypted").and_then(Node::as_scalar) == Some("true");
    Ok(CreationRule {
        age,
        keys,
        selection,
        mac_only_encrypted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
creation_rules:
  - path_regex: secrets/.*\.json$
    age: age1aaa, age1bbb
  - path_regex: \.enc\.yaml$
    encrypted_regex: ^(data|stringData)$
    age:
      - age1ccc
    pgp: FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4
  - path_regex: ^pgp/
    pgp: FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4
  - path_regex: ^groups/
    key_groups:
      - age: [age1ddd]
  - age: age1zzz
    unknown_key: ignored
"#;

    #[test]
    fn first_matching_rule_wins() {
        let r = creation_rule(CONFIG, ".sops.yaml", "secrets/db.json")
            .unwrap()
            .unwrap();
        assert_eq!(r.age, vec!["age1aaa", "age1bbb"]);
        assert_eq!(r.selection, None);
        let r = creation_rule(CONFIG, ".sops.yaml", "app/secret.enc.yaml")
            .unwrap()
            .unwrap();
        assert_eq!(r.age, vec!["age1ccc"]);
        assert_eq!(
            r.selection,
            Some(Selection::EncryptedRegex("^(data|stringData)$".into()))
        );
        let r = creation_rule(CONFIG, ".sops.yaml", "groups/x.yaml")
            .unwrap()
            .unwrap();
        assert_eq!(r.age, vec!["age1ddd"]);
        let r = creation_rule(CONFIG, ".sops.yaml", "other.yaml")
            .unwrap()
            .unwrap();
        assert_eq!(r.age, vec!["age1zzz"]);
    }

    #[test]
    fn rules_without_age_or_match_are_errors() {
        let r = creation_rule(CONFIG, ".sops.yaml", "pgp/x.yaml")
            .unwrap()
            .unwrap();
        assert_eq!(
            r.keys.groups,
            vec![vec![MasterKey::Pgp(
                "FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4".into()
            )]]
        );
        let e = creation_rule("creation_rules:\n- path_regex: x\n", "c", "x").unwrap_err();
        assert!(e.to_string().contains("names no master keys"), "{e}");
        let e = creation_rule(
            "creation_rules:\n- path_regex: ^x\n  age: age1q\n",
            "c",
            "y",
        )
        .unwrap_err();
        assert!(matches!(e, Error::NoCreationRule { .. }), "{e}");
        assert_eq!(
            creation_rule("destination_rules: []\n", "c", "y").unwrap(),
            None
        );
        let e = creation_rule(
            "creation_rules:\n- age: age1q\n  encrypted_regex: a\n  unencrypted_suffix: b\n",
            "c",
            "y",
        );
        assert!(matches!(e, Err(Error::ConflictingRules)));
    }

    #[test]
    fn finds_nearest_config_walking_up() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(
            dir.path().join(".sops.yaml"),
            "creation_rules:\n- path_regex: ^a/b/\n  age: age1root\n",
        )
        .unwrap();
        let (cfg, rule) = load_creation_rule(&dir.path().join("a/b/s.yaml"))
            .unwrap()
            .unwrap();
        assert_eq!(cfg, dir.path().join(".sops.yaml"));
        assert_eq!(rule.age, vec!["age1root"]);
        std::fs::write(
            dir.path().join("a/.sops.yaml"),
            "creation_rules:\n- path_regex: ^b/s\n  age: age1near\n",
        )
        .unwrap();
        let (_, rule) = load_creation_rule(&dir.path().join("a/b/s.yaml"))
            .unwrap()
            .unwrap();
        assert_eq!(rule.age, vec!["age1near"]);
    }
}
