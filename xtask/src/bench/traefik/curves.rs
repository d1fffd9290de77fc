//! How gatetrace's cost grows (issue 15 item 6): Traefik CPU per request that the plugin adds
//! to bare Traefik, as request headers get more and longer and as MCP bodies grow; each point
//! measured on the bare and the gatetrace instance back to back (in alternating order), the
//! median over rounds.

use anyhow::Result;

use super::scenario::{
    BARE, GATETRACE, GATETRACE_MCP_BODY, mcp_request, plain_request, with_extra_headers,
};
use super::stack::Bench;
use super::wrk::Request;
use crate::bench::model::Curve;
use crate::bench::stats::Summary;

/// Extra request headers (20-byte values) on the plain GET.
const HEADER_COUNTS: [usize; 4] = [0, 10, 20, 40];
/// Bytes of one extra request header's value on the plain GET.
const HEADER_SIZES: [usize; 4] = [0, 1024, 4096, 8192];
/// Bytes the MCP body's arguments are padded by (the plugin reads up to 64 KiB by default).
const BODY_PADS: [usize; 4] = [0, 4096, 16384, 60000];
const HEADER_VALUE_LEN: usize = 20;
const Y_LABEL: &str = "Traefik CPU added by gatetrace (µs per request)";

/// One sweep: the instance pair and the request at each x.
struct Sweep {
    name: &'static str,
    title: &'static str,
    x_label: &'static str,
    plugin: &'static str,
    points: Vec<(f64, Request)>,
}

/// Measures every curve.
pub fn measure(bench: &mut Bench, rounds: usize, seconds: u64) -> Result<Vec<Curve>> {
    let sweeps = [
        Sweep {
            name: "traefik-plugin-cpu-vs-header-count",
            title: "gatetrace's cost vs request header count",
            x_label: "extra request headers (20-byte values)",
            plugin: GATETRACE,
            points: HEADER_COUNTS
                .iter()
                .map(|&n| {
                    (
                        n as f64,
                        with_extra_headers(plain_request(), n, HEADER_VALUE_LEN),
                    )
                })
                .collect(),
        },
        Sweep {
            name: "traefik-plugin-cpu-vs-header-size",
            title: "gatetrace's cost vs request header size",
            x_label: "bytes of one extra request header value",
            plugin: GATETRACE,
            points: HEADER_SIZES
                .iter()
                .map(|&len| {
                    let count = usize::from(len > 0);
                    (len as f64, with_extra_headers(plain_request(), count, len))
                })
                .collect(),
        },
        Sweep {
            name: "traefik-plugin-cpu-vs-mcp-body-size",
            title: "gatetrace's cost vs MCP request body size (parsed from the body)",
            x_label: "MCP request body bytes",
            plugin: GATETRACE_MCP_BODY,
            points: BODY_PADS
                .iter()
                .map(|&pad| {
                    let request = mcp_request(false, pad);
                    let len = request.body.as_ref().map_or(0, String::len);
                    (len as f64, request)
                })
                .collect(),
        },
    ];
    let mut curves = Vec::new();
    for sweep in sweeps {
        let mut points = Vec::new();
        for (x, request) in &sweep.points {
            let mut added = Vec::new();
            for round in 0..rounds {
                // Bare first in even rounds, the plugin first in odd ones: drift cancels.
                let mut pair = [BARE, sweep.plugin];
                if round % 2 == 1 {
                    pair.reverse();
                }
                let (first, _) = bench.traefik_us_per_request(pair[0], request, seconds)?;
                let (second, _) = bench.traefik_us_per_request(pair[1], request, seconds)?;
                let (bare, plugin) = if round % 2 == 1 {
                    (second, first)
                } else {
                    (first, second)
                };
                added.push(plugin - bare);
            }
            let median = Summary::of(&added).map_or(0.0, |s| s.median);
            println!("traefik bench: {} at {x}: {median:.1} µs", sweep.name);
            points.push([*x, median]);
        }
        curves.push(Curve {
            name: sweep.name.to_owned(),
            title: sweep.title.to_owned(),
            x_label: sweep.x_label.to_owned(),
            y_label: Y_LABEL.to_owned(),
            points,
        });
    }
    Ok(curves)
}
