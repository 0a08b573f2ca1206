//! SARIF 2.1.0, as GitHub code scanning accepts it.

use std::io::{self, Write};

use serde_json::{json, Value};

use super::Report;
use crate::finding::{Finding, Severity};
use crate::policy::Policy;
use crate::rules::RULES;
use crate::source::ScanResult;

/// Where the tool is documented (`tool.driver.informationUri`).
pub const INFORMATION_URI: &str = "https://github.com/OWNER/kustodian";

/// One run of `kustodian` with every rule of [`RULES`] in `tool.driver.rules` and one result
/// per finding. Messages, rule texts and the fingerprint are the only text in it: no value text.
/// `partialFingerprints.primaryLocationLineHash` is the finding's fingerprint, so GitHub keeps
/// an alert open across line moves and opens a new one when the value changes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sarif;

/// `error` for a blocking finding above low severity, `warning` otherwise.
pub(super) fn is_error(f: &Finding, policy: &Policy) -> bool {
    policy.blocks(f) && f.severity > Severity::Low
}

/// A repo-relative path as a URI reference: `/` kept, anything outside the unreserved set
/// percent-encoded.
fn uri(path: &str) -> String {
    let mut s = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// `results`, serialized one finding at a time so a large report is never held whole.
struct Results<'a> {
    result: &'a ScanResult,
    policy: &'a Policy,
    /// Rule ids in the order of `tool.driver.rules`.
    ids: Vec<&'a str>,
}

impl Results<'_> {
    fn one(&self, f: &Finding) -> Value {
        let index = self
            .ids
            .iter()
            .position(|id| *id == f.rule_id())
            .expect("every rule id has a row in tool.driver.rules");
        let mut properties = json!({ "severity": f.severity.as_str() });
        if let Some(c) = &f.commit {
            properties["commit"] = json!(c.id);
            properties["author"] = json!(c.author);
            properties["email"] = json!(c.email);
            properties["date"] = json!(c.date);
        }
        json!({
            "ruleId": f.rule_id(),
            "ruleIndex": index,
            "level": if is_error(f, self.policy) { "error" } else { "warning" },
            "message": { "text": f.full_message() },
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": {
                        "uri": uri(&f.location.path),
                        "uriBaseId": "%SRCROOT%",
                    },
                    "region": {
                        "startLine": f.location.line,
                        "startColumn": f.location.column,
                    },
                },
            }],
            "partialFingerprints": { "primaryLocationLineHash": f.fingerprint },
            "properties": properties,
        })
    }
}

impl serde::Serialize for Results<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.result.findings.len()))?;
        for f in &self.result.findings {
            seq.serialize_element(&self.one(f))?;
        }
        seq.end()
    }
}

#[derive(serde::Serialize)]
struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    runs: [Run<'a>; 1],
    version: &'static str,
}

#[derive(serde::Serialize)]
struct Run<'a> {
    results: Results<'a>,
    tool: Value,
}

impl Sarif {
    fn log_of<'a>(&self, result: &'a ScanResult, policy: &'a Policy) -> Log<'a> {
        let rule = |id: &str, summary: &str, description: &str, help: &str| {
            json!({
                "id": id,
                "name": id,
                "shortDescription": { "text": summary },
                "fullDescription": { "text": description },
                "help": { "text": help },
                "defaultConfiguration": { "level": "error" },
                "properties": { "tags": ["security", "secrets", "kubernetes"] },
            })
        };
        // The built-in rules, then the policy's custom rules under their own ids.
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.code).collect();
        let mut rules: Vec<Value> = RULES
            .iter()
            .map(|r| rule(r.code, r.summary, r.description, r.help))
            .collect();
        for c in &policy.custom_rules {
            ids.push(&c.id);
            rules.push(rule(
                &c.id,
                &c.message,
                &format!("Custom rule of the policy: {}", c.message),
                "follow the rule's message, or change the policy's `custom_rules`",
            ));
        }
        Log {
            schema: "https://json.schemastore.org/sarif-2.1.0.json",
            version: "2.1.0",
            runs: [Run {
                tool: json!({
                    "driver": {
                        "name": "kustodian",
                        "version": env!("CARGO_PKG_VERSION"),
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    },
                }),
                results: Results {
                    result,
                    policy,
                    ids,
                },
            }],
        }
    }

    /// The SARIF log as a JSON value.
    pub fn log(&self, result: &ScanResult, policy: &Policy) -> Value {
        serde_json::to_value(self.log_of(result, policy)).expect("a SARIF log is JSON")
    }
}

impl Report for Sarif {
    /// Writes the log as it goes: one finding's result at a time.
    fn report(&self, result: &ScanResult, policy: &Policy, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, &self.log_of(result, policy))?;
        writeln!(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_keeps_slashes_and_encodes_the_rest() {
        assert_eq!(uri("deploy/db.yaml"), "deploy/db.yaml");
        assert_eq!(uri("a b/c%,d.yaml"), "a%20b/c%25%2Cd.yaml");
    }
}
