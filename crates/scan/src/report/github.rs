//! GitHub Actions workflow commands: one annotation per finding.

use std::io::{self, Write};

use super::sarif::is_error;
use super::Report;
use crate::policy::Policy;
use crate::source::ScanResult;

/// `::error file=PATH,line=L,col=C,title=RULE::MESSAGE` per finding (`::warning` for low
/// severity or a finding that does not block), escaped as GitHub's workflow command syntax
/// requires.
#[derive(Clone, Copy, Debug, Default)]
pub struct Github;

/// Escapes the message of a workflow command.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value of a workflow command.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

impl Report for Github {
    fn report(&self, result: &ScanResult, policy: &Policy, out: &mut dyn Write) -> io::Result<()> {
        for f in &result.findings {
            let level = if is_error(f, policy) {
                "error"
            } else {
                "warning"
            };
            writeln!(
                out,
                "::{level} file={},line={},col={},title={}::{}",
                escape_property(&f.location.path),
                f.location.line,
                f.location.column,
                escape_property(f.rule_id()),
                escape_data(&format!("{} ({} severity)", f.full_message(), f.severity)),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_github_documents() {
        assert_eq!(escape_data("a%b\r\nc: d, e"), "a%25b%0D%0Ac: d, e");
        assert_eq!(escape_property("a%b:c,d\n"), "a%25b%3Ac%2Cd%0A");
    }
}
