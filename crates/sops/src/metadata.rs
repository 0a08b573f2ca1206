//! The `sops:` block: recipients with their wrapped data keys, `lastmodified`, the encrypted
//! MAC, the selection option and the version.

use crate::error::{Error, Result};
use crate::master::{self, KeyEntry, MasterKey};
use crate::tree::Selection;
use crate::value::{MapItem, SeqItem, Text, Value};

/// The sops format version this crate writes.
pub const SOPS_VERSION: &str = "3.11.0";

/// One age recipient and the data key wrapped for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgeStanza {
    /// The recipient (`age1...`).
    pub recipient: String,
    /// The data key encrypted to the recipient, as an armored age file.
    pub enc: String,
}

/// A file's `sops` metadata.
#[derive(Clone, Debug)]
pub struct Metadata {
    /// Age recipients with their wrapped data keys.
    pub age: Vec<AgeStanza>,
    /// Other key types present with at least one key (`pgp`, `kms`, ...).
    pub other_key_types: Vec<String>,
    /// Every master key with its wrapped data key (or Shamir share), by key group. Files
    /// without `key_groups` have one group.
    pub key_groups: Vec<Vec<KeyEntry>>,
    /// How many groups must open to rebuild the data key (`shamir_threshold`; 0 when unset).
    pub shamir_threshold: usize,
    /// `lastmodified`, exactly as written (it is the MAC's additional data).
    pub lastmodified: String,
    /// The encrypted MAC, if present.
    pub mac: Option<String>,
    /// Which values are encrypted.
    pub selection: Selection,
    /// Whether the MAC covers only encrypted values.
    pub mac_only_encrypted: bool,
    /// The sops version that wrote the file.
    pub version: String,
    /// The block as read, re-emitted by `edit` with only `lastmodified` and `mac` changed.
    pub(crate) raw: Value,
}

fn text(v: &Value) -> Option<String> {
    v.to_text().map(|t| t.to_string())
}

impl Metadata {
    /// Reads the metadata from the `sops` value of a document.
    pub(crate) fn parse(v: &Value, file: &str) -> Result<Metadata> {
        let bad = |what: &str| Error::Metadata {
            file: file.into(),
            what: what.into(),
        };
        if !v.is_map() {
            return Err(bad("`sops` is not a mapping"));
        }
        let key_groups = match v.get("key_groups").filter(|g| g.items().next().is_some()) {
            Some(groups) => groups
                .items()
                .map(|g| master::parse_group(g, file))
                .collect::<Result<Vec<_>>>()?,
            None => vec![master::parse_group(v, file)?],
        };
        let shamir_threshold = match v.get("shamir_threshold") {
            None | Some(Value::Null) => Some(0),
            Some(Value::Int(n)) => usize::try_from(*n).ok(),
            Some(Value::Float(f)) if f.fract() == 0.0 && *f >= 0.0 => Some(*f as usize),
            Some(other) => other.to_text().and_then(|t| t.trim().parse().ok()),
        }
        .filter(|n| *n <= key_groups.len())
        .ok_or_else(|| bad("shamir_threshold is not a number of key groups"))?;
        let age = key_groups
            .iter()
            .flatten()
            .filter_map(|e| match &e.key {
                MasterKey::Age(r) => Some(AgeStanza {
                    recipient: r.clone(),
                    enc: e.enc.clone(),
                }),
                _ => None,
            })
            .collect();
        let mut other_key_types: Vec<String> = Vec::new();
        for e in key_groups.iter().flatten() {
            let k = e.key.kind();
            if k != "age" && !other_key_types.iter().any(|o| o == k) {
                other_key_types.push(k.to_string());
            }
        }
        let mut selection = None;
        for key in Selection::KEYS {
            if let Some(s) = v.get(key).and_then(text).filter(|s| !s.is_empty()) {
                if selection.is_some() {
                    return Err(bad(
                        "more than one selection option (encrypted_regex, unencrypted_suffix, ...)",
                    ));
                }
                selection = Selection::from_key(key, s);
            }
        }
        Ok(Metadata {
            age,
            other_key_types,
            key_groups,
            shamir_threshold,
            lastmodified: v
                .get("lastmodified")
                .and_then(text)
                .ok_or_else(|| bad("no lastmodified"))?,
            mac: v.get("mac").and_then(text).filter(|m| !m.is_empty()),
            selection: selection.unwrap_or_default(),
            mac_only_encrypted: matches!(v.get("mac_only_encrypted"), Some(Value::Bool(true))),
            version: v.get("version").and_then(text).unwrap_or_default(),
            raw: v.clone(),
        })
    }

    /// A new block, in the order sops writes it: with one group, the key lists and the other
    /// fields sorted by name; with several, `shamir_threshold` and `key_groups` first.
    pub(crate) fn new_block(
        groups: &[Vec<KeyEntry>],
        shamir_threshold: usize,
        lastmodified: &str,
        mac: &str,
        selection: &Selection,
        mac_only_encrypted: bool,
    ) -> Value {
        let entry = |k: &str, v: Value| MapItem::Entry(k.to_string(), v);
        let mut items = vec![
            entry("lastmodified", Value::str(lastmodified)),
            entry("mac", Value::str(mac)),
            entry(selection.key(), Value::str(selection.value())),
        ];
        if mac_only_encrypted {
            items.push(entry("mac_only_encrypted", Value::Bool(true)));
        }
        items.push(entry("version", Value::str(SOPS_VERSION)));
        let mut head = Vec::new();
        match groups {
            [one] => items.extend(master::group_items(one)),
            many => {
                head.push(entry(
                    "shamir_threshold",
                    Value::Int(shamir_threshold.max(1) as i64),
                ));
                let list = many
                    .iter()
                    .map(|g| SeqItem::Value(Value::Map(master::group_items(g))))
                    .collect();
                head.push(entry("key_groups", Value::Seq(list)));
            }
        }
        items.sort_by(|a, b| match (a, b) {
            (MapItem::Entry(x, _), MapItem::Entry(y, _)) => x.cmp(y),
            _ => std::cmp::Ordering::Equal,
        });
        head.extend(items);
        Value::Map(head)
    }

    /// This file's block with new key groups, `lastmodified` and MAC (for `updatekeys` and
    /// `rotate`); the selection option stays.
    pub(crate) fn rekeyed_block(
        &self,
        groups: &[Vec<KeyEntry>],
        shamir_threshold: usize,
        lastmodified: &str,
        mac: &str,
    ) -> Value {
        Metadata::new_block(
            groups,
            shamir_threshold,
            lastmodified,
            mac,
            &self.selection,
            self.mac_only_encrypted,
        )
    }

    /// The block as read, with a new `lastmodified` and `mac`.
    pub(crate) fn updated_block(&self, lastmodified: &str, mac: &str) -> Value {
        let mut raw = self.raw.clone();
        for (k, v) in [("lastmodified", lastmodified), ("mac", mac)] {
            match raw.get_mut(k) {
                Some(slot) => *slot = Value::str(v),
                None => {
                    if let Value::Map(items) = &mut raw {
                        items.push(MapItem::Entry(k.into(), Value::Str(Text::new(v))));
                    }
                }
            }
        }
        raw
    }
}

/// The current time as sops writes `lastmodified`: RFC 3339, UTC, whole seconds.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339_utc(secs)
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339_utc(secs: u64) -> String {
    rfc3339(secs as i64, 0)
}

/// Formats a time (seconds since the Unix epoch, at a UTC offset in minutes) as RFC 3339:
/// `2026-11-28T19:10:37+01:00`, or with `Z` for UTC.
pub fn rfc3339(secs: i64, offset_minutes: i32) -> String {
    let offset = i64::from(offset_minutes);
    let local = secs + offset * 60;
    let (days, rem) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let zone = if offset == 0 {
        "Z".to_string()
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        format!("{sign}{:02}:{:02}", offset.abs() / 60, offset.abs() % 60)
    };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{zone}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_754_506_505), "2025-08-06T18:55:05Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
    }
}
