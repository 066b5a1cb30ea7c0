//! Pure helpers of the pipeline suite: percentiles and the node's stage histograms.

use std::collections::BTreeMap;

/// The `p`-th percentile (0 < p <= 100) of `values` by the nearest-rank method: the smallest
/// value with at least `p` percent of the values at or below it. `None` if `values` is empty.
/// With fewer than 100 values, the 99th percentile is the maximum.
#[must_use]
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Sum (seconds) and count of each stage of the node's `veil_slot_stage_seconds` histogram,
/// read from its OpenMetrics text.
#[must_use]
pub fn stage_sums(openmetrics: &str) -> BTreeMap<String, (f64, u64)> {
    let mut out: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    for line in openmetrics.lines() {
        let Some(rest) = line.strip_prefix("veil_slot_stage_seconds_") else { continue };
        let (field, rest) = match rest.split_once('{') {
            Some((f, r)) => (f, r),
            None => continue,
        };
        let Some(stage) = rest
            .split(',')
            .find_map(|kv| kv.strip_prefix("stage=\""))
            .and_then(|v| v.split('"').next())
        else {
            continue;
        };
        let Some(value) = rest.rsplit_once('}').map(|(_, v)| v.trim()) else { continue };
        let entry = out.entry(stage.to_string()).or_default();
        match field {
            "sum" => entry.0 = value.parse().unwrap_or(0.0),
            "count" => entry.1 = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    out
}

/// The sum over label sets of metric `name` (a counter's `name_total` or a gauge) in an
/// OpenMetrics text; 0 if absent.
#[must_use]
pub fn metric_sum(openmetrics: &str, name: &str) -> f64 {
    openmetrics
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            if !(rest.starts_with(' ') || rest.starts_with('{')) {
                return None;
            }
            line.rsplit(' ').next()?.parse::<f64>().ok()
        })
        .sum()
}

/// Mean milliseconds per stage between two readings of [`stage_sums`].
#[must_use]
pub fn stage_means_ms(
    before: &BTreeMap<String, (f64, u64)>,
    after: &BTreeMap<String, (f64, u64)>,
) -> BTreeMap<String, (f64, u64)> {
    after
        .iter()
        .filter_map(|(stage, (sum, count))| {
            let (s0, c0) = before.get(stage).copied().unwrap_or((0.0, 0));
            let n = count.saturating_sub(c0);
            (n > 0).then(|| (stage.clone(), ((sum - s0) * 1e3 / n as f64, n)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        // Fewer than 100 values: p99 is the maximum; order of the input does not matter.
        assert_eq!(percentile(&[3.0, 9.0, 1.0, 4.0], 99.0), Some(9.0));
        assert_eq!(percentile(&[3.0, 9.0, 1.0, 4.0], 50.0), Some(3.0));
        assert_eq!(percentile(&[7.0], 1.0), Some(7.0));
        assert_eq!(percentile(&[], 99.0), None);
    }

    #[test]
    fn stage_histogram_sums_and_means() {
        let text = "# TYPE veil_slot_stage_seconds histogram\n\
            veil_slot_stage_seconds_sum{stage=\"decrypt\"} 0.5\n\
            veil_slot_stage_seconds_count{stage=\"decrypt\"} 10\n\
            veil_slot_stage_seconds_bucket{le=\"0.001\",stage=\"decrypt\"} 0\n\
            veil_slot_stage_seconds_sum{stage=\"close\"} 0.1\n\
            veil_slot_stage_seconds_count{stage=\"close\"} 10\n\
            veil_slots_total{outcome=\"settled\"} 10\n";
        let after = stage_sums(text);
        assert_eq!(after["decrypt"], (0.5, 10));
        let before: BTreeMap<String, (f64, u64)> =
            [("decrypt".to_string(), (0.1, 2))].into_iter().collect();
        let means = stage_means_ms(&before, &after);
        assert!((means["decrypt"].0 - 50.0).abs() < 1e-9);
        assert_eq!(means["decrypt"].1, 8);
        assert!((means["close"].0 - 10.0).abs() < 1e-9);
        assert_eq!(metric_sum(text, "veil_slots_total"), 10.0);
        assert_eq!(metric_sum(text, "veil_slots"), 0.0);
        assert_eq!(metric_sum(text, "veil_keypers_blamed_total"), 0.0);
    }
}
