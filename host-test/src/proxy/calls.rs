//! Calls the guest dispatched (`proxy_http_call`) and time: answering, failing or timing out
//! a call on the context that dispatched it, ticks, and the harness clock moving forward.

use std::time::Duration;

use wasmtime::Val;

use super::host::ProxyHost;
use super::report::{CallResponse, CallState};
use super::state::{CallReply, Life, Step};
use super::stream::response_map;
use crate::headers::Headers;
use crate::wasi::VirtualClock;

impl ProxyHost {
    /// Delivers a dispatched call's answer to the context that dispatched it.
    ///
    /// # Errors
    /// Unknown id, a call no longer pending, or a trap in `proxy_on_http_call_response`.
    pub fn respond_call(&mut self, id: u32, response: &CallResponse) -> anyhow::Result<()> {
        let headers = response_map(response.status, &response.headers);
        self.deliver(
            id,
            CallState::Answered(response.status),
            Some(CallReply {
                headers,
                body: response.body.clone(),
                trailers: Headers::default(),
            }),
        )
    }

    /// Fails a dispatched call (`proxy_on_http_call_response` with no headers).
    ///
    /// # Errors
    /// As [`ProxyHost::respond_call`].
    pub fn fail_call(&mut self, id: u32, reason: &str) -> anyhow::Result<()> {
        self.deliver(id, CallState::Failed(reason.to_owned()), None)
    }

    fn deliver(
        &mut self,
        id: u32,
        outcome: CallState,
        reply: Option<CallReply>,
    ) -> anyhow::Result<()> {
        let state = self.store.data_mut();
        let Some(call) = state.dispatched.iter_mut().find(|c| c.id == id) else {
            anyhow::bail!("no dispatched call {id}");
        };
        anyhow::ensure!(
            call.state == CallState::Pending,
            "call {id} is already {:?}",
            call.state
        );
        let ctx = call.context_id;
        let alive = state
            .contexts
            .get(&ctx)
            .is_some_and(|c| c.life != Life::Deleted);
        if !alive {
            let why = format!(
                "context {ctx} that dispatched it is gone (the host cancels its calls; the SDK would drop the answer)"
            );
            call.state = CallState::Dropped(why.clone());
            state.warnings.push(format!("call {id}: {why}"));
            return Ok(());
        }
        call.state = outcome;
        let (n_headers, body_len, n_trailers) = reply.as_ref().map_or((0, 0, 0), |r| {
            (r.headers.len(), r.body.len(), r.trailers.len())
        });
        state.reply = reply;
        let args = [
            Val::I32(ctx as i32),
            Val::I32(id as i32),
            Val::I32(n_headers as i32),
            Val::I32(body_len as i32),
            Val::I32(n_trailers as i32),
        ];
        let result = self.invoke(
            Step::CallResponse,
            ctx,
            "proxy_on_http_call_response",
            &args,
        );
        self.store.data_mut().reply = None;
        self.pump();
        result.map(|_| ()).map_err(|e| anyhow::anyhow!(e))
    }

    /// Lets a call's timeout run out: the guest sees a failed call.
    ///
    /// # Errors
    /// As [`ProxyHost::respond_call`].
    pub fn time_out_call(&mut self, id: u32) -> anyhow::Result<()> {
        self.deliver(id, CallState::TimedOut, None)
    }

    /// Calls `proxy_on_tick` once on the root context.
    ///
    /// # Errors
    /// A trap in `proxy_on_tick`.
    pub fn tick(&mut self) -> anyhow::Result<()> {
        let root = self.store.data().root;
        let r = self.invoke(Step::Tick, root, "proxy_on_tick", &[Val::I32(root as i32)]);
        self.pump();
        r.map(|_| ()).map_err(|e| anyhow::anyhow!(e))
    }

    /// Moves the harness clock forward, firing due ticks (at the period the guest set) and
    /// timing out calls whose timeout passed, in time order.
    ///
    /// # Errors
    /// The first trap.
    pub fn advance(&mut self, by: Duration) -> anyhow::Result<()> {
        let clock = self.store.data().clock.clone();
        let target = clock.now_nanos() + by.as_nanos() as u64;
        loop {
            let period = u64::from(self.store.data().tick_period_ms) * 1_000_000;
            let next_tick = (period > 0).then(|| self.last_tick_nanos + period);
            let next_timeout = self
                .store
                .data()
                .dispatched
                .iter()
                .filter(|c| {
                    c.state == CallState::Pending && !self.real_clusters.contains_key(&c.cluster)
                })
                .map(|c| (c.at_nanos + u64::from(c.timeout_ms) * 1_000_000, c.id))
                .min();
            let due_tick = next_tick.filter(|t| *t <= target);
            let due_timeout = next_timeout.filter(|(t, _)| *t <= target);
            match (due_tick, due_timeout) {
                (Some(t), Some((tt, id))) if tt < t => {
                    Self::set_clock(&clock, tt);
                    self.time_out_call(id)?;
                }
                (Some(t), _) => {
                    Self::set_clock(&clock, t);
                    self.last_tick_nanos = t;
                    self.tick()?;
                }
                (None, Some((tt, id))) => {
                    Self::set_clock(&clock, tt);
                    self.time_out_call(id)?;
                }
                (None, None) => break,
            }
        }
        Self::set_clock(&clock, target);
        if self.store.data().tick_period_ms == 0 {
            self.last_tick_nanos = target;
        }
        Ok(())
    }

    fn set_clock(clock: &VirtualClock, at: u64) {
        let now = clock.now_nanos();
        if at > now {
            clock.advance(Duration::from_nanos(at - now));
        }
    }
}
