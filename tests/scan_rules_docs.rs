//! docs/rules.md tells the truth: every rule of the scanner has a section there with a blocked
//! and an allowed example, and each example, written to a fresh repository and scanned, does
//! what the page says. An example is a fenced block whose info string names its role and file:
//! ```` ```yaml blocked file=app.yaml ````, ```` ```yaml allowed ```` (file `example.yaml`), or
//! ```` ```yaml setup file=.kustodian.yaml ```` for a file both examples need (a policy). A
//! blocked example must exit 1 with a finding of the section's rule on every line marked
//! `# blocks`; an allowed example must exit 0 with no finding at all.

mod common;

use std::collections::BTreeMap;

use common::{findings, kustodian, new_repo};

/// Rules whose examples cannot be files (a blob missing from a clone): the test that shows them.
const NOT_FILES: &[(&str, &str)] = &[(
    "unreadable-blob",
    "tests/scan_credentials.rs::a_missing_blob_is_an_unreadable_blob_finding_and_the_scan_goes_on",
)];

/// One fenced example: its role, the file it is written to and its text.
struct Example {
    role: String,
    file: String,
    body: String,
}

/// The `## \`code\`` sections of the page and their examples.
fn sections(page: &str) -> BTreeMap<String, Vec<Example>> {
    let mut out: BTreeMap<String, Vec<Example>> = BTreeMap::new();
    let mut code = None;
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        if let Some(h) = line.strip_prefix("## `") {
            let c = h.trim_end_matches('`').to_string();
            out.entry(c.clone()).or_default();
            code = Some(c);
            continue;
        }
        let Some(info) = line.strip_prefix("```").filter(|i| !i.is_empty()) else {
            continue;
        };
        let mut body = String::new();
        for l in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        let mut words = info.split_whitespace().skip(1);
        let Some(role) = words.next() else { continue };
        let file = words
            .find_map(|w| w.strip_prefix("file="))
            .unwrap_or("example.yaml");
        if let Some(c) = &code {
            out.get_mut(c).unwrap().push(Example {
                role: role.to_string(),
                file: file.to_string(),
                body,
            });
        }
    }
    out
}

/// The rule codes of the table at the top of the page.
fn table_codes(page: &str) -> Vec<String> {
    page.lines()
        .filter_map(|l| l.strip_prefix("| [`"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

/// Writes the examples of `role` (and the setup files) to a fresh repository and scans it.
fn scan_examples(code: &str, examples: &[Example], role: &str) -> std::process::Output {
    let tmp = new_repo();
    for e in examples
        .iter()
        .filter(|e| e.role == role || e.role == "setup")
    {
        common::write(tmp.path(), &e.file, &e.body);
    }
    let out = kustodian(tmp.path())
        .args(["scan", "--format", "json"])
        .output()
        .unwrap();
    // The examples' values are made up, but the rule holds for them too.
    for e in examples.iter().filter(|e| e.role == role) {
        for word in e.body.split_whitespace().filter(|w| w.len() >= 12) {
            let text = format!("{}{}", common::text(&out.stdout), common::text(&out.stderr));
            if is_value(word) {
                assert!(
                    !text.contains(word),
                    "{code}: the output shows {word}:\n{text}"
                );
            }
        }
    }
    out
}

/// A word of an example that is a value (the text after `key: ` or `KEY=`), not a key or a
/// path the output may name.
fn is_value(word: &str) -> bool {
    word.chars().any(|c| c.is_ascii_digit())
        && !word.ends_with(':')
        && !word.contains('/')
        && !word.starts_with('#')
}

#[test]
fn every_rule_has_a_blocked_and_an_allowed_example_that_behave_as_documented() {
    let page = std::fs::read_to_string(common::repo_root().join("docs/rules.md")).unwrap();
    let sections = sections(&page);
    let table = table_codes(&page);
    // Every rule the scanner knows (its code table) is in the page's table and has a section.
    let rules =
        std::fs::read_to_string(common::repo_root().join("crates/scan/src/rules.rs")).unwrap();
    let known: Vec<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("code: \""))
        .filter_map(|l| l.split('"').next())
        .map(str::to_string)
        .collect();
    assert!(!known.is_empty());
    for code in &known {
        assert!(
            table.contains(code),
            "{code} is not in the table of docs/rules.md"
        );
        assert!(sections.contains_key(code), "{code} has no section");
    }
    for (code, examples) in &sections {
        let has = |role: &str| examples.iter().any(|e| e.role == role);
        if let Some((_, test)) = NOT_FILES.iter().find(|(c, _)| c == code) {
            let (file, name) = test.split_once("::").unwrap();
            let tests = std::fs::read_to_string(common::repo_root().join(file)).unwrap();
            assert!(tests.contains(&format!("fn {name}()")), "{code}: {test}");
            continue;
        }
        assert!(
            has("blocked") && has("allowed"),
            "{code}: needs a `blocked` and an `allowed` example"
        );
        let out = scan_examples(code, examples, "blocked");
        let f = findings(&out);
        assert_eq!(out.status.code(), Some(1), "{code}: blocked example: {f:?}");
        let rule_of = |x: &serde_json::Value| x["rule"].as_str().unwrap_or("").to_string();
        // A custom rule reports under its own id.
        let matches_rule = |x: &serde_json::Value| {
            rule_of(x) == *code || (code == "custom-rule" && !known.contains(&rule_of(x)))
        };
        assert!(
            f.iter().any(matches_rule),
            "{code}: blocked example gives {f:?}"
        );
        for e in examples.iter().filter(|e| e.role == "blocked") {
            for (i, line) in e.body.lines().enumerate() {
                if line.contains("# blocks") {
                    assert!(
                        f.iter().any(|x| matches_rule(x)
                            && x["path"] == e.file.as_str()
                            && x["line"] == i + 1),
                        "{code}: {}:{} is marked `# blocks` but gives {f:?}",
                        e.file,
                        i + 1
                    );
                }
            }
        }
        let out = scan_examples(code, examples, "allowed");
        let f = findings(&out);
        assert_eq!(
            (out.status.code(), f.len()),
            (Some(0), 0),
            "{code}: allowed example: {f:?}"
        );
    }
}
