//! What the upstream said about its tools in `tools/list`: each tool's
//! title and behaviour hints, handed to the policy as context.
//!
//! The hints come from the server and are not facts: a policy may use
//! them to ask for *more* scrutiny, and the spec's defaults for a missing
//! hint are the cautious ones (may write, may destroy, not idempotent,
//! reaches the outside world), so a server that says nothing is treated
//! as dangerous, never as harmless.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

/// The most tools remembered per session, so a hostile upstream cannot
/// grow the proxy's memory without bound.
pub const MAX_TOOLS: usize = 4096;

/// The four hints and their defaults in the MCP specification.
const HINTS: [(&str, bool); 4] =
    [("readOnlyHint", false), ("destructiveHint", true), ("idempotentHint", false), ("openWorldHint", true)];

/// One tool as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolInfo {
    pub title: Option<String>,
    /// Only the hints the server actually gave, as booleans.
    pub hints: Map<String, Value>,
}

/// The tools one upstream listed in one session.
#[derive(Debug, Default, Clone)]
pub struct Catalogue {
    tools: HashMap<String, ToolInfo>,
}

impl Catalogue {
    /// Takes note of a `tools/list` result (one page of it).
    pub fn learn(&mut self, result: &Value) {
        let Some(tools) = result.get("tools").and_then(Value::as_array) else {
            return;
        };
        for tool in tools {
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                continue;
            };
            if self.tools.len() >= MAX_TOOLS && !self.tools.contains_key(name) {
                break;
            }
            let annotations = tool.get("annotations").and_then(Value::as_object);
            let title = tool
                .get("title")
                .and_then(Value::as_str)
                .or_else(|| annotations.and_then(|a| a.get("title")).and_then(Value::as_str))
                .map(str::to_owned);
            let hints = HINTS
                .iter()
                .filter_map(|(hint, _)| {
                    let value = annotations?.get(*hint)?.as_bool()?;
                    Some(((*hint).to_owned(), Value::Bool(value)))
                })
                .collect();
            self.tools.insert(name.to_owned(), ToolInfo { title, hints });
        }
    }

    pub fn get(&self, tool: &str) -> Option<&ToolInfo> {
        self.tools.get(tool)
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// The policy context for a call to `tool`: its name, title, every hint
    /// (with the spec's default where the server gave none), which hints
    /// were defaulted, and whether the tool was listed at all.
    pub fn context(&self, tool: &str) -> Value {
        let info = self.tools.get(tool);
        let mut annotations = Map::new();
        let mut defaulted = Vec::new();
        for (hint, default) in HINTS {
            match info.and_then(|i| i.hints.get(hint)) {
                Some(value) => {
                    annotations.insert(hint.to_owned(), value.clone());
                }
                None => {
                    annotations.insert(hint.to_owned(), Value::Bool(default));
                    defaulted.push(hint);
                }
            }
        }
        let mut context = json!({
            "name": tool,
            "annotations": annotations,
            "defaulted_hints": defaulted,
            "listed": info.is_some(),
        });
        if let Some(title) = info.and_then(|i| i.title.as_deref()) {
            context["title"] = json!(title);
        }
        context
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_hints_take_the_cautious_defaults() {
        let mut c = Catalogue::default();
        c.learn(&json!({"tools": [
            {"name": "read", "title": "Read a file", "annotations": {"readOnlyHint": true, "destructiveHint": "no"}},
            {"name": "rm"}
        ]}));
        let read = c.context("read");
        assert_eq!(read["title"], "Read a file");
        assert_eq!(read["annotations"]["readOnlyHint"], true);
        // A non-boolean hint is no hint.
        assert_eq!(read["annotations"]["destructiveHint"], true);
        assert_eq!(read["listed"], true);
        let rm = c.context("rm");
        assert_eq!(
            rm["annotations"],
            json!({"readOnlyHint": false, "destructiveHint": true, "idempotentHint": false, "openWorldHint": true})
        );
        assert!(rm.get("title").is_none());
        assert_eq!(c.context("unknown")["listed"], false);
    }

    #[test]
    fn the_annotation_title_is_a_fallback() {
        let mut c = Catalogue::default();
        c.learn(&json!({"tools": [{"name": "t", "annotations": {"title": "T"}}]}));
        assert_eq!(c.context("t")["title"], "T");
    }
}
