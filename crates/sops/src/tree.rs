//! Walking a tree to encrypt or decrypt its values and compute the MAC, as sops does.
//!
//! Leaves are visited in document order with their key path (sequence items keep their
//! parent's path). Whether a leaf is encrypted depends on the file's [`Selection`]. The MAC is
//! the upper-case hex SHA-512 over every non-null leaf's plaintext (only the encrypted ones with
//! `mac_only_encrypted`), comments excluded.

use std::collections::HashMap;

use regex::Regex;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use crate::cipher::{self, is_encrypted_value, seal, DataKey};
use crate::error::{Error, Result};
use crate::format::{bool_plain, float_plain, parse_go_bool, parse_go_float};
use crate::value::{MapItem, SeqItem, Text, Value};

/// Which values of a file are encrypted: one of sops's selection options.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Selection {
    /// Values under a key ending with this suffix stay clear (sops's default, `_unencrypted`).
    UnencryptedSuffix(String),
    /// Only values under a key ending with this suffix are encrypted.
    EncryptedSuffix(String),
    /// Values under a key matching this regex stay clear.
    UnencryptedRegex(String),
    /// Only values under a key matching this regex are encrypted.
    EncryptedRegex(String),
    /// Values after a comment matching this regex stay clear.
    UnencryptedCommentRegex(String),
    /// Only values after a comment matching this regex are encrypted.
    EncryptedCommentRegex(String),
}

impl Default for Selection {
    fn default() -> Self {
        Selection::UnencryptedSuffix("_unencrypted".into())
    }
}

impl Selection {
    /// The option's name in the `sops` metadata block and in `.sops.yaml`.
    pub fn key(&self) -> &'static str {
        match self {
            Selection::UnencryptedSuffix(_) => "unencrypted_suffix",
            Selection::EncryptedSuffix(_) => "encrypted_suffix",
            Selection::UnencryptedRegex(_) => "unencrypted_regex",
            Selection::EncryptedRegex(_) => "encrypted_regex",
            Selection::UnencryptedCommentRegex(_) => "unencrypted_comment_regex",
            Selection::EncryptedCommentRegex(_) => "encrypted_comment_regex",
        }
    }

    /// The suffix or regex.
    pub fn value(&self) -> &str {
        match self {
            Selection::UnencryptedSuffix(s)
            | Selection::EncryptedSuffix(s)
            | Selection::UnencryptedRegex(s)
            | Selection::EncryptedRegex(s)
            | Selection::UnencryptedCommentRegex(s)
            | Selection::EncryptedCommentRegex(s) => s,
        }
    }

    /// Builds the option named `key` (as in the metadata block), if it is one.
    pub fn from_key(key: &str, value: String) -> Option<Selection> {
        Some(match key {
            "unencrypted_suffix" => Selection::UnencryptedSuffix(value),
            "encrypted_suffix" => Selection::EncryptedSuffix(value),
            "unencrypted_regex" => Selection::UnencryptedRegex(value),
            "encrypted_regex" => Selection::EncryptedRegex(value),
            "unencrypted_comment_regex" => Selection::UnencryptedCommentRegex(value),
            "encrypted_comment_regex" => Selection::EncryptedCommentRegex(value),
            _ => return None,
        })
    }

    /// The names of all selection options.
    pub const KEYS: [&'static str; 6] = [
        "unencrypted_suffix",
        "encrypted_suffix",
        "unencrypted_regex",
        "encrypted_regex",
        "unencrypted_comment_regex",
        "encrypted_comment_regex",
    ];
}

/// A [`Selection`] ready to apply (its regex compiled).
#[derive(Debug)]
pub struct Rules {
    sel: Selection,
    re: Option<Regex>,
    mac_only_encrypted: bool,
}

impl Rules {
    /// Compiles `sel`; an error when its regex does not compile. `mac_only_encrypted` is the
    /// metadata option of that name (it only matters for the MAC).
    pub fn new(sel: Selection, mac_only_encrypted: bool) -> Result<Rules> {
        let re = match &sel {
            Selection::UnencryptedRegex(r)
            | Selection::EncryptedRegex(r)
            | Selection::UnencryptedCommentRegex(r)
            | Selection::EncryptedCommentRegex(r) => {
                Some(Regex::new(r).map_err(|e| Error::BadRegex {
                    option: sel.key(),
                    regex: r.clone(),
                    message: e.to_string(),
                })?)
            }
            _ => None,
        };
        Ok(Rules {
            sel,
            re,
            mac_only_encrypted,
        })
    }

    fn tracks_comments(&self) -> bool {
        matches!(
            self.sel,
            Selection::UnencryptedCommentRegex(_) | Selection::EncryptedCommentRegex(_)
        )
    }

    /// The selection these rules apply.
    pub fn selection(&self) -> &Selection {
        &self.sel
    }

    /// Whether sops encrypts the value at `path` (the mapping keys from the root; a rule that
    /// matches any key on the path applies to everything below it). `None` for the comment
    /// selections, which depend on the comments above a value, not on its keys.
    pub fn encrypts_key_path<K: AsRef<str>>(&self, path: &[K]) -> Option<bool> {
        let re = || self.re.as_ref().expect("regex selections are compiled");
        let any = |f: &dyn Fn(&str) -> bool| path.iter().any(|k| f(k.as_ref()));
        Some(match &self.sel {
            Selection::UnencryptedSuffix(s) => s.is_empty() || !any(&|k| k.ends_with(s.as_str())),
            Selection::EncryptedSuffix(s) => s.is_empty() || any(&|k| k.ends_with(s.as_str())),
            Selection::UnencryptedRegex(_) => !any(&|k| re().is_match(k)),
            Selection::EncryptedRegex(_) => any(&|k| re().is_match(k)),
            Selection::UnencryptedCommentRegex(_) | Selection::EncryptedCommentRegex(_) => {
                return None
            }
        })
    }

    fn should_encrypt(&self, path: &[String], stack: &[Vec<Text>], is_comment: bool) -> bool {
        if let Some(by_key) = self.encrypts_key_path(path) {
            return by_key;
        }
        let re = || self.re.as_ref().expect("regex selections are compiled");
        match &self.sel {
            Selection::UnencryptedSuffix(_)
            | Selection::EncryptedSuffix(_)
            | Selection::UnencryptedRegex(_)
            | Selection::EncryptedRegex(_) => unreachable!("answered by encrypts_key_path"),
            Selection::UnencryptedCommentRegex(_) => {
                !stack.iter().flatten().any(|c| re().is_match(c.as_str()))
            }
            Selection::EncryptedCommentRegex(_) => {
                // The comment line that matches is itself left clear; only later lines count.
                let last = stack.len().saturating_sub(1);
                let last_len = stack.last().map_or(0, Vec::len);
                stack.iter().enumerate().any(|(i, cs)| {
                    cs.iter().enumerate().any(|(j, c)| {
                        !(is_comment && i == last && j + 1 == last_len) && re().is_match(c.as_str())
                    })
                })
            }
        }
    }
}

enum Leaf<'a> {
    Scalar(&'a mut Value),
    Comment(&'a mut Text),
}

type Visit<'f> = dyn FnMut(Leaf<'_>, &[String], &[Vec<Text>]) -> Result<()> + 'f;

/// Walks one document from its root (see [`walk`]).
fn walk_doc(doc: &mut Value, track: bool, f: &mut Visit<'_>) -> Result<()> {
    walk(doc, &mut Vec::new(), &mut Vec::new(), track, f)
}

fn walk(
    v: &mut Value,
    path: &mut Vec<String>,
    stack: &mut Vec<Vec<Text>>,
    track: bool,
    f: &mut Visit<'_>,
) -> Result<()> {
    match v {
        Value::Null => Ok(()),
        Value::Map(_) | Value::Seq(_) => walk_items(items_mut(v), path, stack, track, f),
        scalar => f(Leaf::Scalar(scalar), path, stack),
    }
}

/// An item of a mapping (with its key) or of a sequence.
enum Item<'a> {
    Comment(&'a mut Text),
    Value(Option<&'a String>, &'a mut Value),
}

/// The items of a mapping or a sequence, in order (none for a scalar).
fn items_mut(v: &mut Value) -> Vec<Item<'_>> {
    match v {
        Value::Map(items) => items
            .iter_mut()
            .map(|i| match i {
                MapItem::Comment(t) => Item::Comment(t),
                MapItem::Entry(k, v) => Item::Value(Some(k), v),
            })
            .collect(),
        Value::Seq(items) => items
            .iter_mut()
            .map(|i| match i {
                SeqItem::Comment(t) => Item::Comment(t),
                SeqItem::Value(v) => Item::Value(None, v),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Walks the items of one mapping or sequence: comments are remembered (for comment-based
/// selection) until the next value, whose key extends the path.
fn walk_items(
    items: Vec<Item<'_>>,
    path: &mut Vec<String>,
    stack: &mut Vec<Vec<Text>>,
    track: bool,
    f: &mut Visit<'_>,
) -> Result<()> {
    stack.push(Vec::new());
    for item in items {
        match item {
            Item::Comment(t) => {
                if track {
                    stack.last_mut().expect("pushed").push(t.clone());
                }
                f(Leaf::Comment(t), path, stack)?;
            }
            Item::Value(key, v) => {
                if let Some(k) = key {
                    path.push(k.clone());
                }
                walk(v, path, stack, track, f)?;
                if key.is_some() {
                    path.pop();
                }
                stack.last_mut().expect("pushed").clear();
            }
        }
    }
    stack.pop();
    Ok(())
}

/// The additional data for a value at `path`.
pub(crate) fn ad(path: &[String]) -> String {
    let mut s = path.join(":");
    s.push(':');
    s
}

/// The bytes sops encrypts and hashes for a scalar.
fn to_bytes(v: &Value) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(match v {
        Value::Str(s) => s.as_str().as_bytes().to_vec(),
        Value::Int(i) => i.to_string().into_bytes(),
        Value::Float(f) => float_plain(*f).into_bytes(),
        Value::Bool(b) => bool_plain(*b).as_bytes().to_vec(),
        Value::Null | Value::Map(_) | Value::Seq(_) => Vec::new(),
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Int(_) => "int",
        Value::Float(_) => "float",
        Value::Bool(_) => "bool",
        _ => "str",
    }
}

fn typed(ty: &str, bytes: &[u8]) -> Option<Value> {
    let s = std::str::from_utf8(bytes).ok()?;
    Some(match ty {
        "str" | "bytes" => Value::str(s),
        "int" | "int64" => Value::Int(s.parse().ok()?),
        "float" => Value::Float(parse_go_float(s)?),
        "bool" => Value::Bool(parse_go_bool(s)?),
        _ => return None,
    })
}

fn mac_hasher(rules: &Rules) -> Sha512 {
    let mut h = Sha512::new();
    if rules.mac_only_encrypted {
        // sops starts such MACs with SHA-256("sops") so they never equal a full MAC.
        h.update(sha2::Sha256::digest(b"sops"));
    }
    h
}

/// IVs of the values as they were decrypted, so that unchanged values re-encrypt to the same
/// text. Keyed by a hash of (additional data, type, plaintext); holds no plaintext.
#[derive(Default)]
pub(crate) struct IvStash(HashMap<[u8; 64], [u8; 32]>);

impl IvStash {
    fn id(ad: &str, ty: &str, plain: &[u8]) -> [u8; 64] {
        let mut h = Sha512::new();
        h.update(ad.as_bytes());
        h.update([0]);
        h.update(ty.as_bytes());
        h.update([0]);
        h.update(plain);
        h.finalize().into()
    }
}

/// Decrypts every encrypted leaf in place and returns the MAC computed over the plaintext.
pub(crate) fn decrypt_docs(
    docs: &mut [Value],
    rules: &Rules,
    key: &DataKey,
    file: &str,
    mut stash: Option<&mut IvStash>,
) -> Result<String> {
    let mut mac = mac_hasher(rules);
    let track = rules.tracks_comments();
    for doc in docs.iter_mut() {
        comment_items_to_comments(doc);
    }
    for doc in docs.iter_mut() {
        walk_doc(doc, track, &mut |leaf, path, stack| {
            let Leaf::Scalar(v) = leaf else { return Ok(()) };
            let encrypted = rules.should_encrypt(path, stack, false);
            if encrypted {
                match v {
                    Value::Str(s) if s.as_str().is_empty() => {}
                    Value::Str(s) => {
                        let malformed = || Error::MalformedValue {
                            file: file.into(),
                            path: ad(path),
                        };
                        let sealed = cipher::parse(s.as_str()).ok_or_else(malformed)?;
                        let ad = ad(path);
                        let plain = sealed.open(key, &ad).map_err(|_| Error::Tampered {
                            file: file.into(),
                            path: ad.clone(),
                        })?;
                        let value = typed(&sealed.ty, &plain).ok_or_else(malformed)?;
                        if let Some(stash) = stash.as_deref_mut() {
                            if let Ok(iv) = <[u8; 32]>::try_from(&sealed.iv[..]) {
                                stash.0.insert(
                                    IvStash::id(&ad, type_name(&value), &to_bytes(&value)),
                                    iv,
                                );
                            }
                        }
                        *v = value;
                    }
                    _ => {
                        return Err(Error::MalformedValue {
                            file: file.into(),
                            path: ad(path),
                        })
                    }
                }
            }
            if !rules.mac_only_encrypted || encrypted {
                mac.update(&to_bytes(v)[..]);
            }
            Ok(())
        })?;
    }
    for doc in docs.iter_mut() {
        decrypt_comments(doc, &mut Vec::new(), key, &mut stash);
    }
    Ok(hex::encode_upper(mac.finalize()))
}

/// sops writes an encrypted comment inside a sequence as an item (`- ENC[...,type:comment]`);
/// it is a comment again once read.
fn comment_items_to_comments(v: &mut Value) {
    match v {
        Value::Map(items) => items.iter_mut().for_each(|i| {
            if let MapItem::Entry(_, v) = i {
                comment_items_to_comments(v)
            }
        }),
        Value::Seq(items) => {
            for item in items.iter_mut() {
                let is_comment = matches!(item, SeqItem::Value(Value::Str(s))
                    if cipher::parse(s.as_str()).is_some_and(|c| c.ty == "comment"));
                if is_comment {
                    if let SeqItem::Value(Value::Str(s)) = item {
                        *item = SeqItem::Comment(s.clone());
                    }
                } else if let SeqItem::Value(v) = item {
                    comment_items_to_comments(v);
                }
            }
        }
        _ => {}
    }
}

/// Encrypts every leaf the rules select, in place, and returns the MAC over the plaintext.
pub(crate) fn encrypt_docs(
    docs: &mut [Value],
    rules: &Rules,
    key: &DataKey,
    stash: &IvStash,
) -> Result<String> {
    let mut mac = mac_hasher(rules);
    let track = rules.tracks_comments();
    for doc in docs.iter_mut() {
        walk_doc(doc, track, &mut |leaf, path, stack| {
            match leaf {
                Leaf::Comment(t) => {
                    if rules.should_encrypt(path, stack, true)
                        && !t.as_str().is_empty()
                        && !is_encrypted_value(t.as_str())
                    {
                        let ad = ad(path);
                        let iv = stash
                            .0
                            .get(&IvStash::id(&ad, "comment", t.as_str().as_bytes()));
                        *t = Text::new(seal(key, t.as_str().as_bytes(), "comment", &ad, iv));
                    }
                }
                Leaf::Scalar(v) => {
                    let encrypted = rules.should_encrypt(path, stack, false);
                    let bytes = to_bytes(v);
                    if !rules.mac_only_encrypted || encrypted {
                        mac.update(&bytes[..]);
                    }
                    let empty = matches!(v, Value::Str(s) if s.as_str().is_empty());
                    if encrypted && !empty {
                        let ty = type_name(v);
                        let ad = ad(path);
                        let iv = stash.0.get(&IvStash::id(&ad, ty, &bytes));
                        *v = Value::str(seal(key, &bytes, ty, &ad, iv));
                    }
                }
            }
            Ok(())
        })?;
    }
    Ok(hex::encode_upper(mac.finalize()))
}

/// Decrypts `#ENC[...]` comments. A comment's additional data is the path of the collection
/// that holds it; since comment placement is a heuristic, the paths of the enclosing and the
/// preceding collections are tried too. A comment that does not decrypt is left as it is
/// (sops does the same: comments are not covered by the MAC).
fn decrypt_comments(
    v: &mut Value,
    path: &mut Vec<String>,
    key: &DataKey,
    stash: &mut Option<&mut IvStash>,
) {
    // The last value before a comment, with its key in a mapping.
    let mut prev = None;
    for item in items_mut(v) {
        match item {
            Item::Comment(t) => open_comment(t, path, prev, key, stash),
            Item::Value(k, v) => {
                path.extend(k.cloned());
                decrypt_comments(v, path, key, stash);
                if k.is_some() {
                    path.pop();
                }
                prev = Some((k.map(String::as_str), &*v));
            }
        }
    }
}

fn open_comment(
    t: &mut Text,
    path: &[String],
    prev: Option<(Option<&str>, &Value)>,
    key: &DataKey,
    stash: &mut Option<&mut IvStash>,
) {
    let Some(sealed) = cipher::parse(t.as_str()) else {
        return;
    };
    let mut candidates = vec![ad(path)];
    if let Some((k, v)) = prev {
        let mut p = path.to_vec();
        p.extend(k.map(str::to_string));
        descend(v, &mut p, &mut candidates);
    }
    for n in (0..path.len()).rev() {
        candidates.push(ad(&path[..n]));
    }
    for c in candidates {
        if let Ok(plain) = sealed.open(key, &c) {
            if let Ok(s) = std::str::from_utf8(&plain) {
                // Reuse the IV only under the same additional data (never across two).
                if let (Some(stash), Ok(iv)) =
                    (stash.as_deref_mut(), <[u8; 32]>::try_from(&sealed.iv[..]))
                {
                    if c == ad(path) {
                        stash.0.insert(IvStash::id(&c, "comment", s.as_bytes()), iv);
                    }
                }
                *t = Text::new(s);
                return;
            }
        }
    }
}

fn descend(v: &Value, p: &mut Vec<String>, out: &mut Vec<String>) {
    let last = match v {
        Value::Map(_) => v.entries().last().map(|(k, v)| (Some(k), v)),
        Value::Seq(_) => v.items().last().map(|v| (None, v)),
        _ => return,
    };
    out.push(ad(p));
    if let Some((k, v)) = last {
        p.extend(k.map(str::to_string));
        descend(v, p, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(sel: Selection) -> Rules {
        Rules::new(sel, false).unwrap()
    }

    fn p(keys: &[&str]) -> Vec<String> {
        keys.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn selection_rules() {
        let r = rules(Selection::default());
        assert!(r.should_encrypt(&p(&["a", "b"]), &[], false));
        assert!(!r.should_encrypt(&p(&["a_unencrypted", "b"]), &[], false));
        let r = rules(Selection::EncryptedRegex("^(data|stringData)$".into()));
        assert!(r.should_encrypt(&p(&["stringData", "x"]), &[], false));
        assert!(!r.should_encrypt(&p(&["metadata", "name"]), &[], false));
        assert!(!r.should_encrypt(&p(&[]), &[], true));
        let r = rules(Selection::EncryptedSuffix("_enc".into()));
        assert!(r.should_encrypt(&p(&["x_enc", "y"]), &[], false));
        assert!(!r.should_encrypt(&p(&["x"]), &[], false));
        let r = rules(Selection::UnencryptedRegex("^public".into()));
        assert!(!r.should_encrypt(&p(&["public_key"]), &[], false));
        let r = rules(Selection::EncryptedCommentRegex("sops:enc".into()));
        let marker = vec![vec![Text::new(" sops:enc")]];
        assert!(r.should_encrypt(&p(&["a"]), &marker, false));
        assert!(
            !r.should_encrypt(&p(&[]), &marker, true),
            "the marker comment stays clear"
        );
        assert!(matches!(
            Rules::new(Selection::EncryptedRegex("(".into()), false),
            Err(Error::BadRegex { .. })
        ));
    }

    #[test]
    fn encrypt_then_decrypt_restores_values_and_mac() {
        let src = "# first-comment\na: s3cr3t\nn: 5\nf: 1.5\nb: false\nz: null\ne: \"\"\nl:\n- x\n- k: v\n  # second-comment\nkeep_unencrypted: clear\n";
        let plain = crate::store::parse_yaml(src, "t").unwrap();
        let key = DataKey::generate();
        let r = rules(Selection::default());
        let mut docs = plain.clone();
        let mac1 = encrypt_docs(&mut docs, &r, &key, &IvStash::default()).unwrap();
        let text = crate::store::emit_yaml(&[&docs[0]]);
        assert!(
            !text.contains("s3cr3t") && !text.contains("-comment"),
            "{text}"
        );
        assert!(text.contains("keep_unencrypted: clear"), "{text}");
        assert!(
            text.contains("z: null") && text.contains("e: \"\""),
            "{text}"
        );
        let mut back = crate::store::parse_yaml(&text, "t").unwrap();
        let mut stash = IvStash::default();
        let mac2 = decrypt_docs(&mut back, &r, &key, "t", Some(&mut stash)).unwrap();
        assert_eq!(mac1, mac2);
        assert_eq!(back, plain);
        // With the stash, unchanged values encrypt to the same text.
        let mut again = plain.clone();
        encrypt_docs(&mut again, &r, &key, &stash).unwrap();
        assert_eq!(again[0].get("a"), docs[0].get("a"));
    }
}
