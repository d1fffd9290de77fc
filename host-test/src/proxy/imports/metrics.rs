//! Metrics: counters, gauges and histograms the guest defines, records and reads.

use gatetrace_abi::proxy_wasm::{HOST_MODULE, MetricType};
use wasmtime::{Linker, Result};

use super::common::{BAD_ARGUMENT, C, NOT_FOUND, OK};
use crate::guest::{read_str, write_u32, write_u64};
use crate::proxy::report::Metric;
use crate::proxy::state::ProxyState;

const COUNTER: u32 = MetricType::Counter as u32;
const HISTOGRAM: u32 = MetricType::Histogram as u32;

pub(super) fn link(linker: &mut Linker<ProxyState>) -> Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        "proxy_define_metric",
        |mut c: C<'_>, kind: i32, name: i32, name_len: i32, ret: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_define_metric");
            if MetricType::from_abi(kind).is_none() {
                return Ok(BAD_ARGUMENT);
            }
            let name = read_str(&mut c, name, name_len)?;
            let state = c.data_mut();
            let id = match state.metrics.iter().position(|m| m.name == name) {
                Some(i) => i + 1,
                None => {
                    state.metrics.push(Metric {
                        name,
                        kind: kind as u32,
                        value: 0,
                    });
                    state.metrics.len()
                }
            };
            write_u32(&mut c, ret, id as u32)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "proxy_record_metric",
        |mut c: C<'_>, id: i32, value: i64| -> i32 {
            let state = c.data_mut();
            state.calls.hit("proxy_record_metric");
            match (id as usize)
                .checked_sub(1)
                .and_then(|i| state.metrics.get_mut(i))
            {
                Some(m) => {
                    m.value = value;
                    OK
                }
                None => NOT_FOUND,
            }
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "proxy_increment_metric",
        |mut c: C<'_>, id: i32, delta: i64| -> i32 {
            let state = c.data_mut();
            state.calls.hit("proxy_increment_metric");
            match (id as usize)
                .checked_sub(1)
                .and_then(|i| state.metrics.get_mut(i))
            {
                Some(m) if m.kind == HISTOGRAM || (m.kind == COUNTER && delta < 0) => BAD_ARGUMENT,
                Some(m) => {
                    m.value += delta;
                    OK
                }
                None => NOT_FOUND,
            }
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "proxy_get_metric",
        |mut c: C<'_>, id: i32, ret: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_get_metric");
            let metric = (id as usize)
                .checked_sub(1)
                .and_then(|i| c.data().metrics.get(i))
                .cloned();
            match metric {
                Some(m) if m.kind == HISTOGRAM => Ok(BAD_ARGUMENT),
                Some(m) => {
                    write_u64(&mut c, ret, m.value as u64)?;
                    Ok(OK)
                }
                None => Ok(NOT_FOUND),
            }
        },
    )?;
    Ok(())
}
