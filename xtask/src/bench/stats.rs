//! Figures summarised: median, min and max over rounds, the check of a goal such as `>= 0.90`
//! against the median, and numbers printed with the digits that matter.

/// Median, min and max of one figure's samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub rounds: usize,
}

impl Summary {
    /// `None` for no samples. The median of an even count is the mean of the middle two.
    pub fn of(samples: &[f64]) -> Option<Self> {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => sorted[n / 2],
            _ => f64::midpoint(sorted[n / 2 - 1], sorted[n / 2]),
        };
        Some(Self {
            median,
            min: sorted[0],
            max: sorted[n - 1],
            rounds: n,
        })
    }
}

/// Whether a figure's median meets its goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoalStatus {
    Met,
    Missed,
    /// The goal is free text without a leading comparison and number.
    NotChecked,
}

/// Whether a value (left) meets a threshold (right).
type Comparison = fn(f64, f64) -> bool;

/// Checks `median` against a goal that starts with `>=`, `≥`, `<=`, `≤`, `>` or `<` and a
/// number (`>= 0.90`, `≤ 64 MiB`); anything else is not checked.
pub fn check_goal(goal: &str, median: f64) -> GoalStatus {
    let goal = goal.trim();
    let operators: [(&str, Comparison); 6] = [
        (">=", |v, t| v >= t),
        ("≥", |v, t| v >= t),
        ("<=", |v, t| v <= t),
        ("≤", |v, t| v <= t),
        (">", |v, t| v > t),
        ("<", |v, t| v < t),
    ];
    for (operator, holds) in operators {
        let Some(rest) = goal.strip_prefix(operator) else {
            continue;
        };
        let number: String = rest
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '_'))
            .filter(|c| *c != '_')
            .collect();
        return match number.parse::<f64>() {
            Ok(threshold) if holds(median, threshold) => GoalStatus::Met,
            Ok(_) => GoalStatus::Missed,
            Err(_) => GoalStatus::NotChecked,
        };
    }
    GoalStatus::NotChecked
}

/// A number with about three significant digits, no exponent: `0.872`, `46.6`, `29341`;
/// whole numbers (counts, sizes) without decimals.
pub fn format_value(value: f64) -> String {
    let magnitude = value.abs();
    let decimals = if value.fract() == 0.0 || magnitude >= 1000.0 {
        0
    } else {
        // 2 for [1, 10), 1 for [10, 100), 0 for [100, 1000), 3 for [0.1, 1), ...
        (2 - magnitude.log10().floor() as i32).clamp(0, 6) as usize
    };
    format!("{value:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max_of_odd_and_even_counts() {
        let odd = Summary::of(&[0.83, 0.79, 0.81]).unwrap();
        assert_eq!(
            (odd.median, odd.min, odd.max, odd.rounds),
            (0.81, 0.79, 0.83, 3)
        );
        let even = Summary::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(
            (even.median, even.min, even.max, even.rounds),
            (2.5, 1.0, 4.0, 4)
        );
        let one = Summary::of(&[22628.0]).unwrap();
        assert_eq!((one.median, one.min, one.max), (22628.0, 22628.0, 22628.0));
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn goals_are_checked_against_the_median() {
        assert_eq!(check_goal(">= 0.90", 0.91), GoalStatus::Met);
        assert_eq!(check_goal(">= 0.90", 0.90), GoalStatus::Met);
        assert_eq!(check_goal(">= 0.90", 0.8999), GoalStatus::Missed);
        assert_eq!(check_goal("≤ 64 MiB", 48.0), GoalStatus::Met);
        assert_eq!(
            check_goal("<= 20_000 instructions", 22_628.0),
            GoalStatus::Missed
        );
        assert_eq!(check_goal("< 1", 1.0), GoalStatus::Missed);
        assert_eq!(check_goal("> 250000", 250_001.0), GoalStatus::Met);
        assert_eq!(check_goal("as low as it goes", 1.0), GoalStatus::NotChecked);
        assert_eq!(check_goal(">= soon", 1.0), GoalStatus::NotChecked);
    }

    #[test]
    fn numbers_keep_about_three_significant_digits() {
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(10.0), "10");
        assert_eq!(format_value(0.87234), "0.872");
        assert_eq!(format_value(0.012345), "0.0123");
        assert_eq!(format_value(1.5), "1.50");
        assert_eq!(format_value(46.63), "46.6");
        assert_eq!(format_value(310.24), "310");
        assert_eq!(format_value(29340.6), "29341");
        assert_eq!(format_value(-2.25), "-2.25");
    }
}
