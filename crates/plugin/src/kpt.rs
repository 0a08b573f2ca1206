//! Refusing to run where kpt would write resolved secrets back into the package.
//!
//! `kpt fn render` and `kpt fn eval` write the function's output over the package files unless
//! given `-o stdout` (or `-o DIR`); the ResourceList kustodian receives is the same either way.
//! So the function looks at the command that ran it: a `kpt fn ...` without `-o`/`--output`
//! is refused. Where the parent's command line cannot be read (not Linux), items that carry
//! kpt's file annotations are refused. `KUSTODIAN_KPT_IN_PLACE=true` in the environment of the
//! person running kpt (never a file in the package) allows the in-place write.

use kustodian_manifest::{Node, Object};

const PATH_ANNOTATIONS: &[&str] = &[
    "config.kubernetes.io/path",
    "internal.config.kubernetes.io/path",
];

/// Why this run must not go on, if kpt would write the output into the package.
pub fn in_place_refusal(items: &[Node]) -> Option<String> {
    let opted_in = std::env::var("KUSTODIAN_KPT_IN_PLACE")
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
    if opted_in {
        return None;
    }
    let in_place = match parent_args() {
        Some(args) => kpt_writes_back(&args),
        None => items.iter().any(|i| {
            PATH_ANNOTATIONS
                .iter()
                .any(|a| Object::new(i).annotation(a).is_some())
        }),
    };
    in_place.then(|| {
        "kpt would write the resolved secrets back into the package files; render to stdout instead \
         (`kpt fn render --allow-exec PKG -o stdout`, or `-o DIR` for a folder outside Git), or set \
         KUSTODIAN_KPT_IN_PLACE=true in your environment if you really want the files overwritten"
            .to_string()
    })
}

/// `kpt fn render|eval ...` without an output flag.
fn kpt_writes_back(args: &[String]) -> bool {
    let is_kpt = args.first().is_some_and(|a| {
        std::path::Path::new(a)
            .file_name()
            .is_some_and(|n| n == "kpt")
    });
    let is_fn = args.iter().skip(1).any(|a| a == "fn");
    let has_output = args.iter().any(|a| {
        a == "-o"
            || a == "--output"
            || a.starts_with("--output=")
            || (a.starts_with("-o") && a.len() > 2 && !a.starts_with("--"))
    });
    is_kpt && is_fn && !has_output
}

/// The command line of the process that started this one.
fn parent_args() -> Option<Vec<String>> {
    #[cfg(target_os = "linux")]
    {
        let ppid = std::os::unix::process::parent_id();
        let raw = std::fs::read(format!("/proc/{ppid}/cmdline")).ok()?;
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        (!args.is_empty()).then_some(args)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn only_kpt_fn_without_output_writes_back() {
        assert!(kpt_writes_back(&args("kpt fn render --allow-exec pkg")));
        assert!(kpt_writes_back(&args(
            "/usr/bin/kpt fn eval --exec f pkg -- a=b"
        )));
        assert!(!kpt_writes_back(&args(
            "kpt fn render --allow-exec pkg -o stdout"
        )));
        assert!(!kpt_writes_back(&args("kpt fn render pkg --output=out")));
        assert!(!kpt_writes_back(&args("kpt fn eval pkg -ostdout")));
        assert!(!kpt_writes_back(&args("kustomize build --enable-exec .")));
    }
}
