//! The Traefik suite's measurements turned into figures: ratios to bare Traefik per round,
//! absolute speeds and latencies, CPU per request, and gatetrace's whole-system CPU (Traefik
//! plus collector) against Traefik's own metrics, tracing and access log.

use super::scenario::{BARE, GATETRACE, OWN_OBSERVABILITY, SCENARIOS, Scenario, VARIANT};
use super::wrk::WrkResult;
use crate::bench::model::Figure;

/// The speed goal of issue 15: plain requests with gatetrace at ≥ 0.90 of bare Traefik.
const SPEED_GOAL: &str = ">= 0.90";
const CPU_GROUP: &str =
    "CPU per request (from /proc: Traefik over the 32-connection run, collector over the turn)";

/// One scenario's turn in one round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Turn {
    pub one_connection: WrkResult,
    pub many_connections: WrkResult,
    /// Traefik's CPU µs per request over the many-connection run.
    pub traefik_us: f64,
    /// The collector's CPU µs per request over the turn (records of both runs), if any.
    pub collector_us: Option<f64>,
}

impl Turn {
    /// Traefik plus collector.
    pub fn whole_system_us(&self) -> f64 {
        self.traefik_us + self.collector_us.unwrap_or(0.0)
    }
}

/// Every round's turns, per scenario (index as in [`SCENARIOS`]).
#[derive(Debug, Default)]
pub struct Measurements {
    pub turns: Vec<Vec<Turn>>,
}

impl Measurements {
    pub fn new() -> Self {
        Self {
            turns: vec![Vec::new(); SCENARIOS.len()],
        }
    }

    fn of(&self, id: &str) -> &[Turn] {
        let index = SCENARIOS
            .iter()
            .position(|s| s.id == id)
            .unwrap_or_default();
        &self.turns[index]
    }

    /// Per round, `value(turn)` ÷ `value(reference turn)`.
    fn ratios(&self, scenario: &str, reference: &str, value: impl Fn(&Turn) -> f64) -> Vec<f64> {
        self.of(scenario)
            .iter()
            .zip(self.of(reference))
            .map(|(turn, base)| value(turn) / value(base))
            .collect()
    }

    /// Per round, `value(turn)` − `value(reference turn)`.
    fn differences(
        &self,
        scenario: &str,
        reference: &str,
        value: impl Fn(&Turn) -> f64,
    ) -> Vec<f64> {
        self.of(scenario)
            .iter()
            .zip(self.of(reference))
            .map(|(turn, base)| value(turn) - value(base))
            .collect()
    }
}

/// All the suite's figures.
pub fn figures(m: &Measurements) -> Vec<Figure> {
    let mut out = Vec::new();
    // Scenarios that did not run (the variant without a build) have no turns.
    let compared = || {
        SCENARIOS
            .iter()
            .filter(|s| !m.of(s.id).is_empty())
            .filter_map(|s| Some((s, s.reference()?)))
    };
    for (scenario, bare) in compared() {
        out.push(figure(
            "Requests/s ÷ bare Traefik, 32 connections (per round, side by side)",
            &format!("{} ÷ {}", scenario.label, bare.label),
            "ratio",
            m.ratios(scenario.id, bare.id, |t| {
                t.many_connections.requests_per_second()
            }),
            [GATETRACE, VARIANT]
                .contains(&scenario.id)
                .then_some(SPEED_GOAL),
            false,
        ));
    }
    for (scenario, bare) in compared() {
        out.push(figure(
            "Requests/s ÷ bare Traefik, 1 connection (per round, side by side)",
            &format!("{} ÷ {}", scenario.label, bare.label),
            "ratio",
            m.ratios(scenario.id, bare.id, |t| {
                t.one_connection.requests_per_second()
            }),
            None,
            false,
        ));
    }
    for scenario in SCENARIOS.iter().filter(|s| !m.of(s.id).is_empty()) {
        let turns = m.of(scenario.id);
        let samples = |value: fn(&Turn) -> f64| turns.iter().map(value).collect::<Vec<_>>();
        let absolute = |group: &str, suffix: &str, unit: &str, values: Vec<f64>| {
            figure(
                group,
                &format!("{}{suffix}", scenario.label),
                unit,
                values,
                None,
                true,
            )
        };
        out.push(absolute(
            "Requests/s",
            ", 32 connections",
            "req/s",
            samples(|t| t.many_connections.requests_per_second()),
        ));
        out.push(absolute(
            "Requests/s",
            ", 1 connection",
            "req/s",
            samples(|t| t.one_connection.requests_per_second()),
        ));
        out.push(absolute(
            "Latency",
            ": p50, 1 connection",
            "ms",
            samples(|t| t.one_connection.p50_ms),
        ));
        out.push(absolute(
            "Latency",
            ": p99, 1 connection",
            "ms",
            samples(|t| t.one_connection.p99_ms),
        ));
        out.push(absolute(
            "Latency",
            ": p50, 32 connections",
            "ms",
            samples(|t| t.many_connections.p50_ms),
        ));
        out.push(absolute(
            "Latency",
            ": p99, 32 connections",
            "ms",
            samples(|t| t.many_connections.p99_ms),
        ));
        out.push(absolute(
            CPU_GROUP,
            ": Traefik",
            "µs",
            samples(|t| t.traefik_us),
        ));
        if turns.iter().any(|t| t.collector_us.is_some()) {
            out.push(absolute(
                CPU_GROUP,
                ": collector",
                "µs",
                samples(|t| t.collector_us.unwrap_or(0.0)),
            ));
            out.push(absolute(
                CPU_GROUP,
                ": whole system (Traefik + collector)",
                "µs",
                samples(Turn::whole_system_us),
            ));
        }
    }
    out.extend(whole_system(m));
    out
}

/// gatetrace (Traefik + collector) against Traefik's own observability, and what each adds
/// to bare Traefik.
fn whole_system(m: &Measurements) -> Vec<Figure> {
    const GROUP: &str = "Whole-system CPU per request: gatetrace vs Traefik's own observability (OTLP receiver excluded)";
    let label = |id: &'static str| -> &'static str {
        SCENARIOS
            .iter()
            .find(|s| s.id == id)
            .map_or(id, |s: &Scenario| s.label)
    };
    vec![
        figure(
            GROUP,
            &format!(
                "{} (Traefik + collector) ÷ {}",
                label(GATETRACE),
                label(OWN_OBSERVABILITY)
            ),
            "ratio",
            m.ratios(GATETRACE, OWN_OBSERVABILITY, Turn::whole_system_us),
            None,
            false,
        ),
        figure(
            GROUP,
            &format!("added to bare: {} (Traefik + collector)", label(GATETRACE)),
            "µs",
            m.differences(GATETRACE, BARE, Turn::whole_system_us),
            None,
            true,
        ),
        figure(
            GROUP,
            &format!("added to bare: {}", label(OWN_OBSERVABILITY)),
            "µs",
            m.differences(OWN_OBSERVABILITY, BARE, Turn::whole_system_us),
            None,
            true,
        ),
    ]
}

fn figure(
    group: &str,
    name: &str,
    unit: &str,
    samples: Vec<f64>,
    goal: Option<&str>,
    machine_dependent: bool,
) -> Figure {
    Figure {
        group: group.to_owned(),
        name: name.to_owned(),
        unit: unit.to_owned(),
        samples,
        goal: goal.map(str::to_owned),
        machine_dependent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(rps: f64, traefik_us: f64, collector_us: Option<f64>) -> Turn {
        let run = WrkResult {
            requests: (rps * 2.0) as u64,
            seconds: 2.0,
            socket_errors: 0,
            status_errors: 0,
            p50_ms: 1.0,
            p99_ms: 3.0,
        };
        Turn {
            one_connection: run,
            many_connections: run,
            traefik_us,
            collector_us,
        }
    }

    #[test]
    fn ratios_are_per_round_against_the_bare_run_of_the_same_request() {
        let mut m = Measurements::new();
        // The variant did not run: no turns.
        for (i, scenario) in SCENARIOS
            .iter()
            .enumerate()
            .filter(|(_, s)| s.id != VARIANT)
        {
            let collector = (scenario.instance.starts_with("gatetrace")).then_some(10.0);
            let (rps, us) = match scenario.instance {
                "bare" => (1000.0, 40.0),
                "traefik-observability" => (800.0, 60.0),
                _ => (900.0, 45.0),
            };
            m.turns[i] = vec![turn(rps, us, collector), turn(rps / 2.0, us, collector)];
        }
        let all = figures(&m);
        let find = |group: &str, name: &str| {
            all.iter()
                .find(|f| f.group.starts_with(group) && f.name == name)
                .unwrap_or_else(|| panic!("no {group} / {name}"))
        };
        let speed = find(
            "Requests/s ÷ bare Traefik, 32",
            "gatetrace, default config ÷ bare Traefik",
        );
        assert_eq!(speed.samples, [0.9, 0.9]);
        assert_eq!(speed.goal.as_deref(), Some(">= 0.90"));
        assert!(!speed.machine_dependent);
        let mcp = find(
            "Requests/s ÷ bare Traefik, 32",
            "gatetrace, MCP POST parsed from the body ÷ bare Traefik, MCP POST (2025-06-18)",
        );
        assert_eq!(mcp.samples, [0.9, 0.9]);
        let whole = find(
            "Whole-system",
            "gatetrace, default config (Traefik + collector) ÷ Traefik's own metrics + tracing + access log",
        );
        assert_eq!(whole.samples, [55.0 / 60.0, 55.0 / 60.0]);
        let added = find(
            "Whole-system",
            "added to bare: gatetrace, default config (Traefik + collector)",
        );
        assert_eq!(added.samples, [15.0, 15.0]);
        assert!(added.machine_dependent);
        let cpu = find(
            "CPU per request",
            "gatetrace, default config: whole system (Traefik + collector)",
        );
        assert_eq!(cpu.samples, [55.0, 55.0]);
        // Bare Traefik has no collector row; a scenario that did not run has no rows at all.
        assert!(all.iter().all(|f| f.name != "bare Traefik: collector"));
        assert!(all.iter().all(|f| !f.name.contains("other build")));
        assert!(all.iter().all(|f| !f.samples.is_empty()));
    }
}
