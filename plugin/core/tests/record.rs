//! The NDJSON record line: round trip, forward compatibility, the size cap, and clear
//! errors for lines the collector must refuse.

use gatetrace_core::record::{DecodeError, MAX_LINE_BYTES, Record, Session, SessionEvent};

fn line_of(json: &str) -> Vec<u8> {
    format!("{json}\n").into_bytes()
}

#[test]
fn round_trips_as_one_line() {
    let record = Record::example_full(1);
    let line = record.to_ndjson_line();
    assert_eq!(line.last(), Some(&b'\n'));
    assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
    assert_eq!(Record::from_ndjson_line(&line).expect("decodes"), record);
    let without_newline = &line[..line.len() - 1];
    assert_eq!(
        Record::from_ndjson_line(without_newline).expect("decodes"),
        record
    );
    let mut reused = b"previous\n".to_vec();
    record.write_ndjson_line(&mut reused);
    assert_eq!(&reused[9..], line.as_slice());
}

#[test]
fn unknown_fields_of_the_same_major_are_ignored() {
    let mut value: serde_json::Value =
        serde_json::from_slice(&Record::example_full(1).to_ndjson_line()).expect("json");
    value["added_in_1_5"] = serde_json::json!({"nested": [1, 2, 3]});
    let line = line_of(&value.to_string());
    assert_eq!(
        Record::from_ndjson_line(&line).expect("decodes"),
        Record::example_full(1)
    );
}

#[test]
fn another_major_version_is_refused_naming_both() {
    let mut value: serde_json::Value =
        serde_json::from_slice(&Record::example_full(1).to_ndjson_line()).expect("json");
    value["v"] = serde_json::json!(2);
    let err = Record::from_ndjson_line(&line_of(&value.to_string())).expect_err("refused");
    assert_eq!(err, DecodeError::Version { found: 2 });
    assert_eq!(
        err.to_string(),
        "record schema major version 2 is not supported (this build reads version 1)"
    );
    // A future major may change the shape entirely: still a version error, not a JSON error.
    let err =
        Record::from_ndjson_line(br#"{"v": 7, "completely": "different"}"#).expect_err("refused");
    assert_eq!(err, DecodeError::Version { found: 7 });
}

#[test]
fn oversize_bad_json_and_invalid_ids_are_refused() {
    let huge = vec![b'x'; MAX_LINE_BYTES + 1];
    let err = Record::from_ndjson_line(&huge).expect_err("too long");
    assert_eq!(
        err,
        DecodeError::TooLong {
            len: MAX_LINE_BYTES + 1
        }
    );
    assert!(err.to_string().contains("4096"));

    for bad in [
        &b"not json"[..],
        b"{}",
        b"",
        b"\xff\xfe",
        b"[1]",
        br#"{"v":1}"#,
    ] {
        assert!(
            matches!(Record::from_ndjson_line(bad), Err(DecodeError::Json(_))),
            "{bad:?}"
        );
    }

    let with = |field: &str, value: serde_json::Value| {
        let mut json: serde_json::Value =
            serde_json::from_slice(&Record::example_full(1).to_ndjson_line()).expect("json");
        json[field] = value;
        Record::from_ndjson_line(&line_of(&json.to_string()))
    };
    let invalid = |field: &str, value: serde_json::Value| match with(field, value) {
        Err(DecodeError::InvalidField { field: f, .. }) => f.to_string(),
        other => panic!("expected an invalid-field error, got {other:?}"),
    };
    assert_eq!(
        invalid("trace_id", "00000000000000000000000000000000".into()),
        "trace_id"
    );
    assert_eq!(
        invalid("trace_id", "4BF92F3577B34DA6A3CE929D0E0E4736".into()),
        "trace_id"
    );
    assert_eq!(invalid("span_id", "short".into()), "span_id");
    assert_eq!(
        invalid("parent_span_id", "0000000000000000".into()),
        "parent_span_id"
    );
    assert_eq!(invalid("request_id", "".into()), "request_id");
    assert_eq!(invalid("request_id", "a\nb".into()), "request_id");
    assert_eq!(invalid("method", "get".into()), "method");
    assert_eq!(invalid("endpoint", "".into()), "endpoint");
    assert_eq!(invalid("status", 42.into()), "status");
    assert!(with("method", "_OTHER".into()).is_ok());
}

#[test]
fn oversized_records_shrink_to_fit_and_never_exceed_the_cap() {
    let mut record = Record::example_full(1);
    record.user_agent = Some("u".repeat(5000));
    let line = record.to_ndjson_line();
    assert!(line.len() <= MAX_LINE_BYTES);
    let decoded = Record::from_ndjson_line(&line).expect("decodes");
    assert_eq!(decoded.user_agent, None, "the optional field went first");
    assert_eq!(decoded.request_id, record.request_id);
    assert_eq!(decoded.counters, record.counters);

    // Every string hostile and huge: the line is still bounded, one line, valid JSON.
    let mut monster = Record::example_full(1);
    let control = "\u{1}".repeat(50_000);
    monster.request_id.clone_from(&control);
    monster.endpoint.clone_from(&control);
    monster.service = "\u{10ffff}".repeat(50_000);
    monster.method.clone_from(&control);
    monster.host = Some(control.clone());
    monster.session = Some(Session {
        id: control.clone(),
        event: SessionEvent::Seen,
    });
    monster.counters = vec![control; 1000];
    let line = monster.to_ndjson_line();
    assert!(
        !line.is_empty() && line.len() <= MAX_LINE_BYTES,
        "{}",
        line.len()
    );
    assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
    serde_json::from_slice::<serde_json::Value>(&line).expect("still valid JSON");
}

#[test]
fn mcp_facts_and_status_source_round_trip_and_unbounded_values_are_refused() {
    use gatetrace_core::mcp::StatusSource;
    use gatetrace_core::mcp::facts::McpFacts;

    let record = Record {
        status_source: Some(StatusSource::Implied),
        mcp: Some(McpFacts {
            method: Some("tools/call".into()),
            tool: Some("search".to_string()),
            error_code: Some(-32602),
            ..McpFacts::default()
        }),
        ..Record::example(3)
    };
    let line = record.to_ndjson_line();
    assert_eq!(Record::from_ndjson_line(&line), Ok(record.clone()));

    let refused = |edit: &dyn Fn(&mut Record), field: &str| {
        let mut bad = record.clone();
        edit(&mut bad);
        match Record::from_ndjson_line(&bad.to_ndjson_line()) {
            Err(DecodeError::InvalidField { field: got, .. }) => assert_eq!(got, field),
            other => panic!("{field}: expected InvalidField, got {other:?}"),
        }
    };
    let mcp = |r: &mut Record| r.mcp.as_mut().expect("mcp").clone();
    refused(
        &|r| {
            r.mcp = Some(McpFacts {
                method: Some("x/unbounded".into()),
                ..mcp(r)
            });
        },
        "mcp.method",
    );
    refused(
        &|r| {
            r.mcp = Some(McpFacts {
                tool: Some("t".repeat(129)),
                ..mcp(r)
            });
        },
        "mcp.tool",
    );
    refused(
        &|r| {
            r.mcp = Some(McpFacts {
                protocol_version: Some("1999-01-01".into()),
                ..mcp(r)
            });
        },
        "mcp.protocol_version",
    );
    refused(
        &|r| {
            r.mcp = Some(McpFacts {
                resource_hash: Some("file:///raw".into()),
                ..mcp(r)
            });
        },
        "mcp.resource_hash",
    );
    refused(&|r| r.status = None, "status_source");
}

#[test]
fn drops_are_added_to_an_encoded_line_without_decoding_it() {
    use gatetrace_core::record::add_dropped;
    for mut record in [Record::example(3), Record::example_full(4)] {
        for earlier in [0, 3] {
            record.dropped = earlier;
            let line = record.to_ndjson_line();
            let out = add_dropped(&line, 7).expect("an encoded record");
            // Byte-equal to the encoder's own line with the sum.
            record.dropped = earlier + 7;
            assert_eq!(out, record.to_ndjson_line());
            assert_eq!(
                Record::from_ndjson_line(&out).expect("valid").dropped,
                earlier + 7
            );
        }
    }
    let line = Record::example(1).to_ndjson_line();
    assert_eq!(
        add_dropped(&line, 0).as_deref(),
        Some(&line[..]),
        "nothing to add"
    );
    for bad in [&b"not json\n"[..], b"{}", b"", b"}\n"] {
        assert_eq!(add_dropped(bad, 1), None, "{bad:?}");
    }
    // A line at the cap cannot take the field.
    let mut at_cap = b"{\"x\":\"".to_vec();
    at_cap.resize(MAX_LINE_BYTES - 3, b'a');
    at_cap.extend_from_slice(b"\"}\n");
    assert_eq!(at_cap.len(), MAX_LINE_BYTES);
    assert_eq!(add_dropped(&at_cap, 1), None);
}
