//! Config parsing: defaults, string scalars (Traefik's file provider), key-path errors,
//! list spellings, and hostile documents.

use gatetrace_core::classify::{SessionIdMode, StatusMatch, TokenMode};
use gatetrace_core::config::{BufferMode, Config, ConfigError};
use gatetrace_core::ids::RequestIdPolicy;
use gatetrace_core::route::Method;

fn error(json: &str) -> String {
    Config::from_json(json.as_bytes())
        .expect_err("config should be refused")
        .to_string()
}

#[test]
fn empty_config_gives_defaults() {
    for empty in ["{}", "", "  \n", "null"] {
        let config = Config::from_json(empty.as_bytes()).expect("empty config");
        assert_eq!(config, Config::default(), "{empty:?}");
    }
    let config = Config::default();
    assert_eq!(config.service, "gateway");
    assert_eq!(config.request_id_header, "x-request-id");
    assert_eq!(config.request_id_policy, RequestIdPolicy::Validate);
    assert_eq!(config.request_id_max_length, 128);
    assert!((config.sample_ratio - 1.0).abs() < f64::EPSILON);
    assert_eq!(config.buffer_responses, BufferMode::Auto);
    assert_eq!(config.session_id, SessionIdMode::Hash);
    assert!(!config.record_client_addr && !config.record_user_agent && !config.echo_request_id);
    assert!(!config.record_host && !config.record_response_size);
    assert_eq!(config.counters.len(), 1);
    assert_eq!(config.counters[0].name, "client_registrations");
    assert_eq!(config.counters[0].method, Some(Method::Post));
    assert_eq!(config.counters[0].status, Some(StatusMatch::Exact(201)));
    assert_eq!(config.token_rules[0].mode, TokenMode::Required);
    assert_eq!(config.spool.dir, "/spool");
    assert_eq!(config.collector.path, "/v1/records");
}

#[test]
fn string_scalars_are_accepted_like_traefik_sends_them() {
    let config = Config::from_json(
        br#"{
            "service": "mcp-gateway",
            "requestIdHeader": "X-Correlation-Id",
            "requestIdPolicy": "trust",
            "requestIdMaxLength": "64",
            "echoRequestId": "true",
            "sampleRatio": "0.5",
            "routes": ["/register/{client_id}", "/static/*"],
            "maxEndpointDepth": "4",
            "maxEndpointLength": "64",
            "bufferResponses": "never",
            "bufferRoutes": "/mcp, /other",
            "tokenDefault": "off",
            "tokenRules": [{"route": "/mcp/*", "mode": "optional"}],
            "counters": [{"name": "token_grants", "method": "POST", "route": "/token", "status": "2xx"}],
            "sessionId": "raw",
            "recordClientAddr": "TRUE",
            "recordUserAgent": "false",
            "recordHost": "true",
            "recordResponseSize": "TRUE",
            "spool": {"dir": "/var/spool/gt", "windowSecs": "5", "graceSecs": "2", "maxWindows": "10"},
            "collector": {"cluster": "c", "path": "/ingest", "authority": "col", "token": "s3cret",
                          "timeoutMs": "500", "batchSize": "10", "maxBatchBytes": "65536",
                          "queueCapacity": "100", "tickMs": "250", "maxRetries": "0"}
        }"#,
    )
    .expect("valid config");
    assert_eq!(config.service, "mcp-gateway");
    assert_eq!(config.request_id_header, "x-correlation-id");
    assert_eq!(config.request_id_policy, RequestIdPolicy::Trust);
    assert_eq!(config.request_id_max_length, 64);
    assert!(config.echo_request_id);
    assert!((config.sample_ratio - 0.5).abs() < f64::EPSILON);
    assert_eq!(config.routes.len(), 2);
    assert_eq!(config.routes[0].template(), "/register/{client_id}");
    assert_eq!(config.endpoint_limits.max_depth, 4);
    assert_eq!(config.endpoint_limits.max_length, 64);
    assert_eq!(config.buffer_responses, BufferMode::Never);
    assert_eq!(config.buffer_routes.len(), 2);
    assert_eq!(config.token_default, TokenMode::Off);
    assert_eq!(config.token_rules[0].mode, TokenMode::Optional);
    assert_eq!(config.counters[0].name, "token_grants");
    assert_eq!(config.counters[0].status, Some(StatusMatch::Class(2)));
    assert_eq!(config.session_id, SessionIdMode::Raw);
    assert!(config.record_client_addr && !config.record_user_agent);
    assert!(config.record_host && config.record_response_size);
    assert_eq!(config.spool.dir, "/var/spool/gt");
    assert_eq!(config.spool.layout.window_secs, 5);
    assert_eq!(config.spool.layout.grace_secs, 2);
    assert_eq!(config.spool.layout.max_windows, 10);
    assert_eq!(config.collector.cluster, "c");
    assert_eq!(config.collector.token.as_deref(), Some("s3cret"));
    assert_eq!(config.collector.timeout_ms, 500);
    assert_eq!(config.collector.batch_size, 10);
    assert_eq!(config.collector.max_batch_bytes, 65536);
    assert_eq!(config.collector.queue_capacity, 100);
    assert_eq!(config.collector.tick_ms, 250);
    assert_eq!(config.collector.max_retries, 0);
    assert!(
        !format!("{config:?}").contains("s3cret"),
        "the token never shows in Debug"
    );
}

#[test]
fn native_json_types_work_too() {
    let config = Config::from_json(
        br#"{"sampleRatio": 0, "echoRequestId": true, "requestIdMaxLength": 10,
             "counters": [{"name": "x", "status": 204}], "spool": {"windowSecs": 60}}"#,
    )
    .expect("valid");
    assert!(config.sample_ratio.abs() < f64::EPSILON);
    assert!(config.echo_request_id);
    assert_eq!(config.counters[0].status, Some(StatusMatch::Exact(204)));
    assert_eq!(config.counters[0].method, None);
    assert_eq!(config.spool.layout.window_secs, 60);
}

#[test]
fn errors_name_the_key_path_and_what_was_expected() {
    assert_eq!(
        error(r#"{"sampleRatio": "abc"}"#),
        r#"sampleRatio: expected a number between 0 and 1, got "abc""#
    );
    assert_eq!(
        error(r#"{"sampleRatio": 1.5}"#),
        "sampleRatio: expected a number between 0 and 1, got 1.5"
    );
    assert_eq!(
        error(r#"{"echoRequestId": "yes"}"#),
        r#"echoRequestId: expected true or false, got "yes""#
    );
    assert_eq!(
        error(r#"{"collector": {"timeoutMs": "-1"}}"#),
        r#"collector.timeoutMs: expected a whole number from 1 to 60000, got "-1""#
    );
    assert_eq!(
        error(r#"{"counters": [{"name": "a"}, {"name": "b", "status": "7xx"}]}"#),
        r#"counters[1].status: expected a status code (100-599) or class like "2xx", got "7xx""#
    );
    assert_eq!(
        error(r#"{"requestIdPolicy": "maybe"}"#),
        r#"requestIdPolicy: expected one of "trust", "replace", "validate", got "maybe""#
    );
    assert!(
        error(r#"{"routes": ["nope"]}"#)
            .starts_with("routes[0]: expected a route template starting with")
    );
    assert!(
        error(r#"{"tokenRules": [{"route": "/a"}]}"#)
            .starts_with("tokenRules[0].mode: expected a value")
    );
    assert!(
        error(r#"{"counters": [{"name": "Bad Name"}]}"#)
            .starts_with("counters[0].name: expected a name")
    );
    assert!(
        error(r#"{"requestIdHeader": "Authorization"}"#)
            .starts_with("requestIdHeader: expected a header name")
    );
    assert!(
        error(r#"{"spool": {"dir": "relative"}}"#).starts_with("spool.dir: expected an absolute")
    );
    assert!(error(r#"{"spool": 5}"#).starts_with("spool: expected an object, got 5"));
}

#[test]
fn unknown_keys_are_refused_at_every_level() {
    let top = error(r#"{"servce": "x"}"#);
    assert!(
        top.starts_with("servce: unknown key (expected one of: service, "),
        "{top}"
    );
    let nested = error(r#"{"spool": {"dirr": "/x"}}"#);
    assert!(
        nested.starts_with("spool.dirr: unknown key (expected one of: dir, windowSecs"),
        "{nested}"
    );
    let in_list = error(r#"{"tokenRules": [{"route": "/a", "mode": "off", "x": 1}]}"#);
    assert!(
        in_list.starts_with("tokenRules[0].x: unknown key"),
        "{in_list}"
    );
}

#[test]
fn lists_may_be_comma_strings_or_indexed_objects() {
    let from_string = Config::from_json(br#"{"routes": "/a/{id}, /b"}"#).expect("valid");
    let from_object =
        Config::from_json(br#"{"routes": {"1": "/b", "0": "/a/{id}"}}"#).expect("valid");
    let from_array = Config::from_json(br#"{"routes": ["/a/{id}", "/b"]}"#).expect("valid");
    assert_eq!(from_string, from_array);
    assert_eq!(from_object, from_array);
    assert!(error(r#"{"routes": {"x": "/b"}}"#).starts_with("routes: expected a list"));
    let empty_counters = Config::from_json(br#"{"counters": []}"#).expect("valid");
    assert!(empty_counters.counters.is_empty());
}

#[test]
fn secrets_never_appear_in_errors() {
    let message = error(r#"{"collector": {"token": "bad token with spaces"}}"#);
    assert!(!message.contains("bad token"), "{message}");
    assert!(message.starts_with("collector.token: expected"));
}

#[test]
fn hostile_documents_fail_cleanly() {
    let cases: Vec<Vec<u8>> = vec![
        b"[1,2]".to_vec(),
        b"\"str\"".to_vec(),
        b"{".to_vec(),
        b"\xff\xfe{}".to_vec(),
        b"{\"service\": \"\xff\"}".to_vec(),
        br#"{"service": "a\u0000b"}"#.to_vec(),
        format!(r#"{{"service": "{}"}}"#, "x".repeat(10_000)).into_bytes(),
        vec![b' '; 300 * 1024],
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
    ];
    for case in cases {
        let err: ConfigError = Config::from_json(&case).expect_err("refused");
        assert!(err.to_string().len() < 1024, "errors stay short: {err}");
    }
    let long_key = format!(r#"{{"{}": 1}}"#, "k".repeat(10_000));
    assert!(error(&long_key).len() < 1024);
}

#[test]
fn keys_match_case_insensitively() {
    let config = Config::from_json(br#"{"sampleratio": "0.25", "SPOOL": {"windowsecs": "7"}}"#)
        .expect("valid");
    assert!((config.sample_ratio - 0.25).abs() < f64::EPSILON);
    assert_eq!(config.spool.layout.window_secs, 7);
    assert!(error(r#"{"sampleratioo": 1}"#).starts_with("sampleratioo: unknown key"));
}

#[test]
fn mcp_keys_default_and_parse_from_traefik_strings() {
    use gatetrace_core::mcp::MessageKind;
    use gatetrace_core::mcp::policy::{BufferPolicy, Buffering};
    let config = Config::default();
    assert_eq!(config.mcp_routes.len(), 1);
    assert!(config.mcp_routes[0].matches(b"/mcp"));
    assert!(!config.mcp_routes[0].matches(b"/mcp/other"));
    assert_eq!(config.mcp_body_limit, 65536);
    assert!(config.mcp_server_streams);
    assert_eq!(config.mcp_buffer_policy, BufferPolicy::default());

    let config = Config::from_json(
        br#"{"mcpRoutes": "/mcp, /tenants/{tenant}/mcp", "mcpBodyLimit": "1024",
             "mcpServerStreams": "false", "mcpBufferMethods": "initialize, DELETE"}"#,
    )
    .expect("string scalars");
    assert!(config.mcp_routes[1].matches(b"/tenants/acme/mcp"));
    assert_eq!(config.mcp_body_limit, 1024);
    assert!(!config.mcp_server_streams);
    let decide = |kind, method| {
        config
            .mcp_buffer_policy
            .decide(Method::Post, Some(kind), Some(method), true)
    };
    assert_eq!(
        decide(MessageKind::Request, "initialize"),
        Buffering::Buffer
    );
    assert_eq!(
        decide(MessageKind::Request, "tools/list"),
        Buffering::PassThrough
    );
    assert_eq!(
        decide(MessageKind::Notification, "notifications/initialized"),
        Buffering::PassThrough
    );
    let native = Config::from_json(
        br#"{"mcpRoutes": ["/a"], "mcpBodyLimit": 0, "mcpServerStreams": true,
             "mcpBufferMethods": ["ping", "notifications"]}"#,
    )
    .expect("native types");
    assert_eq!(native.mcp_body_limit, 0);
}

#[test]
fn mcp_key_errors_name_the_key_and_the_value() {
    let e = error(r#"{"mcpBufferMethods": ["initialize", "tools/call"]}"#);
    assert!(
        e.contains("mcpBufferMethods[1]") && e.contains("tools/call"),
        "{e}"
    );
    let e = error(r#"{"mcpBufferMethods": "ping, tools/frobnicate"}"#);
    assert!(
        e.contains("mcpBufferMethods[1]") && e.contains("tools/frobnicate"),
        "{e}"
    );
    let e = error(r#"{"mcpBufferMethods": [7]}"#);
    assert!(e.contains("mcpBufferMethods[0]"), "{e}");
    let e = error(r#"{"mcpBodyLimit": "2000000"}"#);
    assert!(e.contains("mcpBodyLimit"), "{e}");
    let e = error(r#"{"mcpServerStreams": "maybe"}"#);
    assert!(e.contains("mcpServerStreams"), "{e}");
    let e = error(r#"{"mcpRoutes": ["no-slash"]}"#);
    assert!(e.contains("mcpRoutes[0]"), "{e}");
}
