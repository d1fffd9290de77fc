//! The W3C Trace Context `tracestate` cases, as a gateway applies them to the request it
//! passes upstream: inherited with a valid `traceparent`, combined across header lines,
//! dropped whole when invalid (33 members, a 257-character key, a key starting with `@`, an
//! illegal value), duplicates passed on. The cases are the standard's (Trace Context Level 2
//! and its test suite's `tracestate` tests); header-name case folding is the host's job.

use gatetrace_core::config::Config;
use gatetrace_core::exchange::{Exchange, RequestHead, TracestateAction};
use gatetrace_core::ids::Instance;

const TRACEPARENT: &str = "00-12345678901234567890123456789012-1234567890123456-00";

/// What the gateway does upstream with `tracestate` for these request headers.
fn upstream_tracestate(headers: &[(&str, &str)]) -> Action {
    let config = Config::default();
    let mut instance = Instance::new(&[7]);
    let head = RequestHead {
        method: b"POST",
        path_and_query: b"/test",
        authority: None,
        client_addr: None,
    };
    let mut request: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| ((*n).to_string(), v.as_bytes().to_vec()))
        .collect();
    let exchange = Exchange::begin(&config, &mut instance, &head, &mut request, 1, &[]);
    match exchange.upstream(&config).tracestate {
        TracestateAction::Keep => Action::Keep,
        TracestateAction::Set(value) => Action::Set(value.to_string()),
        TracestateAction::Remove => Action::Remove,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Action {
    Keep,
    Set(String),
    Remove,
}

fn with_parent<'a>(tracestates: &[&'a str]) -> Vec<(&'static str, &'a str)> {
    let mut headers = vec![("traceparent", TRACEPARENT)];
    headers.extend(tracestates.iter().map(|v| ("tracestate", *v)));
    headers
}

fn set(value: &str) -> Action {
    Action::Set(value.to_string())
}

#[test]
fn inherited_only_with_a_valid_traceparent() {
    assert_eq!(
        upstream_tracestate(&[("tracestate", "foo=1")]),
        Action::Remove
    );
    assert_eq!(
        upstream_tracestate(&[("tracestate", "foo=1,bar=2")]),
        Action::Remove
    );
    assert_eq!(
        upstream_tracestate(&with_parent(&["foo=1,bar=2"])),
        Action::Keep
    );
    assert_eq!(
        upstream_tracestate(&[("traceparent", TRACEPARENT), ("trace-state", "foo=1")]),
        Action::Keep,
        "another header name is not tracestate: nothing to do"
    );
}

#[test]
fn empty_and_combined_headers() {
    assert_eq!(
        upstream_tracestate(&with_parent(&[""])),
        Action::Keep,
        "an empty header passes nothing on; left as it is"
    );
    assert_eq!(
        upstream_tracestate(&with_parent(&["foo=1", ""])),
        set("foo=1")
    );
    assert_eq!(
        upstream_tracestate(&with_parent(&["", "foo=1"])),
        set("foo=1")
    );
    assert_eq!(
        upstream_tracestate(&with_parent(&["foo=1,bar=2", "rojo=1,congo=2", "baz=3"])),
        set("foo=1,bar=2,rojo=1,congo=2,baz=3")
    );
    assert_eq!(
        upstream_tracestate(&with_parent(&["foo=1 \t , \t bar=2, \t baz=3"])),
        set("foo=1,bar=2,baz=3")
    );
    assert_eq!(
        upstream_tracestate(&with_parent(&["\t foo=1 \t"])),
        set("foo=1")
    );
}

#[test]
fn duplicated_keys_are_passed_on() {
    assert_eq!(
        upstream_tracestate(&with_parent(&["foo=1,foo=1"])),
        Action::Keep
    );
    assert_eq!(
        upstream_tracestate(&with_parent(&["foo=1,foo=2"])),
        Action::Keep
    );
    assert_eq!(
        upstream_tracestate(&with_parent(&["foo=1", "foo=1"])),
        set("foo=1,foo=1")
    );
    assert_eq!(
        upstream_tracestate(&with_parent(&["foo=1", "foo=2"])),
        set("foo=1,foo=2")
    );
}

#[test]
fn member_count_limit() {
    let lines = |n: usize| -> Vec<String> {
        let members: Vec<String> = (1..=n).map(|i| format!("bar{i:02}={i:02}")).collect();
        members.chunks(10).map(|c| c.join(",")).collect()
    };
    let thirty_two = lines(32);
    let refs: Vec<&str> = thirty_two.iter().map(String::as_str).collect();
    assert_eq!(
        upstream_tracestate(&with_parent(&refs)),
        Action::Set(thirty_two.join(","))
    );
    let thirty_three = lines(33);
    let refs: Vec<&str> = thirty_three.iter().map(String::as_str).collect();
    assert_eq!(upstream_tracestate(&with_parent(&refs)), Action::Remove);
}

#[test]
fn keys_and_values() {
    let key_256 = format!("{}=1", "z".repeat(256));
    let tenant_241 = format!("{}@{}=1", "t".repeat(241), "v".repeat(14));
    let tenant_242 = format!("{}@v=1", "t".repeat(242));
    let system_15 = format!("t@{}=1", "v".repeat(15));
    for member in [&key_256, &tenant_241, &tenant_242, &system_15] {
        assert_eq!(
            upstream_tracestate(&with_parent(&["foo=1", member])),
            set(&format!("foo=1,{member}")),
            "{member}"
        );
    }
    let key_257 = format!("{}=1", "z".repeat(257));
    assert_eq!(
        upstream_tracestate(&with_parent(&["foo=1", &key_257])),
        Action::Remove
    );
    for keep in ["foo@=1,bar=2", "foo@@bar=1,bar=2", "foo@bar@baz=1,bar=2"] {
        assert_eq!(
            upstream_tracestate(&with_parent(&[keep])),
            Action::Keep,
            "{keep}"
        );
    }
    for drop in [
        "@foo=1,bar=2",
        "foo =1",
        "FOO=1",
        "foo.bar=1",
        "foo=bar=baz",
        "foo=,bar=3",
    ] {
        assert_eq!(
            upstream_tracestate(&with_parent(&[drop])),
            Action::Remove,
            "{drop}"
        );
    }
    let key: String = ('a'..='z').chain('0'..='9').chain("_-*/".chars()).collect();
    let value: String = (0x20u8..=0x2b)
        .chain(0x2d..=0x3c)
        .chain(0x3e..=0x7e)
        .map(char::from)
        .collect();
    for member in [
        format!("{key}={value}"),
        format!("{key}@a-z0-9_-*/={value}"),
    ] {
        assert_eq!(upstream_tracestate(&with_parent(&[&member])), Action::Keep);
    }
}
