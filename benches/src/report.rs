//! One measured figure, its baseline and its goal, printed as a table row or a JSON line.

use serde::Serialize;

/// Which direction of a figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Smaller is better (latencies, durations, memory).
    Lower,
    /// Larger is better (throughputs).
    Higher,
}

/// A goal from DESIGN.md's budgets.
#[derive(Debug, Clone, Copy)]
pub struct Goal {
    /// The bound.
    pub bound: f64,
    /// Whether the figure must stay at or below the bound (`Lower`) or reach it (`Higher`).
    pub better: Better,
}

impl Goal {
    /// A ceiling: the figure must be `<= bound`.
    #[must_use]
    pub fn at_most(bound: f64) -> Goal {
        Goal { bound, better: Better::Lower }
    }

    /// A floor: the figure must be `>= bound`.
    #[must_use]
    pub fn at_least(bound: f64) -> Goal {
        Goal { bound, better: Better::Higher }
    }

    /// Whether `value` meets the goal.
    #[must_use]
    pub fn met_by(&self, value: f64) -> bool {
        match self.better {
            Better::Lower => value <= self.bound,
            Better::Higher => value >= self.bound,
        }
    }

    fn describe(&self) -> String {
        match self.better {
            Better::Lower => format!("<= {}", self.bound),
            Better::Higher => format!(">= {}", self.bound),
        }
    }
}

/// One row of a suite's output.
#[derive(Debug, Clone)]
pub struct Figure {
    /// The suite, such as `crypto`.
    pub suite: &'static str,
    /// The case, such as `encrypt_512b`.
    pub case: String,
    /// The unit of `ours`, `baseline` and the goal, such as `us` or `tx/s`.
    pub unit: &'static str,
    /// Veil's measured figure.
    pub ours: f64,
    /// The baseline's figure from the same run, if the case has one.
    pub baseline: Option<f64>,
    /// What the baseline is, and how it was measured (for example "scaled from a sample").
    pub baseline_name: String,
    /// Which direction is better for this figure.
    pub better: Better,
    /// The goal from DESIGN.md, if any.
    pub goal: Option<Goal>,
    /// A condition of the goal besides the bound that the run did not meet (such as "nothing
    /// lost"), if any: the goal is then missed whatever the figure.
    pub unmet: Option<String>,
}

/// The JSON line printed by `--json`. Field names are part of the tool's interface.
#[derive(Debug, Serialize)]
struct JsonLine<'a> {
    suite: &'a str,
    case: &'a str,
    unit: &'a str,
    ours: f64,
    baseline: Option<f64>,
    baseline_name: &'a str,
    speedup: Option<f64>,
    goal: Option<String>,
    meets_goal: Option<bool>,
}

impl Figure {
    /// How many times better ours is than the baseline (> 1 is better), if there is one.
    #[must_use]
    pub fn speedup(&self) -> Option<f64> {
        let baseline = self.baseline?;
        if self.ours <= 0.0 || baseline <= 0.0 {
            return None;
        }
        Some(match self.better {
            Better::Lower => baseline / self.ours,
            Better::Higher => self.ours / baseline,
        })
    }

    /// Whether the goal is met, if the case has one.
    #[must_use]
    pub fn meets_goal(&self) -> Option<bool> {
        self.goal.map(|g| self.unmet.is_none() && g.met_by(self.ours))
    }

    /// The figure as one JSON object on one line.
    #[must_use]
    pub fn to_json_line(&self) -> String {
        let line = JsonLine {
            suite: self.suite,
            case: &self.case,
            unit: self.unit,
            ours: round(self.ours),
            baseline: self.baseline.map(round),
            baseline_name: &self.baseline_name,
            speedup: self.speedup().map(round),
            goal: self.goal.map(|g| g.describe()),
            meets_goal: self.meets_goal(),
        };
        serde_json::to_string(&line).expect("a JSON line of plain fields always serialises")
    }

    /// The figure as a human-readable table row.
    #[must_use]
    pub fn to_row(&self) -> String {
        let baseline = match self.baseline {
            Some(b) => format!("{:>12} {}", fmt_num(b), self.unit),
            None => format!("{:>12}", "-"),
        };
        let speedup = self.speedup().map_or_else(|| "-".to_string(), |s| format!("{s:.1}x"));
        let goal = match (self.goal, self.meets_goal()) {
            (Some(g), Some(true)) => format!("{} ok", g.describe()),
            (Some(g), _) => match &self.unmet {
                Some(why) => format!("{} MISSED ({why})", g.describe()),
                None => format!("{} MISSED", g.describe()),
            },
            (None, _) => "-".to_string(),
        };
        format!(
            "{:<8} {:<26} {:>12} {:<6} | baseline {} ({}) | speedup {:>7} | goal {}",
            self.suite,
            self.case,
            fmt_num(self.ours),
            self.unit,
            baseline,
            self.baseline_name,
            speedup,
            goal
        )
    }
}

fn round(v: f64) -> f64 {
    if v.abs() >= 100.0 {
        (v * 10.0).round() / 10.0
    } else {
        (v * 1000.0).round() / 1000.0
    }
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// Prints figures as they are produced, in the chosen format.
#[derive(Debug)]
pub struct Reporter {
    json: bool,
    figures: Vec<Figure>,
}

impl Reporter {
    /// A reporter printing JSON lines (`json = true`) or table rows.
    #[must_use]
    pub fn new(json: bool) -> Reporter {
        Reporter { json, figures: Vec::new() }
    }

    /// Prints one figure at once and keeps it for the summary.
    pub fn record(&mut self, figure: Figure) {
        if self.json {
            println!("{}", figure.to_json_line());
        } else {
            println!("{}", figure.to_row());
        }
        self.figures.push(figure);
    }

    /// Progress or context for a human; goes to stderr so that `--json` stays clean.
    pub fn note(&self, message: &str) {
        eprintln!("{message}");
    }

    /// Every figure recorded so far.
    #[must_use]
    pub fn figures(&self) -> &[Figure] {
        &self.figures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(ours: f64, baseline: Option<f64>, better: Better, goal: Goal) -> Figure {
        Figure {
            suite: "t",
            case: "c".into(),
            unit: "ms",
            ours,
            baseline,
            baseline_name: "b".into(),
            better,
            goal: Some(goal),
            unmet: None,
        }
    }

    #[test]
    fn speedup_direction() {
        let lower = figure(10.0, Some(40.0), Better::Lower, Goal::at_most(25.0));
        assert_eq!(lower.speedup(), Some(4.0));
        assert_eq!(lower.meets_goal(), Some(true));
        let higher = figure(30_000.0, Some(1_500.0), Better::Higher, Goal::at_least(20_000.0));
        assert_eq!(higher.speedup(), Some(20.0));
        assert_eq!(higher.meets_goal(), Some(true));
        let missed = figure(30.0, None, Better::Lower, Goal::at_most(25.0));
        assert_eq!(missed.speedup(), None);
        assert_eq!(missed.meets_goal(), Some(false));
        let mut unmet = figure(10.0, None, Better::Lower, Goal::at_most(25.0));
        unmet.unmet = Some("3 lost".into());
        assert_eq!(unmet.meets_goal(), Some(false));
        assert!(unmet.to_row().contains("MISSED (3 lost)"));
    }

    #[test]
    fn json_line_has_the_documented_fields() {
        let f = figure(10.0, Some(40.0), Better::Lower, Goal::at_most(25.0));
        let v: serde_json::Value = serde_json::from_str(&f.to_json_line()).unwrap();
        for key in [
            "suite",
            "case",
            "unit",
            "ours",
            "baseline",
            "baseline_name",
            "speedup",
            "goal",
            "meets_goal",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["meets_goal"], serde_json::Value::Bool(true));
    }
}
