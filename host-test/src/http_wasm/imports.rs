//! The `http_handler` imports as http-wasm-host-go 0.7 (Traefik 3.7) answers them, by area:
//! features, config and logging; the request line; headers; bodies; the status. Where
//! Traefik would ignore a call, panic or fail, the host records a warning, a violation or a
//! trap instead.

use std::sync::Arc;

use gatetrace_abi::http_wasm::{
    BodyKind, Features, HOST_MODULE, HeaderKind, LogLevel, pack_count_len, pack_eof_len,
};
use wasmtime::{Caller, Linker, Result, bail};

use super::state::{HttpState, Phase, ReqState};
use crate::guest::{read, read_str, write};
use crate::headers::Headers;

type C<'a> = Caller<'a, HttpState>;

/// Links every `http_handler` function.
pub(super) fn link(linker: &mut Linker<HttpState>) -> Result<()> {
    link_features_config_log(linker)?;
    link_request_line(linker)?;
    link_headers(linker)?;
    link_bodies(linker)?;
    link_status(linker)
}

/// Writes `bytes` if they fit in `limit`; returns the full length either way.
fn write_limited(caller: &mut C<'_>, buf: i32, limit: i32, bytes: &[u8]) -> Result<i32> {
    if bytes.len() <= limit as u32 as usize {
        write(caller, buf, bytes)?;
    }
    Ok(bytes.len() as i32)
}

/// NUL-terminated values, and their count packed as `count << 32 | len`.
fn write_multi(caller: &mut C<'_>, buf: i32, limit: i32, values: &[&str]) -> Result<i64> {
    let mut joined = Vec::new();
    for v in values {
        joined.extend_from_slice(v.as_bytes());
        joined.push(0);
    }
    let len = write_limited(caller, buf, limit, &joined)?;
    Ok(pack_count_len(values.len() as u32, len as u32))
}

fn header_kind(kind: i32) -> Result<HeaderKind> {
    match HeaderKind::from_abi(kind) {
        Some(kind) => Ok(kind),
        None => bail!("unknown header kind {kind}"),
    }
}

/// Applies a header change, or records that Traefik would drop it.
fn change_header(
    caller: &mut C<'_>,
    call: &'static str,
    kind: i32,
    edit: impl FnOnce(&mut Headers),
) -> Result<()> {
    let kind = header_kind(kind)?;
    let state = caller.data_mut();
    let r = state.req(call)?;
    if kind == HeaderKind::Response && r.response_frozen() {
        state.warnings.push(format!(
            "{call}(response) after next without buffer_response: headers are already sent, Traefik ignores it"
        ));
        return Ok(());
    }
    if kind == HeaderKind::Request && r.phase == Phase::Response {
        state.warnings.push(format!(
            "{call}(request) after next: the request already left"
        ));
        return Ok(());
    }
    edit(r.headers_mut(kind));
    Ok(())
}

/// Whether a line at ABI `level` passes the host's level (`none` never does).
fn log_enabled(state: &HttpState, level: i32) -> bool {
    level >= state.log_level && level < LogLevel::None as i32
}

fn link_features_config_log(linker: &mut Linker<HttpState>) -> Result<()> {
    linker.func_wrap(HOST_MODULE, "enable_features", |mut c: C<'_>, features: i32| -> Result<i32> {
        let state = c.data_mut();
        state.calls.hit("enable_features");
        let features = Features::from_abi(features);
        let enabled = match state.req.as_mut() {
            None => {
                state.default_features = state.default_features.union(features);
                state.default_features
            }
            Some(r) if r.phase == Phase::Request => {
                r.features = r.features.union(features);
                r.features
            }
            Some(r) => {
                if !r.features.contains(features) {
                    state.warnings.push(format!(
                        "enable_features({}) in handle_response is too late: the response is already flowing",
                        features.0
                    ));
                }
                r.features
            }
        };
        Ok(enabled.to_abi())
    })?;
    linker.func_wrap(
        HOST_MODULE,
        "get_config",
        |mut c: C<'_>, buf: i32, limit: i32| -> Result<i32> {
            c.data_mut().calls.hit("get_config");
            let config = Arc::clone(&c.data().config);
            write_limited(&mut c, buf, limit, &config)
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "log_enabled",
        |mut c: C<'_>, level: i32| -> i32 {
            let state = c.data_mut();
            state.calls.hit("log_enabled");
            i32::from(log_enabled(state, level))
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "log",
        |mut c: C<'_>, level: i32, ptr: i32, len: i32| {
            c.data_mut().calls.hit("log");
            // Traefik ignores log failures, so a bad pointer drops the line instead of trapping.
            let Ok(message) = read_str(&mut c, ptr, len) else {
                return;
            };
            let state = c.data_mut();
            if log_enabled(state, level) {
                let level = LogLevel::from_abi(level).map_or("error", LogLevel::name);
                state.logs.push(crate::LogLine { level, message });
            }
        },
    )?;
    Ok(())
}

/// A request-line getter: `field` of the request in flight, by the `buf_limit` protocol.
fn link_getter(
    linker: &mut Linker<HttpState>,
    call: &'static str,
    field: fn(&ReqState) -> String,
) -> Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        call,
        move |mut c: C<'_>, buf: i32, limit: i32| -> Result<i32> {
            let state = c.data_mut();
            state.calls.hit(call);
            let value = field(state.req(call)?);
            write_limited(&mut c, buf, limit, value.as_bytes())
        },
    )?;
    Ok(())
}

/// A request-line setter: replaces `field` of the request in flight.
fn link_setter(
    linker: &mut Linker<HttpState>,
    call: &'static str,
    field: fn(&mut ReqState) -> &mut String,
) -> Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        call,
        move |mut c: C<'_>, ptr: i32, len: i32| -> Result<()> {
            c.data_mut().calls.hit(call);
            let value = read_str(&mut c, ptr, len)?;
            *field(c.data_mut().req(call)?) = value;
            Ok(())
        },
    )?;
    Ok(())
}

fn link_request_line(linker: &mut Linker<HttpState>) -> Result<()> {
    link_getter(linker, "get_method", |r| r.method.clone())?;
    link_setter(linker, "set_method", |r| &mut r.method)?;
    link_getter(linker, "get_uri", |r| {
        if r.uri.is_empty() {
            "/".to_owned()
        } else {
            r.uri.clone()
        }
    })?;
    link_setter(linker, "set_uri", |r| &mut r.uri)?;
    link_getter(linker, "get_protocol_version", |r| r.protocol.clone())?;
    link_getter(linker, "get_source_addr", |r| r.source_addr.clone())
}

fn link_headers(linker: &mut Linker<HttpState>) -> Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        "get_header_names",
        |mut c: C<'_>, kind: i32, buf: i32, limit: i32| -> Result<i64> {
            let state = c.data_mut();
            state.calls.hit("get_header_names");
            let kind = header_kind(kind)?;
            let names = state.req("get_header_names")?.headers_mut(kind).names();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            write_multi(&mut c, buf, limit, &refs)
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "get_header_values",
        |mut c: C<'_>, kind: i32, name: i32, name_len: i32, buf: i32, limit: i32| -> Result<i64> {
            c.data_mut().calls.hit("get_header_values");
            let name = read_str(&mut c, name, name_len)?;
            let kind = header_kind(kind)?;
            let headers = c.data_mut().req("get_header_values")?.headers_mut(kind);
            let values: Vec<String> = headers
                .get_all(&name)
                .into_iter()
                .map(str::to_owned)
                .collect();
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            write_multi(&mut c, buf, limit, &refs)
        },
    )?;
    for (call, add) in [("set_header_value", false), ("add_header_value", true)] {
        linker.func_wrap(
            HOST_MODULE,
            call,
            move |mut c: C<'_>,
                  kind: i32,
                  name: i32,
                  name_len: i32,
                  value: i32,
                  value_len: i32|
                  -> Result<()> {
                c.data_mut().calls.hit(call);
                let name = read_str(&mut c, name, name_len)?;
                let value = read_str(&mut c, value, value_len)?;
                change_header(&mut c, call, kind, |h| {
                    if add {
                        h.add(&name, &value);
                    } else {
                        h.set(&name, &value);
                    }
                })
            },
        )?;
    }
    linker.func_wrap(
        HOST_MODULE,
        "remove_header",
        |mut c: C<'_>, kind: i32, name: i32, name_len: i32| -> Result<()> {
            c.data_mut().calls.hit("remove_header");
            let name = read_str(&mut c, name, name_len)?;
            change_header(&mut c, "remove_header", kind, |h| h.remove(&name))
        },
    )?;
    Ok(())
}

fn link_bodies(linker: &mut Linker<HttpState>) -> Result<()> {
    linker.func_wrap(HOST_MODULE, "read_body", |mut c: C<'_>, kind: i32, buf: i32, limit: i32| -> Result<i64> {
        let state = c.data_mut();
        state.calls.hit("read_body");
        if limit <= 0 {
            bail!("read_body with buf_limit {limit}: http-wasm-host-go panics");
        }
        let r = state.req("read_body")?;
        let (body, offset) = match BodyKind::from_abi(kind) {
            Some(BodyKind::Request) => {
                let (chunk, eof) = r.read_request_body(limit as usize);
                write(&mut c, buf, &chunk)?;
                return Ok(pack_eof_len(eof, chunk.len() as u32));
            }
            Some(BodyKind::Response) => {
                if r.response_frozen() {
                    let v = "read_body(response) after next without buffer_response: there is no buffered body (Traefik would panic here)".to_owned();
                    state.violation = Some(v.clone());
                    bail!(v);
                }
                (&r.resp_body, &mut r.resp_read)
            }
            None => bail!("read_body: unknown body kind {kind}"),
        };
        let end = (*offset + limit as usize).min(body.len());
        let chunk = body[*offset..end].to_vec();
        *offset = end;
        let eof = end == body.len();
        write(&mut c, buf, &chunk)?;
        Ok(pack_eof_len(eof, chunk.len() as u32))
    })?;
    linker.func_wrap(HOST_MODULE, "write_body", |mut c: C<'_>, kind: i32, ptr: i32, len: i32| -> Result<()> {
        c.data_mut().calls.hit("write_body");
        let bytes = read(&mut c, ptr, len)?;
        let state = c.data_mut();
        let r = state.req("write_body")?;
        match BodyKind::from_abi(kind) {
            Some(BodyKind::Request) => {
                if !r.req_written {
                    r.req_body.clear();
                    r.req_written = true;
                }
                r.req_body.extend_from_slice(&bytes);
            }
            Some(BodyKind::Response) => {
                if r.response_frozen() {
                    r.resp_body.extend_from_slice(&bytes);
                    state.warnings.push(
                        "write_body(response) after next without buffer_response appends to the body already sent".into(),
                    );
                } else {
                    if !r.resp_written {
                        r.resp_body.clear();
                        r.resp_written = true;
                    }
                    r.resp_body.extend_from_slice(&bytes);
                }
            }
            None => bail!("write_body: unknown body kind {kind}"),
        }
        Ok(())
    })?;
    Ok(())
}

fn link_status(linker: &mut Linker<HttpState>) -> Result<()> {
    linker.func_wrap(HOST_MODULE, "get_status_code", |mut c: C<'_>| -> Result<i32> {
        let state = c.data_mut();
        state.calls.hit("get_status_code");
        let r = state.req("get_status_code")?;
        if r.response_frozen() {
            let v = "get_status_code in handle_response without buffer_response: Traefik would panic here (unchecked type assertion in http-wasm-host-go)".to_owned();
            state.violation = Some(v.clone());
            bail!(v);
        }
        Ok(i32::from(r.status))
    })?;
    linker.func_wrap(HOST_MODULE, "set_status_code", |mut c: C<'_>, status: i32| -> Result<()> {
        let state = c.data_mut();
        state.calls.hit("set_status_code");
        let r = state.req("set_status_code")?;
        if r.response_frozen() {
            state.warnings.push(
                "set_status_code after next without buffer_response: the status is already sent, Traefik ignores it".into(),
            );
        } else {
            r.status = status as u16;
        }
        Ok(())
    })?;
    Ok(())
}
