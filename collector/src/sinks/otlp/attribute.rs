//! OTLP span attributes, built from a key and a string or integer value.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

/// A string attribute.
pub(super) fn string(key: &str, value: &str) -> KeyValue {
    attribute(key, Value::StringValue(value.to_owned()))
}

/// An integer attribute.
pub(super) fn int(key: &str, value: i64) -> KeyValue {
    attribute(key, Value::IntValue(value))
}

pub(super) fn attribute(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        // The profiles signal's string-table index; unused in traces.
        key_strindex: 0,
    }
}
