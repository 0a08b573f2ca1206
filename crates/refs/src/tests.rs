//! Unit tests. Examples marked "AVP howitworks", "AVP backends" come from
//! argocd-vault-plugin's docs/howitworks.md and docs/backends.md; "vals
//! README" from helmfile/vals' README.md (Expression Syntax and backend
//! sections). Doc templates such as `<REGION>` are filled in with real-looking
//! values where the literal template would not be a valid reference.

use proptest::prelude::*;

use crate::*;

// ---------------------------------------------------------------------------
// helpers

fn one(s: &str) -> Reference {
    let refs = parse_all_with_generic(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
    assert_eq!(refs.len(), 1, "{s:?}: {refs:?}");
    refs.into_iter().next().unwrap()
}

fn path(p: &str, k: &str, v: Option<&str>) -> RefKind {
    RefKind::AvpPath {
        path: p.into(),
        key: k.into(),
        version: v.map(Into::into),
    }
}

fn generic(k: &str) -> RefKind {
    RefKind::AvpGeneric { key: k.into() }
}

fn vals(s: &str) -> ValsRef {
    match one(s).kind {
        RefKind::Vals(v) => v,
        other => panic!("{s:?}: not vals: {other:?}"),
    }
}

fn ptr(tokens: &[&str]) -> Option<Vec<String>> {
    Some(tokens.iter().map(|t| t.to_string()).collect())
}

fn params(v: &ValsRef) -> Vec<(&str, &str)> {
    v.params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn err(s: &str) -> ParseError {
    match parse_all_with_generic(s) {
        Err(e) => {
            assert_eq!(
                parse_all(s).err(),
                Some(e.clone()),
                "modes disagree on {s:?}"
            );
            e
        }
        Ok(r) => panic!("{s:?} parsed: {r:?}"),
    }
}

/// Every reference prints in a form that parses back to itself, spanning the
/// whole printed text.
fn assert_round_trip(refs: &[Reference], generic: bool) {
    for r in refs {
        let printed = r.to_string();
        let again = if generic {
            parse_all_with_generic(&printed)
        } else {
            parse_all(&printed)
        }
        .unwrap_or_else(|e| panic!("{printed:?} from {r:?}: {e}"));
        assert_eq!(again.len(), 1, "{printed:?}: {again:?}");
        assert_eq!(again[0].kind, r.kind, "{printed:?}");
        assert_eq!(again[0].modifiers, r.modifiers, "{printed:?}");
        assert_eq!(again[0].span, 0..printed.len(), "{printed:?}");
    }
}

/// The invariants that hold for any input: no panic, spans in order, inside
/// the string, on char boundaries, and the first error is the same in both
/// modes when it comes before any generic placeholder.
fn check_invariants(s: &str) {
    for generic in [false, true] {
        let res = if generic {
            parse_all_with_generic(s)
        } else {
            parse_all(s)
        };
        if let Ok(refs) = &res {
            let mut last = 0;
            for r in refs {
                assert!(
                    r.span.start >= last && r.span.end > r.span.start,
                    "{s:?}: {r:?}"
                );
                assert!(s.get(r.span.clone()).is_some(), "{s:?}: {r:?}");
                last = r.span.end;
            }
            assert_round_trip(refs, generic);
            let out = substitute(s, refs, |_| Ok::<_, ()>("XY")).unwrap();
            let replaced: usize = refs.iter().map(|r| r.span.len()).sum();
            assert_eq!(out.len(), s.len() - replaced + 2 * refs.len(), "{s:?}");
        }
        if !generic {
            assert!(
                contains_reference(s) || matches!(res, Ok(ref r) if r.is_empty()),
                "prefilter missed {s:?}"
            );
        } else if !contains_reference_with_generic(s) {
            assert!(
                matches!(res, Ok(ref r) if r.is_empty()),
                "prefilter missed {s:?}"
            );
        }
    }
    let _ = is_whole_reference(s);
    let _ = is_whole_reference_with_generic(s);
}

// ---------------------------------------------------------------------------
// argocd-vault-plugin: inline-path placeholders

#[test]
fn avp_inline_path_examples() {
    // AVP howitworks, "Inline-path placeholders".
    let cases = [
        (
            "<path:some/path#secret-key>",
            path("some/path", "secret-key", None),
        ),
        (
            "<path:some/path#secret-key#version>",
            path("some/path", "secret-key", Some("version")),
        ),
        (
            "<path:kv/data/testsecret#password>",
            path("kv/data/testsecret", "password", None),
        ),
        (
            "<path:kv/data/testsecret#password#2>",
            path("kv/data/testsecret", "password", Some("2")),
        ),
        // AVP howitworks, "Automatically ignoring <placeholder> strings" and
        // "Ignoring entire YAML/JSON files".
        (
            "<path:somewhere/in/my/vault#credential>",
            path("somewhere/in/my/vault", "credential", None),
        ),
        (
            "<path:somewhere/in/my/vault#credential#version3>",
            path("somewhere/in/my/vault", "credential", Some("version3")),
        ),
    ];
    for (s, kind) in cases {
        let r = one(s);
        assert_eq!(r.kind, kind, "{s}");
        assert_eq!(r.span, 0..s.len());
        assert!(r.modifiers.is_empty());
        assert_eq!(r.to_string(), s);
        assert!(is_whole_reference(s));
    }
}

#[test]
fn avp_backend_examples() {
    // AVP backends: one example per backend section.
    let cases = [
        // Vault, inline path and versioned secrets.
        ("<path:secret/data/database#username>", path("secret/data/database", "username", None)),
        (
            "<path:secret/data/database#password#1>",
            path("secret/data/database", "password", Some("1")),
        ),
        // IBM Cloud Secrets Manager.
        (
            "<path:ibmcloud/arbitrary/secrets/groups/123#username>",
            path("ibmcloud/arbitrary/secrets/groups/123", "username", None),
        ),
        // AWS Secrets Manager: friendly name, version stages.
        ("<path:test-aws-secret#test-secret>", path("test-aws-secret", "test-secret", None)),
        (
            "<path:some-path/secret#test-secret#AWSCURRENT>",
            path("some-path/secret", "test-secret", Some("AWSCURRENT")),
        ),
        // AWS Secrets Manager: a full ARN (the doc's note on regions).
        (
            "<path:arn:aws:secretsmanager:us-east-1:123123123:secret:some-secret#key>",
            path("arn:aws:secretsmanager:us-east-1:123123123:secret:some-secret", "key", None),
        ),
        (
            "<path:arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/db-AbCdEf#SecretBinary>",
            path(
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/db-AbCdEf",
                "SecretBinary",
                None,
            ),
        ),
        // GCP Secret Manager.
        (
            "<path:projects/12345678987/secrets/test-secret#password#latest>",
            path("projects/12345678987/secrets/test-secret", "password", Some("latest")),
        ),
        // Azure Key Vault.
        (
            "<path:keyvault#password#8f8da2e06c8240808ee439ff093803b5>",
            path("keyvault", "password", Some("8f8da2e06c8240808ee439ff093803b5")),
        ),
        // SOPS.
        ("<path:example.yaml#test-secret>", path("example.yaml", "test-secret", None)),
        // Yandex Cloud Lockbox.
        (
            "<path:secret-id#password#old-version-id>",
            path("secret-id", "password", Some("old-version-id")),
        ),
        // 1Password Connect.
        (
            "<path:vaults/vault-uuid/items/item-uuid#key>",
            path("vaults/vault-uuid/items/item-uuid", "key", None),
        ),
        // Kubernetes Secret with a namespace.
        ("<path:prod:my-secret#key>", path("prod:my-secret", "key", None)),
    ];
    for (s, kind) in cases {
        assert_eq!(one(s).kind, kind, "{s}");
        assert_eq!(one(s).to_string(), s);
    }
}

#[test]
fn avp_arn_doc_template_is_an_error() {
    // AVP backends, "Secret in a different account": the template as printed,
    // with `<REGION>` etc. left in, is not a usable placeholder.
    let s = "<path:arn:aws:secretsmanager:<REGION>:<ACCOUNT_NUMBER>:<SECRET_ID>#<key>>";
    assert!(matches!(
        err(s),
        ParseError::UnexpectedInPlaceholder {
            offset: 29,
            found: "`<`"
        }
    ));
}

#[test]
fn avp_path_characters() {
    // `@`, `.`, `_`, `:`, `-`, spaces inside the key, non-ASCII.
    let r = one("<path:team@corp/app_1.v2/x-y#api key.v1>");
    assert_eq!(r.kind, path("team@corp/app_1.v2/x-y", "api key.v1", None));
    let r = one("<path:kv/data/ünïcode#schlüssel>");
    assert_eq!(r.kind, path("kv/data/ünïcode", "schlüssel", None));
    // Whitespace around the parts is trimmed.
    let r = one("<path: secret/data/a # key # 3 >");
    assert_eq!(r.kind, path("secret/data/a", "key", Some("3")));
    assert_eq!(r.to_string(), "<path:secret/data/a#key#3>");
}

#[test]
fn avp_several_per_string() {
    // AVP howitworks, "Base64 placeholders": the decoded URL, with inline
    // paths instead of generic keys.
    let s = "postgres://<path:db#username>:<path:db#password>@<path:db#host>:<path:db#port>/<path:db#database>?sslmode=require";
    let refs = parse_all(s).unwrap();
    let keys: Vec<_> = refs
        .iter()
        .map(|r| match &r.kind {
            RefKind::AvpPath { key, .. } => key.as_str(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(keys, ["username", "password", "host", "port", "database"]);
    assert_eq!(&s[refs[1].span.clone()], "<path:db#password>");
    assert!(!is_whole_reference(s));
    let out = substitute(s, &refs, |r| match &r.kind {
        RefKind::AvpPath { key, .. } => Ok::<_, ()>(key.to_uppercase()),
        _ => unreachable!(),
    })
    .unwrap();
    assert_eq!(
        out,
        "postgres://USERNAME:PASSWORD@HOST:PORT/DATABASE?sslmode=require"
    );

    // Adjacent, and spread over lines.
    let refs = parse_all("<path:a#b><path:c#d>").unwrap();
    assert_eq!(
        (refs[0].span.clone(), refs[1].span.clone()),
        (0..10, 10..20)
    );
    let s = "user=<path:a#u>\npass=<path:a#p | base64decode>\n";
    assert_eq!(parse_all(s).unwrap().len(), 2);
}

// ---------------------------------------------------------------------------
// argocd-vault-plugin: modifiers

#[test]
fn avp_modifier_examples() {
    use Modifier::*;
    let jp = |e: &str| JsonPath(e.into());
    // AVP howitworks, "Modifiers" (every example for every modifier).
    let cases: Vec<(&str, RefKind, Vec<Modifier>)> = vec![
        ("<username | base64encode>", generic("username"), vec![Base64Encode]),
        (
            "<path:secrets/data/my-db#username | base64encode>",
            path("secrets/data/my-db", "username", None),
            vec![Base64Encode],
        ),
        (
            "<path:secrets/data/my-db#username#version3 | base64encode>",
            path("secrets/data/my-db", "username", Some("version3")),
            vec![Base64Encode],
        ),
        ("<b64_username | base64decode>", generic("b64_username"), vec![Base64Decode]),
        (
            "<path:secrets/data/my-db#b64_username#version3 | base64decode>",
            path("secrets/data/my-db", "b64_username", Some("version3")),
            vec![Base64Decode],
        ),
        ("<credentials | jsonPath {.username}>", generic("credentials"), vec![jp("{.username}")]),
        (
            "<path:secrets/data/my-db#credentials | jsonPath {.username}{':'}{.password}>",
            path("secrets/data/my-db", "credentials", None),
            vec![jp("{.username}{':'}{.password}")],
        ),
        (
            "<path:secrets/data/my-db#credentials#version3 | jsonPath {.username} | base64encode>",
            path("secrets/data/my-db", "credentials", Some("version3")),
            vec![jp("{.username}"), Base64Encode],
        ),
        (
            "<path:secrets/data/my-db#config | jsonPath {.replicas} | jsonParse>",
            path("secrets/data/my-db", "config", None),
            vec![jp("{.replicas}"), JsonParse],
        ),
        ("<credentialsJson | jsonParse>", generic("credentialsJson"), vec![JsonParse]),
        (
            "<path:secrets/data/my-db#credentialsJson#version3 | jsonParse>",
            path("secrets/data/my-db", "credentialsJson", Some("version3")),
            vec![JsonParse],
        ),
        (
            "<credentials_yaml | yamlParse | jsonPath {.username}>",
            generic("credentials_yaml"),
            vec![YamlParse, jp("{.username}")],
        ),
        (
            "<path:secrets/data/db_yaml#yaml | yamlParse | jsonPath {.username}{':'}{.password}>",
            path("secrets/data/db_yaml", "yaml", None),
            vec![YamlParse, jp("{.username}{':'}{.password}")],
        ),
        (
            "<path:secrets/data/db_yaml#yaml#version2 | yamlParse | jsonPath {.username} | base64encode>",
            path("secrets/data/db_yaml", "yaml", Some("version2")),
            vec![YamlParse, jp("{.username}"), Base64Encode],
        ),
        (
            "<path:secrets/data/db#certs | jsonPath {.certificate} | indent 3>",
            path("secrets/data/db", "certs", None),
            vec![jp("{.certificate}"), Indent(3)],
        ),
        ("<path:secrets/data/db#certs | sha256sum>", path("secrets/data/db", "certs", None), vec![Sha256Sum]),
        // AVP backends: IBM non-arbitrary secret, SOPS sub key, Keeper.
        (
            "<path:ibmcloud/imported_cert/secrets/groups/123#my-cert-secret#previous | jsonPath {.certificate}>",
            path("ibmcloud/imported_cert/secrets/groups/123", "my-cert-secret", Some("previous")),
            vec![jp("{.certificate}")],
        ),
        ("<parent | jsonPath {.child}>", generic("parent"), vec![jp("{.child}")]),
        ("<path:secret-id#key | base64encode>", path("secret-id", "key", None), vec![Base64Encode]),
    ];
    for (s, kind, mods) in cases {
        let r = one(s);
        assert_eq!((r.kind.clone(), r.modifiers.clone()), (kind, mods), "{s}");
        assert_eq!(r.span, 0..s.len(), "{s}");
        assert_eq!(r.to_string(), s, "canonical form of {s}");
    }
}

#[test]
fn avp_modifier_whitespace_and_chains() {
    use Modifier::*;
    let r = one("<path:s#k|base64encode|sha256sum>");
    assert_eq!(r.modifiers, [Base64Encode, Sha256Sum]);
    assert_eq!(r.to_string(), "<path:s#k | base64encode | sha256sum>");
    let r = one("<path:s#k   |\tjsonPath   {.a.b}  {.c}   |  indent  12  >");
    assert_eq!(r.modifiers, [JsonPath("{.a.b} {.c}".into()), Indent(12)]);
    // `#` inside a modifier is not a version separator.
    let r = one("<path:s#k | jsonPath {.a#b}>");
    assert_eq!(r.kind, path("s", "k", None));
    assert_eq!(r.modifiers, [JsonPath("{.a#b}".into())]);
    // A modifier ends at the first `>`, as in argocd-vault-plugin.
    let refs = parse_all("<path:s#k | jsonPath {.a}>1)]}>").unwrap();
    assert_eq!(refs[0].span, 0..26);
}

#[test]
fn avp_modifier_errors() {
    let e = err("<path:secret/data/foo#bar | base64>");
    assert_eq!(
        e.to_string(),
        "byte 28: unknown modifier \"base64\"; expected one of base64encode, base64decode, jsonPath, jsonParse, yamlParse, indent, sha256sum"
    );
    assert_eq!(e.offset(), 28);
    let e = err("<path:s#k | jsonpath {.a}>");
    assert!(
        matches!(
            &e,
            ParseError::UnknownModifier {
                suggestion: Some("jsonPath"),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("did you mean `jsonPath`?"));
    assert!(matches!(
        err("<path:s#k | sha256>"),
        ParseError::UnknownModifier {
            suggestion: Some("sha256sum"),
            ..
        }
    ));
    assert!(matches!(
        err("<path:s#k |>"),
        ParseError::EmptyModifier { offset: 10 }
    ));
    assert!(matches!(
        err("<path:s#k | base64encode | >"),
        ParseError::EmptyModifier { offset: 25 }
    ));
    assert!(matches!(
        err("<path:s#k | base64encode now>"),
        ParseError::ModifierArguments {
            modifier: "base64encode",
            offset: 12,
            ..
        }
    ));
    assert!(matches!(
        err("<path:s#k | jsonPath>"),
        ParseError::ModifierArguments {
            modifier: "jsonPath",
            ..
        }
    ));
    for bad in ["indent", "indent -2", "indent two", "indent 1 2"] {
        let s = format!("<path:s#k | {bad}>");
        assert!(
            matches!(
                err(&s),
                ParseError::ModifierArguments {
                    modifier: "indent",
                    ..
                }
            ),
            "{s}"
        );
    }
    // Unknown modifiers are errors on generic placeholders too.
    assert!(parse_all_with_generic("<password | rot13>").is_err());
}

// ---------------------------------------------------------------------------
// argocd-vault-plugin: generic placeholders

#[test]
fn avp_generic_examples() {
    // AVP howitworks, "Summary" and "Generic placeholders".
    assert_eq!(
        one("<password-vault-key>").kind,
        generic("password-vault-key")
    );
    assert_eq!(one("<placeholder>").kind, generic("placeholder"));
    // AVP howitworks, "Base64 placeholders": the decoded POSTGRES_URL.
    let s = "postgres://<username>:<password>@<host>:<port>/<database>?sslmode=require";
    let refs = parse_all_with_generic(s).unwrap();
    let keys: Vec<_> = refs.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        keys,
        ["<username>", "<password>", "<host>", "<port>", "<database>"]
    );
    assert!(parse_all(s).unwrap().is_empty(), "generic only on request");
    // AVP howitworks: `<KEY>` in a CRD description is only a placeholder in
    // an annotated document.
    let s = "metadata.namespace, `metadata.labels[''<KEY>'']`,";
    assert!(parse_all(s).unwrap().is_empty());
    assert_eq!(one(s).kind, generic("KEY"));
    // Whole values.
    assert!(is_whole_reference_with_generic("<replicas>"));
    assert!(is_whole_reference_with_generic(" <a> <path:b#c>\n"));
    assert!(!is_whole_reference("<replicas>"));
}

#[test]
fn avp_generic_is_narrow() {
    // Things that are not generic placeholders: no error, no reference.
    for s in [
        "a < b",
        "a < b and c > d",
        "<>",
        "< >",
        "<\n>",
        "x <a\nb> y",
        "<<<",
        ">>><<<",
        "<a",
        "if x<y then",
        "< | base64encode>",
    ] {
        assert_eq!(parse_all_with_generic(s), Ok(vec![]), "{s:?}");
    }
    // `<b>bold</b>` is two keys to argocd-vault-plugin too; no error.
    let refs = parse_all_with_generic("<b>bold</b>").unwrap();
    assert_eq!(
        refs.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        ["<b>", "</b>"]
    );
    assert!(parse_all("<b>bold</b>").unwrap().is_empty());
    // The placeholder is the innermost `<...>`.
    assert_eq!(one("<<key>").span, 1..6);
    // Spaces around the key are allowed and trimmed.
    assert_eq!(one("< key >").to_string(), "<key>");
    // `< path:...>` is read as an inline path, as argocd-vault-plugin does.
    assert_eq!(one("< path:a#b>").kind, path("a", "b", None));
}

// ---------------------------------------------------------------------------
// argocd-vault-plugin: errors and non-references

#[test]
fn avp_path_errors() {
    assert!(matches!(
        err("x <path:secret/data/app"),
        ParseError::Unclosed { offset: 2 }
    ));
    assert!(matches!(
        err("<path:secret/data/app#key"),
        ParseError::Unclosed { offset: 0 }
    ));
    assert!(matches!(
        err("<path:secret/data/app>"),
        ParseError::MissingKey { offset: 0 }
    ));
    assert!(matches!(err("<path:>"), ParseError::MissingKey { .. }));
    assert!(matches!(
        err("<path:a#b#c#d>"),
        ParseError::TooManyHashes { offset: 11 }
    ));
    assert!(matches!(
        err("<path:#k>"),
        ParseError::EmptyPart {
            part: "path",
            offset: 6
        }
    ));
    assert!(matches!(
        err("<path:p#>"),
        ParseError::EmptyPart {
            part: "key",
            offset: 8
        }
    ));
    assert!(matches!(
        err("<path:p# >"),
        ParseError::EmptyPart { part: "key", .. }
    ));
    assert!(matches!(
        err("<path:p#k#>"),
        ParseError::EmptyPart {
            part: "version",
            ..
        }
    ));
    assert!(matches!(
        err("<path:a#b\n c>"),
        ParseError::UnexpectedInPlaceholder {
            found: "line break",
            offset: 9
        }
    ));
    assert!(matches!(
        err("<path:a#b <path:c#d>"),
        ParseError::UnexpectedInPlaceholder {
            found: "`<`",
            offset: 10
        }
    ));
    // `|` splits before `#` parts are read, as in argocd-vault-plugin.
    assert!(matches!(err("<path:a|b#c>"), ParseError::MissingKey { .. }));
    // The first error wins, wherever later references are.
    assert!(matches!(
        err("<path:a#b> <path:c>"),
        ParseError::MissingKey { offset: 11 }
    ));
    let e = err("<path:secret/data/app>");
    assert!(e.to_string().contains("expected `<path:PATH#KEY>`"), "{e}");
}

#[test]
fn not_references() {
    for s in [
        "",
        "plain text",
        "<b>bold</b>",
        "a<b",
        "a < b > c",
        "<Path:a#b>",
        "< path:a#b>",
        "<pathx:a#b>",
        "path:a#b",
        "git ref+1",
        "ref+",
        "ref+vault",
        "ref+vault:/x",
        "ref+vault:x",
        "ref+ vault://x",
        "href+x",
        "REF+vault://x",
        "https://example.com/#/a?b",
        "<!-- comment -->",
        "1 + 2 = 3",
    ] {
        assert_eq!(parse_all(s), Ok(vec![]), "{s:?}");
        assert!(!is_whole_reference(s), "{s:?}");
    }
}

// ---------------------------------------------------------------------------
// vals URIs

#[test]
fn vals_readme_examples() {
    // vals README, CLI section.
    let v = vals("ref+vault://secret/data/foo?proto=http#/mykey");
    assert_eq!(
        (v.scheme.as_str(), v.path.as_str()),
        ("vault", "secret/data/foo")
    );
    assert_eq!(params(&v), [("proto", "http")]);
    assert_eq!(v.fragment, ptr(&["mykey"]));
    assert!(!v.secretref && !v.explicit_end);
    // vals README, Go section: a host:port in the path.
    let v = vals("ref+vault://127.0.0.1:8200/mykv/foo?proto=http#/mykey");
    assert_eq!(v.path, "127.0.0.1:8200/mykv/foo");
    // vals README, Vault examples: parameter values with `:` and `/`.
    let v = vals("ref+vault://mykv/foo?address=https://vault1.example.com:8200#/bar");
    assert_eq!(params(&v), [("address", "https://vault1.example.com:8200")]);
    assert_eq!(v.fragment, ptr(&["bar"]));
    let v = vals("ref+vault://mykv/foo?token_env=VAULT_TOKEN_VAULT1&namespace=ns1&address=https://vault1.example.com:8200#/bar");
    assert_eq!(
        params(&v),
        [
            ("token_env", "VAULT_TOKEN_VAULT1"),
            ("namespace", "ns1"),
            ("address", "https://vault1.example.com:8200")
        ]
    );
    assert_eq!(v.param("namespace"), Some("ns1"));
    let v = vals("ref+vault://mykv/foo?token_file=~/.vault_token_vault1&address=https://vault1.example.com:8200#/bar");
    assert_eq!(v.param("token_file"), Some("~/.vault_token_vault1"));
    let v = vals("ref+vault://mykv/foo?auth_method=userpass&username=some-user&password_env=VAULT_PASSWORD#/bar");
    assert_eq!(v.params.len(), 3);
    // vals README, AWS SSM.
    assert_eq!(vals("ref+awsssm://myteam/mykey").path, "myteam/mykey");
    assert_eq!(
        vals("ref+awsssm://myteam/mydoc#/foo/bar").fragment,
        ptr(&["foo", "bar"])
    );
    assert_eq!(
        vals("ref+awsssm://myteam/mykey?region=us-west-2").param("region"),
        Some("us-west-2")
    );
    let v = vals("ref+awsssm://foo/bar?#/a");
    assert_eq!((v.params.len(), v.fragment.clone()), (0, ptr(&["a"])));
    let v = vals("ref+awsssm://foo?recursive=true#/bar/a");
    assert_eq!(
        (v.path.as_str(), v.fragment.clone()),
        ("foo", ptr(&["bar", "a"]))
    );
    assert_eq!(
        vals("ref+awsssm://foo/bar?mode=singleparam#/BAR").param("mode"),
        Some("singleparam")
    );
    // vals README, AWS Secrets Manager (the cross-account form, filled in).
    assert_eq!(
        vals("ref+awssecrets://myteam/mydoc#/foo/bar").scheme,
        "awssecrets"
    );
    let v = vals("ref+awssecrets://arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:/myteam/mydoc/?region=ap-southeast-2#/secret/key");
    assert_eq!(
        v.path,
        "arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:/myteam/mydoc/"
    );
    assert_eq!(v.fragment, ptr(&["secret", "key"]));
    // vals README, AWS S3 and KMS (percent-encoded JSON context, `=` padding).
    assert_eq!(
        vals("ref+s3://mybucket/myjsonobj#/foo/bar").path,
        "mybucket/myjsonobj"
    );
    let v = vals("ref+awskms://AQICAHhy...WwHKT0i3AGZ8ek=?context=%7B%22foo%22%3A%22bar%22%2C%22hello%22%2C%22world%22%7D");
    assert_eq!(v.path, "AQICAHhy...WwHKT0i3AGZ8ek=");
    assert_eq!(v.param("context"), Some(r#"{"foo":"bar","hello","world"}"#));
    let v = vals(
        "ref+awskms://AQICAVJyinH...WwHKT0iC7AGZ8ek=?alg=RSAES_OAEP_SHA1&key=alias%2FExampleAlias",
    );
    assert_eq!(v.param("key"), Some("alias/ExampleAlias"));
    // vals README, GCP.
    let v = vals("ref+gcpsecrets://myproject/mysecret?version=3#/yaml_or_json_key/in/secret");
    assert_eq!(v.fragment, ptr(&["yaml_or_json_key", "in", "secret"]));
    // vals README, Terraform: dots and brackets in the path.
    let v = vals("ref+tfstate://terraform.tfstate/module.vpc.aws_vpc.this[0].arn");
    assert_eq!(v.path, "terraform.tfstate/module.vpc.aws_vpc.this[0].arn");
    assert_eq!(
        vals("ref+tfstate:///absolute/path/to/some.tfstate/output.OUTPUT_NAME").path,
        "/absolute/path/to/some.tfstate/output.OUTPUT_NAME"
    );
    // vals README, SOPS.
    assert_eq!(vals("ref+sops://path/to/file").fragment, None);
    assert_eq!(
        vals("ref+sops://path/to/file#/foo/bar").fragment,
        ptr(&["foo", "bar"])
    );
    let v = vals("ref+sops://path/to/file?format=json#/foo/bar");
    assert_eq!(params(&v), [("format", "json")]);
    // vals README, Echo and File.
    assert_eq!(vals("ref+echo://foo/bar").path, "foo/bar");
    assert_eq!(
        vals("ref+echo://foo/bar/baz#/foo/bar").fragment,
        ptr(&["foo", "bar"])
    );
    assert_eq!(vals("ref+file://some.yaml#/foo/bar").path, "some.yaml");
    assert_eq!(vals("ref+file:///home/foo/bar").path, "/home/foo/bar");
    assert_eq!(
        vals("ref+file://foo/bar?encode=base64").param("encode"),
        Some("base64")
    );
    assert_eq!(vals("ref+file://./x.yaml#/a").path, "./x.yaml");
    // vals README, Azure Key Vault, EnvSubst, GitLab.
    assert_eq!(
        vals("ref+azurekeyvault://my-vault/secret-a/ba4f196b15f644cd9e949896a21bab0d").path,
        "my-vault/secret-a/ba4f196b15f644cd9e949896a21bab0d"
    );
    assert_eq!(vals("ref+envsubst://$VAR1").path, "$VAR1");
    assert_eq!(
        vals("ref+gitlab://my-gitlab.org/11111/password?ssl_verify=true&scheme=https")
            .params
            .len(),
        2
    );
    // vals README, Doppler: empty path segments, and no path at all.
    assert_eq!(vals("ref+doppler:////FOO").path, "//FOO");
    let v = vals("ref+doppler://#FOO");
    assert_eq!((v.path.as_str(), v.fragment.clone()), ("", ptr(&["FOO"])));
    assert_eq!(
        vals("ref+doppler://MyProject/development/#DB_PASSWORD").path,
        "MyProject/development/"
    );
    // vals README, Pulumi: `%23` in the path decodes to `#`.
    let v = vals("ref+pulumistateapi://aws-native_s3_Bucket/my-bucket/outputs/tags.%23(key==SomeKey).value?project=my-project&stack=my-stack");
    assert_eq!(
        v.path,
        "aws-native_s3_Bucket/my-bucket/outputs/tags.#(key==SomeKey).value"
    );
    assert_eq!(
        v.to_string(),
        "ref+pulumistateapi://aws-native_s3_Bucket/my-bucket/outputs/tags.%23(key==SomeKey).value?project=my-project&stack=my-stack"
    );
    // vals README, Kubernetes: a parameter without `=`, and `secretref+`.
    let v = vals("ref+k8s://v1/Secret/mynamespace/mysecret/foo?inCluster");
    assert_eq!(params(&v), [("inCluster", "")]);
    let r = one("secretref+k8s://v1/Secret/mynamespace/mysecret/baz?kubeContext=minikube");
    assert_eq!(r.span.start, 0);
    assert!(matches!(&r.kind, RefKind::Vals(v) if v.secretref));
    // vals README, "Discriminating config and secrets".
    assert!(vals("secretref+awssecrets://mysecret/value").secretref);
    // vals README, Yandex Lockbox, Scaleway: fragments without a leading `/`.
    assert_eq!(
        vals("ref+yclockbox://e6qeoqvd88dcpf044n5i#oauth_secret").fragment,
        ptr(&["oauth_secret"])
    );
    assert_eq!(
        vals("ref+scw:///path/to/secret#key").fragment,
        ptr(&["key"])
    );
    // vals README, HTTP JSON: an XPath with empty segments in the fragment.
    let v = vals("ref+httpjson://api.github.com/users/helmfile/repos?insecure=true#///*[2]/");
    assert_eq!(v.fragment, ptr(&["", "", "*[2]", ""]));
    // vals README, Bitwarden.
    assert_eq!(
        vals("ref+bw://4d084b01-87e7-4411-8de9-2476ab9f3f48/notes#/key1").fragment,
        ptr(&["key1"])
    );
    // Other schemes parse the same way: the stores decide what is supported.
    assert_eq!(
        vals("ref+openbao://secret/data/app#/password").scheme,
        "openbao"
    );
    assert_eq!(vals("ref+Vault://a").scheme, "vault");
}

#[test]
fn vals_embedded_and_explicit_end() {
    // vals README, Expression Syntax: `foo ref+SECRET1+ ref+SECRET2+ bar`.
    let s = "foo ref+echo://SECRET1+ ref+echo://SECRET2+ bar";
    let refs = parse_all(s).unwrap();
    assert_eq!(refs.len(), 2);
    assert_eq!(&s[refs[0].span.clone()], "ref+echo://SECRET1+");
    assert!(matches!(&refs[1].kind, RefKind::Vals(v) if v.explicit_end && v.path == "SECRET2"));
    let out = substitute(s, &refs, |r| match &r.kind {
        RefKind::Vals(v) => Ok::<_, ()>(format!("{}_VALUE", v.path)),
        _ => unreachable!(),
    });
    assert_eq!(out.unwrap(), "foo SECRET1_VALUE SECRET2_VALUE bar");
    // Without `+` the URI runs to whitespace or the end of the string.
    let s = "prefix ref+vault://kv/app#/user suffix";
    let refs = parse_all(s).unwrap();
    assert_eq!(&s[refs[0].span.clone()], "ref+vault://kv/app#/user");
    // `+` ends the URI even with no text after; a second `+` is text.
    let r = one("ref+vault://kv/app#/user+");
    assert_eq!(r.span, 0..25);
    assert_eq!(r.to_string(), "ref+vault://kv/app#/user+");
    assert_eq!(parse_all("ref+echo://a++").unwrap()[0].span, 0..13);
    // Glued to text on both sides.
    let s = "user:ref+echo://u+@host";
    assert_eq!(
        substitute(s, &parse_all(s).unwrap(), |_| Ok::<_, ()>("x")).unwrap(),
        "user:x@host"
    );
    // Mixed with AVP placeholders.
    let s = "<path:a#b>ref+echo://c+<path:d#e | base64encode>";
    let kinds: Vec<_> = parse_all(s)
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(
        kinds,
        ["<path:a#b>", "ref+echo://c+", "<path:d#e | base64encode>"]
    );
    assert!(is_whole_reference(s));
    // A `+` ends the first URI, so `secretref+` right after it is the next.
    let refs = parse_all("ref+echo://secretref+echo://x").unwrap();
    assert_eq!(refs.len(), 1);
    assert!(matches!(&refs[0].kind, RefKind::Vals(v) if v.path == "secretref"));
    let refs = parse_all("ref+echo://a+secretref+echo://x").unwrap();
    assert_eq!(refs.len(), 2);
    assert!(matches!(&refs[1].kind, RefKind::Vals(v) if v.secretref));
    assert_eq!(refs[1].span, 13..31);
}

#[test]
fn vals_pointer_and_escapes() {
    // JSON pointer escapes (RFC 6901) and percent-escapes.
    let v = vals("ref+sops://s.yaml#/a~1b/c~0d/e%20f");
    assert_eq!(v.fragment, ptr(&["a/b", "c~d", "e f"]));
    assert_eq!(v.to_string(), "ref+sops://s.yaml#/a~1b/c~0d/e%20f");
    let v = vals("ref+file://my%20dir/f.yaml?k%3D=v%26w#/%7E0");
    assert_eq!(v.path, "my dir/f.yaml");
    assert_eq!(params(&v), [("k=", "v&w")]);
    assert_eq!(v.fragment, ptr(&["~"]));
    assert_eq!(v.to_string(), "ref+file://my%20dir/f.yaml?k%3D=v%26w#/~0");
    // Empty items in the query are skipped, as Go's ParseQuery does.
    assert_eq!(
        params(&vals("ref+x://p?&a=1&&b=&")),
        [("a", "1"), ("b", "")]
    );
    // Unicode passes through.
    assert_eq!(vals("ref+file://données.yaml#/clé").fragment, ptr(&["clé"]));
}

#[test]
fn vals_errors() {
    assert!(matches!(
        err("ref+vault://"),
        ParseError::EmptyValsPath { offset: 0 }
    ));
    assert!(matches!(
        err("x ref+vault:// y"),
        ParseError::EmptyValsPath { offset: 2 }
    ));
    assert!(matches!(
        err("secretref+vault://+"),
        ParseError::EmptyValsPath { offset: 0 }
    ));
    assert!(matches!(
        err("ref+vault://?"),
        ParseError::EmptyValsPath { offset: 0 }
    ));
    assert!(matches!(
        err("ref+vault://?&"),
        ParseError::EmptyValsPath { offset: 0 }
    ));
    assert!(matches!(
        err("ref+://x"),
        ParseError::MissingScheme { offset: 0 }
    ));
    assert!(matches!(
        err("ref+1password://x"),
        ParseError::InvalidScheme { offset: 4 }
    ));
    assert!(matches!(
        err("ref+vault_kv://x"),
        ParseError::InvalidScheme { .. }
    ));
    assert!(matches!(
        err("ref+vault://a#"),
        ParseError::EmptyFragment { offset: 13 }
    ));
    assert!(matches!(
        err("ref+vault://a#/"),
        ParseError::EmptyFragment { .. }
    ));
    assert!(matches!(
        err("ref+vault://a#/b~2"),
        ParseError::BadPointerEscape { .. }
    ));
    assert!(matches!(
        err("ref+vault://a#/b~"),
        ParseError::BadPointerEscape { .. }
    ));
    assert!(matches!(
        err("ref+vault://a%zz"),
        ParseError::BadPercentEscape { offset: 13 }
    ));
    assert!(matches!(
        err("ref+vault://a%4"),
        ParseError::BadPercentEscape { .. }
    ));
    assert!(matches!(
        err("ref+vault://a%FF"),
        ParseError::BadPercentEscape { .. }
    ));
    assert!(matches!(
        err("ref+vault://a?x=%g1"),
        ParseError::BadPercentEscape { .. }
    ));
    assert!(matches!(
        err("ref+vault://a?=1"),
        ParseError::EmptyParamName { offset: 14 }
    ));
    // The old vals README order (`#/key?params`) is reported with the fix.
    let e = err("ref+awssecrets://myteam/mydoc#/foo?region=us-west-2");
    assert!(
        matches!(e, ParseError::ParamsAfterFragment { offset: 34 }),
        "{e:?}"
    );
    assert!(e.to_string().contains("put parameters before it"), "{e}");
}

#[test]
fn error_messages_quote_no_surrounding_text() {
    for s in [
        "hunter2 <path:a",
        "hunter2 <path:a> hunter2",
        "<path:a#b\nhunter2>",
        "hunter2 ref+vault:// hunter2",
        "ref+vault://a#/b~9hunter2",
        "ref+vault://a%zzhunter2",
    ] {
        let e = err(s).to_string();
        assert!(!e.contains("hunter2"), "{s:?}: {e}");
    }
}

// ---------------------------------------------------------------------------
// API helpers

#[test]
fn whole_reference() {
    assert!(is_whole_reference("ref+vault://a#/b"));
    assert!(is_whole_reference("  <path:a#b>\n\t"));
    assert!(is_whole_reference("<path:a#b> ref+echo://x"));
    assert!(!is_whole_reference("<path:a#b>x"));
    assert!(!is_whole_reference("x<path:a#b>"));
    assert!(!is_whole_reference("ref+echo://a+b"));
    assert!(!is_whole_reference("   "));
    assert!(!is_whole_reference("<path:a>"), "malformed is not safe");
    assert!(!is_whole_reference("password: ref+echo://a"));
}

#[test]
fn prefilter() {
    assert!(contains_reference("a <path:b"));
    assert!(contains_reference("ref+"));
    assert!(!contains_reference("<b>"));
    assert!(contains_reference_with_generic("<b>"));
    assert!(!contains_reference_with_generic("> <"));
}

#[test]
fn substitute_errors_and_bad_spans() {
    let s = "<path:a#b> and <path:c#d>";
    let refs = parse_all(s).unwrap();
    let mut calls = 0;
    let r: Result<String, &str> = substitute(s, &refs, |_| {
        calls += 1;
        Err::<String, _>("store down")
    });
    assert_eq!((r, calls), (Err("store down"), 1));
    // Foreign or reordered spans are left alone rather than panicking.
    let mut bad = refs.clone();
    bad.reverse();
    bad.push(Reference {
        span: 3..1000,
        ..refs[0].clone()
    });
    let out = substitute(s, &bad, |_| Ok::<_, ()>("X")).unwrap();
    assert_eq!(out, "<path:a#b> and X");
    let s = "é<path:a#b>";
    let mut r = parse_all(s).unwrap();
    r[0].span = 1..3; // inside `é`
    assert_eq!(substitute(s, &r, |_| Ok::<_, ()>("X")).unwrap(), s);
}

#[test]
fn display_examples() {
    let r = one("<path:s#k | jsonPath {.a.b} | base64encode>");
    assert_eq!(r.to_string(), "<path:s#k | jsonPath {.a.b} | base64encode>");
    let r = one("ref+vault://p?a=1&b=x%2By#/k+");
    assert_eq!(r.to_string(), "ref+vault://p?a=1&b=x%2By#/k+");
    let r = one("ref+vault://p#k");
    assert_eq!(r.to_string(), "ref+vault://p#/k");
    assert_eq!(Modifier::Indent(2).to_string(), "indent 2");
    assert_eq!(Modifier::NAMES.len(), 7);
}

// ---------------------------------------------------------------------------
// robustness

/// Every string of up to four pieces from an alphabet of the grammar's
/// tokens: no panic, and all invariants hold.
#[test]
fn exhaustive_small_inputs() {
    const PIECES: [&str; 20] = [
        "<",
        ">",
        "#",
        "|",
        " ",
        "\n",
        "a",
        "+",
        "/",
        "?",
        "~",
        "%",
        "=",
        "&",
        "<path:",
        "ref+",
        "secret",
        "x://",
        " indent 1",
        "é",
    ];
    let n = PIECES.len();
    let mut s = String::new();
    for len in 0..=4u32 {
        for mut code in 0..n.pow(len) {
            s.clear();
            for _ in 0..len {
                s.push_str(PIECES[code % n]);
                code /= n;
            }
            check_invariants(&s);
        }
    }
}

/// Time is linear: inputs built to make a careless scanner quadratic parse
/// quickly. (A quadratic scanner would take minutes on these.)
#[test]
fn linear_time() {
    let n = 200_000;
    let inputs = [
        "<".repeat(n),
        "<a".repeat(n),
        "< a".repeat(n),
        format!("<{}", "a".repeat(n)),
        "ref+".repeat(n),
        "ref+a".repeat(n),
        "secretref+a:".repeat(n),
        "<path:a#b>".repeat(n / 4),
        "ref+a://b+".repeat(n / 4),
        format!("{}>", "<a\n".repeat(n)),
        "<a|".repeat(n),
    ];
    let start = std::time::Instant::now();
    for s in &inputs {
        let _ = parse_all(s);
        let _ = parse_all_with_generic(s);
        let _ = is_whole_reference_with_generic(s);
    }
    // Generous bound even for a debug build on a slow machine.
    assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
}

fn grammar_string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("<path:".to_string()),
        Just("ref+".to_string()),
        Just("secretref+".to_string()),
        Just("vault://".to_string()),
        Just("#".to_string()),
        Just("|".to_string()),
        Just(" | base64encode".to_string()),
        Just(" | jsonPath {.a}".to_string()),
        Just(">".to_string()),
        Just("<".to_string()),
        Just("?a=b&c".to_string()),
        Just("#/x~1y".to_string()),
        Just("+".to_string()),
        "[a-z0-9/._:-]{1,6}",
        "[ \\n\\t%~=&?é]{1,2}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(piece, 0..16).prop_map(|v| v.concat())
}

proptest! {
    // 2000 cases by default; set PROPTEST_CASES for a longer run.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
    ))]

    #[test]
    fn never_panics_on_any_string(s in any::<String>()) {
        check_invariants(&s);
    }

    #[test]
    fn invariants_on_grammar_like_strings(s in grammar_string()) {
        check_invariants(&s);
    }

    /// Any well-formed reference round-trips through `Display`, also inside
    /// surrounding text.
    #[test]
    fn generated_references_round_trip(
        p in "[a-z0-9@:._-]{1,8}(/[a-z0-9@:._-]{1,8}){0,3}",
        k in "[A-Za-z0-9_.-]{1,8}",
        v in proptest::option::of("[A-Za-z0-9]{1,6}"),
        ind in 0usize..10,
        scheme in "[a-z][a-z0-9.-]{0,8}",
        vp in "[^\\s+#?%]{1,10}",
        tok in "[^\\s+?]{1,6}",
    ) {
        let avp = match &v {
            Some(v) => format!("<path:{p}#{k}#{v} | indent {ind}>"),
            None => format!("<path:{p}#{k}>"),
        };
        let vals_uri = format!("ref+{scheme}://{vp}?q={k}#/{}+", tok.replace('~', "~0").replace('/', "~1").replace('%', "%25").replace('#', "%23"));
        let s = format!("x {avp} y {vals_uri} z");
        let refs = parse_all(&s).unwrap();
        prop_assert_eq!(refs.len(), 2);
        prop_assert_eq!(&s[refs[0].span.clone()], avp.as_str());
        prop_assert_eq!(&s[refs[1].span.clone()], vals_uri.as_str());
        match &refs[1].kind {
            RefKind::Vals(r) => {
                prop_assert_eq!(r.fragment.clone(), ptr(&[tok.as_str()]));
                prop_assert_eq!(r.path.as_str(), vp.as_str());
            }
            other => prop_assert!(false, "{:?}", other),
        }
        assert_round_trip(&refs, false);
    }
}

// ---------------------------------------------------------------------------
// 1Password secret references

#[test]
fn op_references_as_whole_strings_and_inject_templates() {
    let v = vals("op://prod/db/password");
    assert!(v.bare && v.scheme == "op" && v.path == "prod/db/password");
    assert_eq!(one("  op://prod/db/admin/password \n").span, 2..29);
    let v = vals("op://Home Lab/My DB/one-time password?attribute=otp");
    assert_eq!(v.path, "Home Lab/My DB/one-time password");
    assert_eq!(params(&v), [("attribute", "otp")]);
    let s = "postgres://app:{{ op://prod/db/password }}@db:5432";
    let r = one(s);
    assert_eq!(&s[r.span.clone()], "{{ op://prod/db/password }}");
    assert_eq!(r.to_string(), "op://prod/db/password");
    let out = substitute(s, &[r], |_| Ok::<_, ()>("x")).unwrap();
    assert_eq!(out, "postgres://app:x@db:5432");
    assert!(is_whole_reference("op://prod/db/password"));
    assert!(contains_reference("{{op://a/b/c}}"));
    assert_eq!(parse_all("{{op://a/b/c}}").unwrap().len(), 1);
    assert_eq!(parse_all("ref+op://a/b/c").unwrap().len(), 1);
}

#[test]
fn op_text_that_is_not_a_reference_stays_text() {
    for s in [
        "see op://prod/db/password",
        "op://prod/db/password\nsecond line",
        "{{ .Values.x }} op://a/b/c",
        "{{ op://a/b/c",
        "shop://a/b/c",
    ] {
        assert!(parse_all(s).unwrap().is_empty(), "{s:?}");
    }
}

#[test]
fn op_references_need_vault_item_and_field() {
    for s in [
        "op://prod/db",
        "op://prod//password",
        "op://a/b/c/d/e",
        "{{ op://a }}",
    ] {
        assert!(matches!(err(s), ParseError::OpReference { .. }), "{s:?}");
    }
    let e = err("op://prod/db").to_string();
    assert!(e.contains("op://VAULT/ITEM/FIELD"), "{e}");
}

#[test]
fn op_templates_scan_in_linear_time() {
    let s = "{{ op://".repeat(200_000);
    let t = std::time::Instant::now();
    let _ = parse_all(&s);
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
}
