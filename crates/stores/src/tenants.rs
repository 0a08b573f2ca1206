//! The operator's tenant mapping: which Vault roles and path prefixes an Argo CD Application
//! may ask for, keyed by what Argo CD itself sets and RBAC guards.
//!
//! `KUSTODIAN_TENANTS_FILE` (an operator variable) names a YAML file:
//!
//! ```yaml
//! tenants:
//!   - project: team-a                # ARGOCD_APP_PROJECT_NAME
//!     namespaces: [team-a-prod]      # optional: ARGOCD_APP_NAMESPACE values; absent: any
//!     roles: [team-a-read]           # AVP_K8S_ROLE values its Applications may ask for
//!     defaultRole: team-a-read       # used when an Application asks for none
//!     authMount: kubernetes          # optional: the Kubernetes auth mount for this entry
//!     pathPrefixes: [secret/data/team-a]
//!     defaultPathPrefix: secret/data/team-a
//! ```
//!
//! `ARGOCD_APP_PROJECT_NAME` and `ARGOCD_APP_NAMESPACE` are read from the sidecar's process
//! environment, where Argo CD's repo server puts them; an Application cannot set them (its
//! plugin env arrives as `ARGOCD_ENV_*`). The first entry that matches the project and
//! namespace applies. An Application that asks for a role or prefix its entry does not list,
//! or asks while no entry matches, fails: there is no fallback to the operator's default.

use std::path::Path;

use kustodian_manifest::Node;

use crate::StoreError;

/// What the mapping gives one Application. `None`: the operator's own setting applies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantChoice {
    /// The Kubernetes auth role (`AVP_K8S_ROLE`).
    pub role: Option<String>,
    /// The prefix put before `<path:...>` placeholders' paths (`AVP_PATH_PREFIX`).
    pub path_prefix: Option<String>,
    /// The Kubernetes auth mount.
    pub auth_mount: Option<String>,
}

/// One entry of the mapping.
#[derive(Debug, Default)]
struct Tenant {
    project: String,
    namespaces: Option<Vec<String>>,
    roles: Vec<String>,
    default_role: Option<String>,
    auth_mount: Option<String>,
    path_prefixes: Vec<String>,
    default_path_prefix: Option<String>,
}

const FIELDS: &[&str] = &[
    "project",
    "namespaces",
    "roles",
    "defaultRole",
    "authMount",
    "pathPrefixes",
    "defaultPathPrefix",
];

/// The biggest mapping file read.
const MAX_FILE: u64 = 1 << 20;

/// Decides the role, prefix and mount for an Application of `project` deploying to
/// `namespace` that asked for `want_role` / `want_prefix`.
pub fn choose(
    file: Option<&Path>,
    project: Option<&str>,
    namespace: Option<&str>,
    want_role: Option<&str>,
    want_prefix: Option<&str>,
) -> Result<TenantChoice, StoreError> {
    let Some(file) = file else {
        if let Some(var) = asked(want_role, want_prefix) {
            return Err(StoreError::Config(format!(
                "the Application asks for {var}, which only the operator's tenant mapping can grant, and none is \
                 configured; operator: set KUSTODIAN_TENANTS_FILE in the sidecar (docs/security.md); application: remove {var}"
            )));
        }
        return Ok(TenantChoice::default());
    };
    let tenants = load(file)?;
    let entry = project.and_then(|p| {
        tenants.iter().find(|t| {
            t.project == p
                && t.namespaces
                    .as_ref()
                    .is_none_or(|ns| namespace.is_some_and(|n| ns.iter().any(|x| x == n)))
        })
    });
    let Some(t) = entry else {
        if let Some(var) = asked(want_role, want_prefix) {
            return Err(StoreError::Config(format!(
                "the Application asks for {var}, but its project {:?} (namespace {:?}) has no entry in the tenant mapping {}; \
                 operator: add one; application: remove {var}",
                project.unwrap_or(""),
                namespace.unwrap_or(""),
                file.display()
            )));
        }
        return Ok(TenantChoice::default());
    };
    let pick = |want: Option<&str>,
                allowed: &[String],
                default: &Option<String>,
                var: &str,
                what: &str| {
        match want {
            Some(w) if allowed.iter().any(|a| a == w) => Ok(Some(w.to_string())),
            Some(w) => Err(StoreError::Config(format!(
                "{var}: {what} {w:?} is not allowed for project {:?} in the tenant mapping {} (allowed: {}); \
                 use one of those or ask the operator to add it",
                t.project,
                file.display(),
                if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") }
            ))),
            None => Ok(default.clone()),
        }
    };
    Ok(TenantChoice {
        role: pick(want_role, &t.roles, &t.default_role, "AVP_K8S_ROLE", "role")?,
        path_prefix: pick(
            want_prefix,
            &t.path_prefixes,
            &t.default_path_prefix,
            "AVP_PATH_PREFIX",
            "path prefix",
        )?
        .map(|p| p.trim_matches('/').to_string()),
        auth_mount: t.auth_mount.clone(),
    })
}

fn asked(role: Option<&str>, prefix: Option<&str>) -> Option<&'static str> {
    match (role, prefix) {
        (Some(_), _) => Some("AVP_K8S_ROLE"),
        (None, Some(_)) => Some("AVP_PATH_PREFIX"),
        (None, None) => None,
    }
}

fn load(file: &Path) -> Result<Vec<Tenant>, StoreError> {
    let name = file.display().to_string();
    let io = |e: std::io::Error| {
        StoreError::Config(format!(
            "KUSTODIAN_TENANTS_FILE {name}: cannot read the tenant mapping: {}",
            e.kind()
        ))
    };
    let meta = std::fs::metadata(file).map_err(io)?;
    if !meta.is_file() || meta.len() > MAX_FILE {
        return Err(StoreError::Config(format!(
            "KUSTODIAN_TENANTS_FILE {name}: not a regular file of at most 1 MiB"
        )));
    }
    let text = std::fs::read_to_string(file).map_err(io)?;
    parse(&text, &name)
}

/// A mapping error at a node's position.
fn at(name: &str, n: &Node, msg: impl std::fmt::Display) -> StoreError {
    StoreError::Config(format!(
        "{name}:{}:{}: {msg}",
        n.span.start.line, n.span.start.column
    ))
}

fn parse(text: &str, name: &str) -> Result<Vec<Tenant>, StoreError> {
    let docs = kustodian_manifest::parse_stream(text).map_err(|e| {
        StoreError::Config(format!(
            "{name}:{}:{}: {}",
            e.pos.line, e.pos.column, e.message
        ))
    })?;
    let Some(root) = docs.first().map(|d| &d.root) else {
        return Ok(Vec::new());
    };
    let top = root
        .as_map()
        .ok_or_else(|| at(name, root, "expected a mapping with `tenants:`"))?;
    let mut out = Vec::new();
    for e in top {
        let key = e.key.as_scalar().unwrap_or("");
        if key != "tenants" {
            return Err(at(
                name,
                &e.key,
                format!("unknown field {key:?}; expected `tenants`"),
            ));
        }
        let items = e
            .value
            .as_seq()
            .ok_or_else(|| at(name, &e.value, "`tenants` must be a list of entries"))?;
        for item in items {
            out.push(tenant(item, name)?);
        }
    }
    Ok(out)
}

fn tenant(item: &Node, name: &str) -> Result<Tenant, StoreError> {
    let entries = item.as_map().ok_or_else(|| {
        at(
            name,
            item,
            "a tenant entry must be a mapping (project, roles, ...)",
        )
    })?;
    let mut t = Tenant::default();
    for e in entries {
        let key = e.key.as_scalar().unwrap_or("");
        let text = || {
            e.value
                .as_scalar()
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.trim().to_string())
                .ok_or_else(|| {
                    at(
                        name,
                        &e.value,
                        format!("`{key}` must be a non-empty string"),
                    )
                })
        };
        let list = || -> Result<Vec<String>, StoreError> {
            let items = e
                .value
                .as_seq()
                .ok_or_else(|| at(name, &e.value, format!("`{key}` must be a list of strings")))?;
            items
                .iter()
                .map(|i| {
                    i.as_scalar()
                        .filter(|s| !s.trim().is_empty())
                        .map(|s| s.trim().to_string())
                        .ok_or_else(|| {
                            at(name, i, format!("`{key}` items must be non-empty strings"))
                        })
                })
                .collect()
        };
        match key {
            "project" => t.project = text()?,
            "namespaces" => t.namespaces = Some(list()?),
            "roles" => t.roles = list()?,
            "defaultRole" => t.default_role = Some(text()?),
            "authMount" => t.auth_mount = Some(text()?),
            "pathPrefixes" => t.path_prefixes = list()?,
            "defaultPathPrefix" => t.default_path_prefix = Some(text()?),
            other => {
                return Err(at(
                    name,
                    &e.key,
                    format!(
                        "unknown field {other:?}; expected one of {}",
                        FIELDS.join(", ")
                    ),
                ))
            }
        }
    }
    if t.project.is_empty() {
        return Err(at(
            name,
            item,
            "a tenant entry needs `project` (the Argo CD project name)",
        ));
    }
    for p in t.path_prefixes.iter().chain(&t.default_path_prefix) {
        if p.split('/').any(|s| s == ".." || s == ".") {
            return Err(at(
                name,
                item,
                "path prefixes may not hold `.` or `..` segments",
            ));
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = "tenants:\n  - project: team-a\n    roles: [a-read, a-write]\n    defaultRole: a-read\n    pathPrefixes: [secret/data/a]\n  - project: team-b\n    namespaces: [b-prod]\n    roles: [b-read]\n    authMount: k8s-b\n";

    fn choose_in(
        project: Option<&str>,
        ns: Option<&str>,
        role: Option<&str>,
        prefix: Option<&str>,
    ) -> Result<TenantChoice, StoreError> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tenants.yaml");
        std::fs::write(&f, MAP).unwrap();
        choose(Some(&f), project, ns, role, prefix)
    }

    #[test]
    fn mapped_project_gets_its_roles_and_default() {
        let c = choose_in(Some("team-a"), Some("x"), None, None).unwrap();
        assert_eq!(c.role.as_deref(), Some("a-read"));
        let c = choose_in(Some("team-a"), None, Some("a-write"), Some("secret/data/a")).unwrap();
        assert_eq!(c.role.as_deref(), Some("a-write"));
        assert_eq!(c.path_prefix.as_deref(), Some("secret/data/a"));
        let c = choose_in(Some("team-b"), Some("b-prod"), Some("b-read"), None).unwrap();
        assert_eq!(c.auth_mount.as_deref(), Some("k8s-b"));
    }

    #[test]
    fn other_roles_projects_and_namespaces_are_refused() {
        let e = choose_in(Some("team-a"), None, Some("b-read"), None).unwrap_err();
        assert!(
            e.to_string().contains("not allowed for project \"team-a\""),
            "{e}"
        );
        let e = choose_in(Some("team-b"), Some("b-dev"), Some("b-read"), None).unwrap_err();
        assert!(e.to_string().contains("no entry"), "{e}");
        let e = choose_in(None, None, Some("a-read"), None).unwrap_err();
        assert!(e.to_string().contains("no entry"), "{e}");
        assert_eq!(
            choose_in(Some("team-c"), None, None, None).unwrap(),
            TenantChoice::default()
        );
        let e = choose(None, Some("team-a"), None, None, Some("p")).unwrap_err();
        assert!(e.to_string().contains("KUSTODIAN_TENANTS_FILE"), "{e}");
    }

    #[test]
    fn unknown_fields_are_errors_with_line_and_column() {
        let e = parse("tenants:\n  - project: a\n    role: x\n", "t.yaml").unwrap_err();
        assert!(
            e.to_string().contains("t.yaml:3:5: unknown field \"role\""),
            "{e}"
        );
        let e = parse("tenant: []\n", "t.yaml").unwrap_err();
        assert!(e.to_string().contains("t.yaml:1:1"), "{e}");
        let e = parse("tenants:\n  - roles: [x]\n", "t.yaml").unwrap_err();
        assert!(e.to_string().contains("needs `project`"), "{e}");
        let e = parse("tenants: [\n", "t.yaml").unwrap_err();
        assert!(e.to_string().starts_with("configuration: t.yaml:"), "{e}");
    }
}
