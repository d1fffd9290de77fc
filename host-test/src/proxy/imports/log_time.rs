//! Logging and time: `proxy_log`, the log level, the wall clock and the tick period.

use gatetrace_abi::proxy_wasm::{HOST_MODULE, LogLevel};
use wasmtime::{Linker, Result};

use super::common::{C, OK, kong_nyi};
use crate::guest::{read_str, write_u32, write_u64};
use crate::proxy::state::ProxyState;

pub(super) fn link(linker: &mut Linker<ProxyState>) -> Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        "proxy_log",
        |mut c: C<'_>, level: i32, ptr: i32, len: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_log");
            let message = read_str(&mut c, ptr, len)?;
            c.data_mut().logs.push(crate::LogLine {
                level: LogLevel::from_abi(level).map_or("critical", LogLevel::name),
                message,
            });
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "proxy_get_log_level",
        |mut c: C<'_>, ret: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_get_log_level");
            kong_nyi(&mut c, "proxy_get_log_level")?;
            let level = c.data().log_level;
            write_u32(&mut c, ret, level)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "proxy_get_current_time_nanoseconds",
        |mut c: C<'_>, ret: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_get_current_time_nanoseconds");
            let now = c.data().clock.now_nanos();
            write_u64(&mut c, ret, now)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "proxy_set_tick_period_milliseconds",
        |mut c: C<'_>, period: i32| -> i32 {
            let state = c.data_mut();
            state.calls.hit("proxy_set_tick_period_milliseconds");
            state.tick_period_ms = period as u32;
            OK
        },
    )?;
    Ok(())
}
