//! What a render printed, and the checks the end-to-end tests of the remote stores make on it.

#![allow(dead_code)]

/// What a render printed.
pub struct Render {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Render {
    #[track_caller]
    pub fn expect_ok(&self) -> &Self {
        assert!(self.ok, "render failed:\n{}", self.stderr);
        self
    }

    #[track_caller]
    pub fn expect_failure(&self, parts: &[&str]) -> &Self {
        assert!(!self.ok, "expected a failure, got:\n{}", self.stdout);
        assert!(
            self.stdout.is_empty(),
            "a failed render printed to stdout:\n{}",
            self.stdout
        );
        for p in parts {
            assert!(
                self.stderr.contains(p),
                "stderr lacks {p:?}:\n{}",
                self.stderr
            );
        }
        self
    }

    /// `key: value` (plain or quoted) appears in the output.
    #[track_caller]
    pub fn has(&self, key: &str, value: &str) -> &Self {
        let forms = [
            format!("{key}: {value}"),
            format!("{key}: \"{value}\""),
            format!("{key}: '{value}'"),
        ];
        assert!(
            self.stdout
                .lines()
                .any(|l| forms.contains(&l.trim().to_string())),
            "output lacks {key}: {value}:\n{}",
            self.stdout
        );
        self
    }
}
