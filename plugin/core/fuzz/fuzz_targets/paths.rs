//! Fuzzes endpoint labelling: any target gives a bounded, printable ASCII label without a
//! query string, with and without templates; method normalisation never fails.
#![no_main]

use gatetrace_core::route::{EndpointLimits, Method, RoutePattern, endpoint, strip_query};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let templates = [
        RoutePattern::parse("/register/{client_id}").expect("valid"),
        RoutePattern::parse("/static/*").expect("valid"),
    ];
    let depth = usize::from(data.first().copied().unwrap_or(8) % 33).max(1);
    let length = usize::from(data.get(1).copied().unwrap_or(128)).max(16);
    let limits = EndpointLimits { max_depth: depth, max_length: length };
    let target = data.get(2..).unwrap_or_default();
    // Configured templates are the operator's own labels, so only computed labels are capped.
    let templated = endpoint(target, &templates, limits);
    assert!(templates.iter().any(|t| t.template() == templated) || templated.len() <= length);
    for label in [templated, endpoint(target, &[], limits)] {
        assert!(!label.is_empty());
        assert!(label.len() <= length.max(21), "{label}");
        assert!(label.bytes().all(|b| (0x21..0x7f).contains(&b)), "{label:?}");
        assert!(!label.contains('?') && !label.contains('#'));
    }
    assert!(!strip_query(target).contains(&b'?'));
    let method = Method::from_bytes(target).as_str();
    assert_eq!(Method::from_bytes(method.as_bytes()).as_str(), method);
    if let Ok(text) = std::str::from_utf8(target)
        && let Ok(pattern) = RoutePattern::parse(text)
    {
        assert!(endpoint(text.as_bytes(), &[pattern.clone()], limits).len() <= 256);
        assert_eq!(pattern.template(), text);
    }
});
