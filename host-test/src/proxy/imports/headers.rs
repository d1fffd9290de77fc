//! Header maps: request and response headers and trailers, the call response's headers and
//! trailers, in the 0.2.1 pair serialization.

use gatetrace_abi::proxy_wasm::{HOST_MODULE, MapType, deserialize_pairs, serialize_pairs};
use wasmtime::{Linker, Result};

use super::common::{BAD_ARGUMENT, C, NOT_FOUND, OK, give};
use crate::guest::{read, read_str, write_u32};
use crate::headers::Headers;
use crate::proxy::state::ProxyState;

/// Header pairs from the wire as a header list (names and values as lossy UTF-8).
pub(super) fn headers_of(pairs: Vec<(&[u8], &[u8])>) -> Headers {
    Headers::from_pairs(pairs.into_iter().map(|(k, v)| {
        (
            String::from_utf8_lossy(k).into_owned(),
            String::from_utf8_lossy(v).into_owned(),
        )
    }))
}

/// The header map `map_type` names in the current context, if it exists there.
fn map_mut(state: &mut ProxyState, map_type: i32) -> Option<&mut Headers> {
    let map_type = MapType::from_abi(map_type)?;
    if let MapType::HttpCallResponseHeaders | MapType::HttpCallResponseTrailers = map_type {
        let reply = state.reply.as_mut()?;
        return Some(if map_type == MapType::HttpCallResponseHeaders {
            &mut reply.headers
        } else {
            &mut reply.trailers
        });
    }
    let s = state.stream_mut()?;
    let responded = s.response_code.is_some();
    match map_type {
        MapType::HttpRequestHeaders => Some(&mut s.request_headers),
        MapType::HttpRequestTrailers => Some(&mut s.request_trailers),
        MapType::HttpResponseHeaders if responded => Some(&mut s.response_headers),
        MapType::HttpResponseTrailers if responded => Some(&mut s.response_trailers),
        _ => None,
    }
}

pub(super) fn link(linker: &mut Linker<ProxyState>) -> Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        "proxy_get_header_map_pairs",
        |mut c: C<'_>, map: i32, ptr_ptr: i32, size_ptr: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_get_header_map_pairs");
            let bytes = map_mut(c.data_mut(), map).map_or_else(
                || serialize_pairs::<&str, &str>(&[]),
                |h| serialize_pairs(h.pairs()),
            );
            give(&mut c, &bytes, ptr_ptr, size_ptr)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "proxy_get_header_map_size",
        |mut c: C<'_>, map: i32, size_ptr: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_get_header_map_size");
            let size = map_mut(c.data_mut(), map).map_or(4, |h| serialize_pairs(h.pairs()).len());
            write_u32(&mut c, size_ptr, size as u32)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "proxy_set_header_map_pairs",
        |mut c: C<'_>, map: i32, ptr: i32, len: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_set_header_map_pairs");
            let bytes = read(&mut c, ptr, len)?;
            let Some(parsed) = deserialize_pairs(&bytes).map(headers_of) else {
                return Ok(BAD_ARGUMENT);
            };
            let Some(h) = map_mut(c.data_mut(), map) else {
                return Ok(BAD_ARGUMENT);
            };
            *h = parsed;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "proxy_get_header_map_value",
        |mut c: C<'_>,
         map: i32,
         key: i32,
         key_len: i32,
         ptr_ptr: i32,
         size_ptr: i32|
         -> Result<i32> {
            c.data_mut().calls.hit("proxy_get_header_map_value");
            let key = read_str(&mut c, key, key_len)?;
            let Some(value) =
                map_mut(c.data_mut(), map).and_then(|h| h.get(&key).map(str::to_owned))
            else {
                return Ok(NOT_FOUND);
            };
            give(&mut c, value.as_bytes(), ptr_ptr, size_ptr)?;
            Ok(OK)
        },
    )?;
    for (name, op) in [
        ("proxy_add_header_map_value", 0),
        ("proxy_replace_header_map_value", 1),
    ] {
        linker.func_wrap(
            HOST_MODULE,
            name,
            move |mut c: C<'_>,
                  map: i32,
                  key: i32,
                  key_len: i32,
                  value: i32,
                  value_len: i32|
                  -> Result<i32> {
                c.data_mut().calls.hit(name);
                let key = read_str(&mut c, key, key_len)?;
                let value = read_str(&mut c, value, value_len)?;
                let Some(h) = map_mut(c.data_mut(), map) else {
                    return Ok(BAD_ARGUMENT);
                };
                if op == 0 {
                    h.add(&key.to_ascii_lowercase(), &value);
                } else {
                    h.set(&key.to_ascii_lowercase(), &value);
                }
                Ok(OK)
            },
        )?;
    }
    linker.func_wrap(
        HOST_MODULE,
        "proxy_remove_header_map_value",
        |mut c: C<'_>, map: i32, key: i32, key_len: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_remove_header_map_value");
            let key = read_str(&mut c, key, key_len)?;
            let Some(h) = map_mut(c.data_mut(), map) else {
                return Ok(BAD_ARGUMENT);
            };
            h.remove(&key);
            Ok(OK)
        },
    )?;
    Ok(())
}
