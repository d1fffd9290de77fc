//! What an MCP record adds to its span (the MCP semantic conventions): the name
//! `{mcp.method.name} {tool or prompt}`, the method, target, JSON-RPC id and protocol version,
//! the JSON-RPC error or tool error as `error.type`, and the session id, always hashed.
//! Arguments, `Mcp-Param-*` values and tokens are not in records, so never in spans.

use gatetrace_core::classify::hash_session_id;
use gatetrace_core::mcp::OutcomeKind;
use gatetrace_core::mcp::method::TOOLS_CALL;
use gatetrace_core::record::Record;
use opentelemetry_proto::tonic::common::v1::KeyValue;

use super::attribute::string;

/// The length of a hashed session id (`hash_session_id`): 32 lowercase hex digits.
const HASHED_SESSION_ID_LEN: usize = 32;

/// The MCP part of a span.
#[derive(Debug, Default)]
pub(super) struct McpSpan {
    /// The span name, when the record names an MCP method.
    pub name: Option<String>,
    /// `error.type`: the JSON-RPC error code, or `tool_error`.
    pub error_type: Option<String>,
}

/// Appends the MCP attributes of `record` to `attributes`; what else the span takes from it.
pub(super) fn mcp_span(record: &Record, attributes: &mut Vec<KeyValue>) -> McpSpan {
    if let Some(session) = &record.session {
        attributes.push(string("mcp.session.id", &session_hash(&session.id)));
    }
    let Some(facts) = &record.mcp else {
        return McpSpan::default();
    };
    let mut span = McpSpan::default();
    if let Some(method) = facts.method.as_deref() {
        attributes.push(string("mcp.method.name", method));
        let target = facts.tool.as_deref().or(facts.prompt.as_deref());
        span.name = Some(match target {
            Some(target) => format!("{method} {target}"),
            None => method.to_owned(),
        });
        if method == TOOLS_CALL {
            attributes.push(string("gen_ai.operation.name", "execute_tool"));
        }
    }
    if let Some(tool) = &facts.tool {
        attributes.push(string("gen_ai.tool.name", tool));
    }
    if let Some(prompt) = &facts.prompt {
        attributes.push(string("gen_ai.prompt.name", prompt));
    }
    if let Some(id) = &facts.request_id {
        attributes.push(string("jsonrpc.request.id", id));
    }
    if let Some(version) = &facts.protocol_version {
        attributes.push(string("mcp.protocol.version", version));
    }
    match (facts.outcome, facts.error_code) {
        (Some(OutcomeKind::Error), Some(code)) => {
            let code = code.to_string();
            attributes.push(string("rpc.response.status_code", &code));
            span.error_type = Some(code);
        }
        (Some(OutcomeKind::ToolError), _) => {
            span.error_type = Some(OutcomeKind::ToolError.as_str().to_owned());
        }
        _ => {}
    }
    span
}

/// The session id as the span carries it: hashed. A record holds the hash unless the plugin
/// was configured to record raw ids; those are hashed here with the plugin's own function, so
/// a span's session id pairs with the hashed records'.
fn session_hash(id: &str) -> String {
    let hashed = id.len() == HASHED_SESSION_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hashed {
        id.to_owned()
    } else {
        hash_session_id(id.as_bytes())
    }
}
