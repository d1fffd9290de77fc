//! The MCP operations histogram (`mcp_server_operation_duration_seconds`, OpenTelemetry MCP
//! semconv): which records count, their label values, and the per-service bound on tool and
//! prompt names (past it a name is labelled `_OTHER`, counted).

use std::collections::{BTreeMap, BTreeSet};

use gatetrace_core::mcp::OutcomeKind;
use gatetrace_core::mcp::facts::McpFacts;
use gatetrace_core::mcp::method::OTHER;
use gatetrace_core::record::Record;
use serde::{Deserialize, Serialize};

use super::series::{Family, Hist, SEP};

/// The semconv's bucket bounds for `mcp.server.operation.duration`, seconds.
pub const MCP_BOUNDS: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Label count of the histogram (`names::MCP_OPERATION_LABELS`).
const LABELS: usize = 7;
/// The JSON-RPC codes labelled as themselves: the range the specification reserves (standard
/// errors, MCP's own, implementation-defined server errors). A server's other codes are free
/// integers, labelled `_OTHER` so the label stays bounded.
const RESERVED_CODES: std::ops::RangeInclusive<i64> = -32768..=-32000;
/// `error_type` of an operation whose result had `isError: true`.
pub const TOOL_ERROR: &str = "tool_error";

/// Names given their own label value per service: tools, prompts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NameBound {
    /// Service → names admitted so far (at most the cap each).
    pub admitted: BTreeMap<String, BTreeSet<String>>,
    /// Operations whose name was labelled `_OTHER` because of the cap.
    pub overflowed: u64,
}

impl NameBound {
    /// `name` itself when admitted (or room remains for it in `service`, at most `cap` names and
    /// `max_services` services), else `_OTHER`.
    fn label<'a>(
        &mut self,
        service: &str,
        name: &'a str,
        cap: usize,
        max_services: usize,
    ) -> &'a str {
        if let Some(names) = self.admitted.get_mut(service) {
            if names.contains(name) {
                return name;
            }
            if names.len() < cap {
                names.insert(name.to_owned());
                return name;
            }
        } else if cap > 0 && self.admitted.len() < max_services {
            self.admitted
                .insert(service.to_owned(), BTreeSet::from([name.to_owned()]));
            return name;
        }
        self.overflowed += 1;
        OTHER
    }
}

/// The MCP operations histogram and its name bounds, checkpointed with the rest of the state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct McpOperations {
    pub family: Family<Hist>,
    pub tools: NameBound,
    pub prompts: NameBound,
}

/// How many tool and prompt names each service may have as label values.
#[derive(Debug, Clone, Copy)]
pub struct NameCaps {
    pub tools: usize,
    pub prompts: usize,
}

impl McpOperations {
    /// Rebuilds the index of a loaded checkpoint; restarts the histogram (logged) if it was
    /// written with other bucket bounds.
    pub fn conform(&mut self) {
        if self
            .family
            .series
            .iter()
            .any(|(_, hist)| hist.counts.len() != MCP_BOUNDS.len() + 1)
        {
            tracing::warn!(
                "MCP operation buckets changed since the checkpoint; histogram restarts"
            );
            self.family = Family::default();
        }
        self.family.reindex();
    }

    /// Observes `record` when it carries an MCP method (requests and notifications; client
    /// responses and batches have none and are not operations here).
    pub fn observe(
        &mut self,
        record: &Record,
        caps: NameCaps,
        series_cap: usize,
        key: &mut String,
    ) {
        let Some(facts) = &record.mcp else { return };
        let Some(method) = facts.method.as_deref() else {
            return;
        };
        let tool = facts.tool.as_deref().map_or("", |t| {
            self.tools.label(&record.service, t, caps.tools, series_cap)
        });
        let prompt = facts.prompt.as_deref().map_or("", |p| {
            self.prompts
                .label(&record.service, p, caps.prompts, series_cap)
        });
        let mut code = String::new();
        let (error_type, rpc_code) = error_labels(facts, record.status, &mut code);
        key.clear();
        for (i, value) in [
            record.service.as_str(),
            method,
            tool,
            prompt,
            error_type,
            rpc_code,
            facts.protocol_version.as_deref().unwrap_or(""),
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                key.push(SEP);
            }
            key.push_str(value);
        }
        let end_ns = record.start_unix_ns.saturating_add(record.duration_ns);
        let exemplar = record.sampled.then_some((record.trace_id.as_str(), end_ns));
        self.family
            .slot(key, LABELS, series_cap, || Hist::new(MCP_BOUNDS.len()))
            .observe(&MCP_BOUNDS, record.duration_ns as f64 / 1e9, exemplar);
    }
}

/// `(error_type, rpc_response_status_code)`: the JSON-RPC code (both) for outcome `error`
/// (`_OTHER` when the code is unknown or outside [`RESERVED_CODES`]), `tool_error` for `tool_error`, the HTTP status for a 5xx
/// without a known outcome (semconv's HTTP fallback), else empty. `code` holds the text.
fn error_labels<'a>(
    facts: &McpFacts,
    status: Option<u16>,
    code: &'a mut String,
) -> (&'a str, &'a str) {
    match (facts.outcome, facts.error_code) {
        (Some(OutcomeKind::Error), Some(n)) if RESERVED_CODES.contains(&n) => {
            *code = n.to_string();
            (code.as_str(), code.as_str())
        }
        (Some(OutcomeKind::Error), Some(_)) => (OTHER, OTHER),
        (Some(OutcomeKind::Error), None) => (OTHER, ""),
        (Some(OutcomeKind::ToolError), _) => (TOOL_ERROR, ""),
        (None | Some(OutcomeKind::Unknown), _) if status.is_some_and(|s| s >= 500) => {
            *code = status.unwrap_or_default().to_string();
            (code.as_str(), "")
        }
        _ => ("", ""),
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use gatetrace_core::mcp::MessageKind;

    use super::*;

    fn call(tool: &str) -> Record {
        Record {
            mcp: Some(McpFacts {
                kind: Some(MessageKind::Request),
                method: Some(Cow::Borrowed("tools/call")),
                tool: Some(tool.into()),
                ..McpFacts::default()
            }),
            ..Record::example(1)
        }
    }

    fn keys(ops: &McpOperations) -> Vec<String> {
        ops.family
            .iter()
            .map(|(labels, h)| format!("{} {}", labels.collect::<Vec<_>>().join(","), h.count()))
            .collect()
    }

    #[test]
    fn tool_names_past_the_per_service_cap_are_other_and_counted() {
        let mut ops = McpOperations::default();
        let caps = NameCaps {
            tools: 2,
            prompts: 2,
        };
        let mut key = String::new();
        for tool in ["a", "b", "c", "a", "d"] {
            ops.observe(&call(tool), caps, 100, &mut key);
        }
        assert_eq!(
            keys(&ops),
            [
                "mcp,tools/call,a,,,, 2",
                "mcp,tools/call,b,,,, 1",
                "mcp,tools/call,_OTHER,,,, 2"
            ]
        );
        assert_eq!(ops.tools.overflowed, 2);
        // Another service has its own room.
        let other = Record {
            service: "other-svc".into(),
            ..call("c")
        };
        ops.observe(&other, caps, 100, &mut key);
        assert_eq!(ops.tools.overflowed, 2);
    }

    #[test]
    fn a_checkpoint_with_other_buckets_restarts_the_histogram_instead_of_panicking() {
        let mut ops = McpOperations::default();
        let caps = NameCaps {
            tools: 2,
            prompts: 2,
        };
        let mut key = String::new();
        ops.observe(&call("a"), caps, 100, &mut key);
        let mut back: McpOperations =
            serde_json::from_str(&serde_json::to_string(&ops).unwrap()).unwrap();
        back.conform();
        back.observe(&call("a"), caps, 100, &mut key);
        assert_eq!(
            keys(&back),
            ["mcp,tools/call,a,,,, 2"],
            "kept and reindexed"
        );
        back.family.series[0].1.counts.pop();
        back.conform();
        back.observe(&call("a"), caps, 100, &mut key);
        assert_eq!(keys(&back), ["mcp,tools/call,a,,,, 1"], "restarted");
    }

    #[test]
    fn error_type_is_the_code_tool_error_or_an_http_5xx() {
        let with = |outcome, error_code, status| {
            let facts = McpFacts {
                outcome,
                error_code,
                ..McpFacts::default()
            };
            let mut code = String::new();
            let (e, r) = error_labels(&facts, status, &mut code);
            (e.to_owned(), r.to_owned())
        };
        let pair = |e: &str, r: &str| (e.to_owned(), r.to_owned());
        assert_eq!(
            with(Some(OutcomeKind::Error), Some(-32602), Some(200)),
            pair("-32602", "-32602")
        );
        assert_eq!(
            with(Some(OutcomeKind::Error), Some(-32042), Some(200)),
            pair("-32042", "-32042")
        );
        // An application's own code is a free integer: bounded as `_OTHER`.
        assert_eq!(
            with(Some(OutcomeKind::Error), Some(404), Some(200)),
            pair("_OTHER", "_OTHER")
        );
        assert_eq!(
            with(Some(OutcomeKind::Error), Some(-31999), Some(200)),
            pair("_OTHER", "_OTHER")
        );
        assert_eq!(
            with(Some(OutcomeKind::Error), None, Some(200)),
            pair("_OTHER", "")
        );
        assert_eq!(
            with(Some(OutcomeKind::ToolError), None, Some(200)),
            pair("tool_error", "")
        );
        assert_eq!(with(None, None, Some(502)), pair("502", ""));
        assert_eq!(
            with(Some(OutcomeKind::Unknown), None, Some(503)),
            pair("503", "")
        );
        assert_eq!(with(Some(OutcomeKind::Ok), None, Some(500)), pair("", ""));
        assert_eq!(with(None, None, Some(404)), pair("", ""));
        assert_eq!(with(None, None, None), pair("", ""));
    }
}
