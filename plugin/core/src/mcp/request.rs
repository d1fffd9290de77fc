//! The JSON-RPC request body of older MCP clients (2025-06-18, 2025-11-25): the message kind,
//! the method, `params.name` / `params.uri` and the `id`. Strings are borrowed from the body
//! where they have no escapes; `params.arguments`, `_meta` and every other member are skipped
//! unread (`IgnoredAny`), never stored.

use std::fmt;

use super::{MessageKind, Name, NameError, RequestId, Target, checked_name, json};

/// What a request body says about the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFacts<'a> {
    pub kind: MessageKind,
    /// For requests and notifications: the method's constant, or [`super::method::OTHER`]
    /// for an unknown or overlong one. `None` for client responses and batches.
    pub method: Option<&'static str>,
    /// The `id` of a request or client response (`None` when absent, and for batches).
    pub id: Option<RequestId<'a>>,
    /// For `tools/call`, `prompts/get`, `resources/read` requests: what they act on.
    pub target: Option<Target<'a>>,
}

/// Why a body is not a JSON-RPC message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidRequest {
    /// Not JSON (syntax, invalid UTF-8, trailing data, nesting deeper than 128, a number out
    /// of range) or a member of the wrong type (`method` not a string, `params` a number …).
    Json,
    /// JSON, but neither a request, a notification, a response nor a non-empty batch.
    NotJsonRpc,
}

impl fmt::Display for InvalidRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Json => "MCP request body is not valid JSON of the expected shape",
            Self::NotJsonRpc => "MCP request body is not a JSON-RPC message",
        })
    }
}

/// Reads a request body. Never panics; memory beyond the body is bounded by the longest
/// string it keeps ([`MAX_URI_BYTES`]) and serde_json's scratch space for escaped strings.
pub fn scan_request(body: &[u8]) -> Result<RequestFacts<'_>, InvalidRequest> {
    let scanned = json::scan(body).ok_or(InvalidRequest::Json)?;
    if let Some(any) = scanned.batch {
        return if any {
            Ok(RequestFacts {
                kind: MessageKind::Batch,
                method: None,
                id: None,
                target: None,
            })
        } else {
            Err(InvalidRequest::NotJsonRpc)
        };
    }
    let reply = scanned.result.is_some() || scanned.error.is_some();
    let (kind, method) = match (scanned.method, &scanned.id) {
        (Some(m), Some(_)) if !m.notification => (MessageKind::Request, Some(m.name)),
        (Some(m), _) => (MessageKind::Notification, Some(m.name)),
        (None, _) if reply => (MessageKind::Response, None),
        (None, _) => return Err(InvalidRequest::NotJsonRpc),
    };
    let target = match (kind, method) {
        (MessageKind::Request, Some(method)) => {
            let raw = if method == super::method::RESOURCES_READ {
                scanned.uri
            } else {
                scanned.name
            };
            let name: Name<'_> = match raw {
                None => Err(NameError::Missing),
                Some(Err(e)) => Err(e),
                Some(Ok(text)) => checked_name(text, Target::max_bytes(method)),
            };
            Target::for_method(method, name)
        }
        _ => None,
    };
    let id = if kind == MessageKind::Notification {
        None
    } else {
        scanned.id
    };
    Ok(RequestFacts {
        kind,
        method,
        id,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    use crate::mcp::{IdKind, MAX_NAME_BYTES, MAX_REQUEST_ID_BYTES, MAX_URI_BYTES, method};

    fn ok(body: &str) -> RequestFacts<'_> {
        scan_request(body.as_bytes()).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    #[test]
    fn sdk_shaped_requests() {
        // The Python SDK's tools/call, with arguments and _meta that must be skipped.
        let call = ok(
            r#"{"method":"tools/call","params":{"name":"get_weather","arguments":{"city":"Paris","token":"s3cr3t"},"_meta":{"progressToken":1,"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},"jsonrpc":"2.0","id":3}"#,
        );
        assert_eq!(call.kind, MessageKind::Request);
        assert_eq!(call.method, Some(method::TOOLS_CALL));
        assert_eq!(call.id, Some(RequestId::UInt(3)));
        assert_eq!(call.target, Some(Target::Tool(Ok("get_weather".into()))));
        assert!(
            matches!(call.target, Some(Target::Tool(Ok(Cow::Borrowed(_))))),
            "zero-copy"
        );
        assert!(
            !format!("{call:?}").contains("s3cr3t"),
            "arguments are never kept"
        );

        let init = ok(
            r#"{"jsonrpc":"2.0","id":"init-1","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"mcp","version":"0.1.0"}}}"#,
        );
        assert_eq!(
            (init.kind, init.method, init.target),
            (MessageKind::Request, Some(method::INITIALIZE), None),
            "clientInfo.name is not a target"
        );
        assert_eq!(init.id, Some(RequestId::Str("init-1".into())));

        let prompt = ok(
            r#"{"jsonrpc":"2.0","id":-4,"method":"prompts/get","params":{"name":"r\u00e9sum\u00e9","arguments":{}}}"#,
        );
        assert_eq!(prompt.target, Some(Target::Prompt(Ok("résumé".into()))));
        assert_eq!(prompt.id, Some(RequestId::Int(-4)));

        let read = ok(
            r#"{"jsonrpc":"2.0","id":7,"method":"resources/read","params":{"uri":"file:///home/u/secret.txt","name":"ignored"}}"#,
        );
        assert_eq!(
            read.target,
            Some(Target::Resource(Ok("file:///home/u/secret.txt".into())))
        );

        let note = ok(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert_eq!(
            (note.kind, note.method, note.id),
            (
                MessageKind::Notification,
                Some(method::NOTIFICATIONS_INITIALIZED),
                None
            )
        );
        let cancel = ok(
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3,"reason":"x"}}"#,
        );
        assert_eq!(cancel.kind, MessageKind::Notification);

        // The client's answer to an elicitation request, posted back.
        let answer =
            ok(r#"{"jsonrpc":"2.0","id":0,"result":{"action":"accept","content":{"name":"x"}}}"#);
        assert_eq!(
            (answer.kind, answer.method, answer.id),
            (MessageKind::Response, None, Some(RequestId::UInt(0)))
        );
        let refused = ok(r#"{"jsonrpc":"2.0","id":"s-1","error":{"code":-1,"message":"no"}}"#);
        assert_eq!(refused.kind, MessageKind::Response);
    }

    #[test]
    fn batches_and_kinds() {
        let batch = ok(
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}},{"jsonrpc":"2.0","method":"notifications/initialized"}]"#,
        );
        assert_eq!(
            batch,
            RequestFacts {
                kind: MessageKind::Batch,
                method: None,
                id: None,
                target: None
            }
        );
        assert_eq!(scan_request(b" [ ] "), Err(InvalidRequest::NotJsonRpc));
        let custom =
            ok(r#"{"jsonrpc":"2.0","id":1,"method":"x-vendor/thing","params":{"name":"n"}}"#);
        assert_eq!((custom.method, custom.target), (Some(method::OTHER), None));
        let long_method = format!(r#"{{"id":1,"method":"{}"}}"#, "m".repeat(100_000));
        assert_eq!(ok(&long_method).method, Some(method::OTHER));
        let null_id = ok(r#"{"id":null,"method":"ping"}"#);
        assert_eq!(
            (null_id.kind, null_id.id),
            (MessageKind::Request, Some(RequestId::Null))
        );
        let id_note = ok(r#"{"id":5,"method":"notifications/progress"}"#);
        assert_eq!(
            (id_note.kind, id_note.id),
            (MessageKind::Notification, None)
        );
        let escaped_method = ok(r#"{"id":1,"method":"tools\/call","params":{"name":"a"}}"#);
        assert_eq!(escaped_method.method, Some(method::TOOLS_CALL));
        let last_wins = ok(r#"{"id":1,"method":"ping","method":"tools/list"}"#);
        assert_eq!(last_wins.method, Some(method::TOOLS_LIST));
        let positional = ok(r#"{"id":1,"method":"tools/call","params":["get_weather"]}"#);
        assert_eq!(
            positional.target,
            Some(Target::Tool(Err(NameError::Missing)))
        );
        let scalar = ok(r#"{"id":1,"method":"tools/call","params":7}"#);
        assert_eq!(scalar.target, Some(Target::Tool(Err(NameError::Missing))));
        let number = ok(r#"{"id":1,"method":"tools/call","params":{"name":7}}"#);
        assert_eq!(number.target, Some(Target::Tool(Err(NameError::NotText))));
        let nested = ok(
            r#"{"id":1,"method":"tools/call","params":{"arguments":{"name":"evil"},"_meta":{"name":"x"},"name":"real"}}"#,
        );
        assert_eq!(
            nested.target,
            Some(Target::Tool(Ok("real".into()))),
            "only params.name"
        );
        let in_result = ok(r#"{"id":1,"result":{"name":"x","params":{"name":"y"}}}"#);
        assert_eq!(
            (in_result.kind, in_result.target),
            (MessageKind::Response, None)
        );
    }

    #[test]
    fn ids_are_bounded() {
        let id = |raw: &str| {
            let body = format!(r#"{{"id":{raw},"method":"ping"}}"#);
            let id = ok(&body).id.expect("an id");
            (id.kind(), id.value())
        };
        let number = |value: Option<&str>| (IdKind::Number, value.map(str::to_string));
        let string = |value: Option<&str>| (IdKind::String, value.map(str::to_string));
        assert_eq!(id("1.5"), number(None));
        assert_eq!(id("1e3"), number(None));
        assert_eq!(
            id("-9223372036854775808"),
            number(Some("-9223372036854775808"))
        );
        assert_eq!(
            id("18446744073709551615"),
            number(Some("18446744073709551615"))
        );
        assert_eq!(id("18446744073709551616"), number(None));
        let longest = "i".repeat(MAX_REQUEST_ID_BYTES);
        assert_eq!(id(&format!("\"{longest}\"")), string(Some(&longest)));
        assert_eq!(id(&format!("\"{longest}i\"")), string(None));
        assert_eq!(id(r#""a\nb""#), string(None), "control characters");
        assert_eq!(id(r#""a\"b""#), string(Some("a\"b")));
        assert_eq!(id("null"), (IdKind::Null, None));
        assert_eq!(
            scan_request(br#"{"id":{"a":1},"method":"ping"}"#),
            Err(InvalidRequest::Json)
        );
        assert_eq!(
            scan_request(br#"{"id":true,"method":"ping"}"#),
            Err(InvalidRequest::Json)
        );
    }

    #[test]
    fn names_are_bounded_and_checked() {
        let tool = |name: &str| {
            ok(&format!(
                r#"{{"id":1,"method":"tools/call","params":{{"name":{name}}}}}"#
            ))
            .target
            .map(|t| match t {
                Target::Tool(name) => name.map(Cow::into_owned),
                other => panic!("{other:?}"),
            })
        };
        let longest = "t".repeat(MAX_NAME_BYTES);
        assert_eq!(tool(&format!("\"{longest}\"")), Some(Ok(longest.clone())));
        assert_eq!(
            tool(&format!("\"{longest}t\"")),
            Some(Err(NameError::TooLong))
        );
        assert_eq!(
            tool(&format!("\"{}\"", "t".repeat(MAX_URI_BYTES + 1))),
            Some(Err(NameError::TooLong))
        );
        assert_eq!(tool(r#""""#), Some(Err(NameError::Empty)));
        assert_eq!(tool(r#""a\u0000b""#), Some(Err(NameError::NotText)));
        assert_eq!(tool(r#""\ud83d\ude00""#), Some(Ok("😀".to_string())));
        let missing = ok(r#"{"id":1,"method":"tools/call"}"#);
        assert_eq!(missing.target, Some(Target::Tool(Err(NameError::Missing))));
        let uri = format!("file:///{}", "x".repeat(MAX_URI_BYTES - 8));
        let body = format!(r#"{{"id":1,"method":"resources/read","params":{{"uri":"{uri}"}}}}"#);
        let read = ok(&body);
        assert_eq!(read.target, Some(Target::Resource(Ok(uri.as_str().into()))));
    }

    #[test]
    fn hostile_bodies_are_refused_without_panic() {
        let unclosed = "[".repeat(100_000);
        let cases: Vec<(Vec<u8>, InvalidRequest)> = vec![
            (unclosed.into_bytes(), InvalidRequest::Json),
            (
                br#"{"id":1e999,"method":"ping"}"#.to_vec(),
                InvalidRequest::Json,
            ),
            (
                b"{\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"\xff\"}}".to_vec(),
                InvalidRequest::Json,
            ),
            (
                br#"{"id":1,"method":"tools/call","params":{"name":"a""#.to_vec(),
                InvalidRequest::Json,
            ),
            (
                br#"{"id":1,"method":"ping"} x"#.to_vec(),
                InvalidRequest::Json,
            ),
            (br#"{"id":1,"method":7}"#.to_vec(), InvalidRequest::Json),
            (
                br#"{"id":1,"method":"tools/call","params":{"name":[[[[[["#.to_vec(),
                InvalidRequest::Json,
            ),
            (b"".to_vec(), InvalidRequest::Json),
            (b"null".to_vec(), InvalidRequest::Json),
            (b"\"tools/call\"".to_vec(), InvalidRequest::Json),
            (br#"{"id":1}"#.to_vec(), InvalidRequest::NotJsonRpc),
            (br#"{}"#.to_vec(), InvalidRequest::NotJsonRpc),
        ];
        for (body, error) in cases {
            let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
            assert_eq!(scan_request(&body), Err(error), "{shown}");
        }
        // Skipped members are skipped without recursion, number parsing or UTF-8 checks: deep
        // nesting, huge and out-of-range numbers, invalid UTF-8 there cost no stack and are not
        // refused (the body passes upstream unchanged whatever the scanner says).
        let bad_utf8 = b"{\"id\":1,\"method\":\"ping\",\"params\":{\"x\":\"\xc3\"}}";
        assert_eq!(
            scan_request(bad_utf8).map(|r| r.method),
            Ok(Some(method::PING))
        );
        let skipped = format!(
            r#"{{"id":1,"method":"tools/call","params":{{"name":"a","arguments":{{"deep":{}{},"n":{},"e":1e999}}}}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000),
            "9".repeat(5000)
        );
        assert_eq!(ok(&skipped).target, Some(Target::Tool(Ok("a".into()))));
        let deep_batch = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(ok(&deep_batch).kind, MessageKind::Batch);
    }
}
