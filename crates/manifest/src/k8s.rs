//! Read-only helpers for Kubernetes objects.

use crate::node::Node;

/// A view of a node as a Kubernetes object.
#[derive(Clone, Copy, Debug)]
pub struct Object<'a> {
    /// The object's mapping node.
    pub node: &'a Node,
}

impl<'a> Object<'a> {
    /// Wraps a node; any node is accepted, the accessors return `None` where fields are missing.
    pub fn new(node: &'a Node) -> Self {
        Object { node }
    }

    fn str_at(&self, path: &[&str]) -> Option<&'a str> {
        self.node.get_path(path)?.as_scalar()
    }

    /// `kind`
    pub fn kind(&self) -> Option<&'a str> {
        self.str_at(&["kind"])
    }

    /// `apiVersion`
    pub fn api_version(&self) -> Option<&'a str> {
        self.str_at(&["apiVersion"])
    }

    /// The API group: the part of `apiVersion` before `/`, empty for the core group.
    pub fn group(&self) -> &'a str {
        match self.api_version() {
            Some(v) => v.rsplit_once('/').map(|(g, _)| g).unwrap_or(""),
            None => "",
        }
    }

    /// `metadata.name` (or `metadata.generateName`)
    pub fn name(&self) -> Option<&'a str> {
        self.str_at(&["metadata", "name"])
            .or_else(|| self.str_at(&["metadata", "generateName"]))
    }

    /// `metadata.namespace`
    pub fn namespace(&self) -> Option<&'a str> {
        self.str_at(&["metadata", "namespace"])
    }

    /// `type` (of a Secret)
    pub fn secret_type(&self) -> Option<&'a str> {
        self.str_at(&["type"])
    }

    /// One annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        self.node
            .get_path(&["metadata", "annotations", key])?
            .as_scalar()
    }

    /// Whether this is a core-group `Secret`.
    pub fn is_secret(&self) -> bool {
        self.kind() == Some("Secret") && matches!(self.api_version(), None | Some("v1"))
    }

    /// `kind/name` for messages, with `?` for what is missing.
    pub fn display_name(&self) -> String {
        format!(
            "{}/{}",
            self.kind().unwrap_or("?"),
            self.name().unwrap_or("?")
        )
    }
}

/// The objects in a document: the root itself, or the `items` of a `kind: List`
/// (`v1/List` and any `*List` kind with `items`), recursively.
pub fn objects(root: &Node) -> Vec<&Node> {
    let mut out = Vec::new();
    collect(root, &mut out, 0);
    out
}

fn collect<'a>(n: &'a Node, out: &mut Vec<&'a Node>, depth: usize) {
    let o = Object::new(n);
    let is_list = o.kind().is_some_and(|k| k == "List" || k.ends_with("List"));
    match (is_list, n.get("items").and_then(Node::as_seq)) {
        (true, Some(items)) if depth < 8 => {
            for it in items {
                collect(it, out, depth + 1);
            }
        }
        _ => out.push(n),
    }
}
