//! Threshold proposals from inspectors' reviews — the feedback loop the papers lack. Reviewed
//! frames are labelled (confirmed = defect, false alarm = normal); their raw scores are
//! normalized with the camera's current bounds and a threshold is chosen as
//! `railscope calibrate` would (best F1, or a target false-alarm rate). Pure: no I/O.
//!
//! What a proposal promises (docs/scoring.md, "Proposals from reviews"): it is made only from
//! at least `min_reviews_per_class` reviews of each kind; its value is a short decimal that has
//! exactly the effect on the reviewed frames that the answer reports, so the value shown is the
//! value applied; and when it would judge a confirmed defect normal, the message says how many.

use serde::Serialize;

use crate::pipeline::metrics::{best_f1_threshold, confusion, false_alarm_threshold};
use crate::pipeline::scoring::Normalization;
use crate::service::store::ReviewState;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProposalMethod {
    BestF1,
    FalseAlarmRate(f64),
}

impl ProposalMethod {
    pub fn name(&self) -> &'static str {
        match self {
            ProposalMethod::BestF1 => "best_f1",
            ProposalMethod::FalseAlarmRate(_) => "false_alarm_rate",
        }
    }
}

/// Confusion counts and rates of a threshold over the reviewed frames.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Effect {
    pub threshold: f64,
    pub tp: usize,
    pub fp: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
    pub tn: usize,
    pub precision: f64,
    pub recall: f64,
    pub false_alarm_rate: f64,
    pub f1: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proposal {
    pub method: &'static str,
    pub confirmed: usize,
    pub false_alarm: usize,
    /// Reviews of each kind a proposal needs (config `calibration.min_reviews_per_class`).
    pub min_reviews_per_class: usize,
    /// `None` until there are `min_reviews_per_class` reviews of each kind.
    pub threshold: Option<f64>,
    /// The current threshold's effect, once there is at least one review of each kind.
    pub current: Option<Effect>,
    pub proposed: Option<Effect>,
    /// Confirmed defects the proposed threshold would judge normal (A′ at or below it); the
    /// message says so in words when it is not 0. `None` without a proposal.
    pub missed_confirmed: Option<usize>,
    /// Why there is no proposal (`too_few_reviews`, `no_threshold`); `None` with one.
    pub reason: Option<&'static str>,
    pub message: String,
}

fn effect(scores: &[f64], labels: &[bool], threshold: f64) -> Effect {
    let c = confusion(scores, labels, threshold);
    let m = c.rates();
    Effect {
        threshold,
        tp: c.tp,
        fp: c.fp,
        fn_: c.fn_,
        tn: c.tn,
        precision: m.precision,
        recall: m.recall,
        false_alarm_rate: m.false_alarm_rate,
        f1: m.f1,
    }
}

/// `t` to `digits` significant digits: rounded to nearest, down and up, each as the double
/// nearest to that short decimal (so that it prints, and parses back, as that decimal).
fn rounded(t: f64, digits: usize) -> [f64; 3] {
    let short = |x: f64| -> f64 { format!("{:.*e}", digits - 1, x).parse().unwrap_or(f64::NAN) };
    let q = 10f64.powi(t.abs().log10().floor() as i32 - digits as i32 + 1);
    [
        short(t),
        short((t / q).floor() * q),
        short((t / q).ceil() * q),
    ]
}

/// A threshold with the same effect as `t` on `scores` (every score on the same side of it,
/// with the strict `A′ > threshold`) written with as few significant digits as possible (at
/// most 15), within a quarter of the gap between the neighbouring scores around `t` (half of
/// the distance to the one neighbour when `t` lies below every score; just above `t` when it
/// is at or above the highest). A number of at most 15
/// significant digits survives JSON both ways exactly (serde_json, JavaScript), so what the
/// dashboard shows and sends is this very value.
pub fn readable_threshold(t: f64, scores: &[f64]) -> f64 {
    if !t.is_finite() || t == 0.0 {
        return t;
    }
    let below = scores.iter().copied().filter(|&s| s <= t).reduce(f64::max);
    let above = scores.iter().copied().filter(|&s| s > t).reduce(f64::min);
    let h = match (below, above) {
        (Some(b), Some(a)) => (a - b) / 4.0,
        (None, Some(a)) => (a - t) / 2.0,
        // At (or above) the highest score: anything higher has the same effect; stay close.
        (Some(b), None) => ((t - b) / 2.0).max(t.abs() * 1e-12),
        (None, None) => t.abs() / 4.0,
    };
    let same_side = |c: f64| below.is_none_or(|b| c >= b) && above.is_none_or(|a| c < a);
    for digits in 1..=15 {
        let best = rounded(t, digits)
            .into_iter()
            .filter(|&c| c.is_finite() && (c - t).abs() <= h && same_side(c))
            .min_by(|x, y| (x - t).abs().total_cmp(&(y - t).abs()));
        if let Some(c) = best {
            return c;
        }
    }
    t
}

/// A proposal from `reviews` (raw A, review) normalized with `current`, needing at least
/// `min_per_class` (≥ 1) reviews of each kind.
pub fn propose(
    reviews: &[(f64, ReviewState)],
    current: &Normalization,
    method: ProposalMethod,
    min_per_class: usize,
) -> Proposal {
    let min_per_class = min_per_class.max(1);
    let scores: Vec<f64> = reviews.iter().map(|(a, _)| current.normalize(*a)).collect();
    let labels: Vec<bool> = reviews
        .iter()
        .map(|(_, s)| *s == ReviewState::Confirmed)
        .collect();
    let confirmed = labels.iter().filter(|&&l| l).count();
    let false_alarm = labels.len() - confirmed;
    let mut p = Proposal {
        method: method.name(),
        confirmed,
        false_alarm,
        min_reviews_per_class: min_per_class,
        threshold: None,
        current: None,
        proposed: None,
        missed_confirmed: None,
        reason: None,
        message: String::new(),
    };
    if confirmed > 0 && false_alarm > 0 {
        p.current = Some(effect(&scores, &labels, current.threshold));
    }
    if confirmed < min_per_class || false_alarm < min_per_class {
        p.reason = Some("too_few_reviews");
        p.message = format!(
            "no proposal: it needs at least {min_per_class} confirmed defects and {min_per_class} false alarms reviewed under the model version in service (have {confirmed} confirmed, {false_alarm} false alarm{}); calibration.min_reviews_per_class sets the minimum",
            if false_alarm == 1 { "" } else { "s" }
        );
        return p;
    }
    let chosen = match method {
        ProposalMethod::BestF1 => best_f1_threshold(&scores, &labels),
        ProposalMethod::FalseAlarmRate(t) => false_alarm_threshold(&scores, &labels, t),
    };
    let t = match chosen {
        Ok(t) => readable_threshold(t, &scores),
        Err(e) => {
            p.reason = Some("no_threshold");
            p.message = e;
            return p;
        }
    };
    let e = effect(&scores, &labels, t);
    p.threshold = Some(t);
    p.proposed = Some(e);
    p.missed_confirmed = Some(e.fn_);
    let mut words = Vec::new();
    if e.fn_ > 0 {
        words.push(format!(
            "This threshold would miss {} of {confirmed} confirmed defect{}: their A′ is at or below it, so they would be judged normal.",
            e.fn_,
            if confirmed == 1 { "" } else { "s" }
        ));
    } else {
        words.push(format!(
            "Every one of the {confirmed} confirmed defects stays above this threshold."
        ));
    }
    if !(t > 0.0 && t <= 10.0) {
        words.push("It lies outside 0 < threshold <= 10 and cannot be applied.".to_string());
    }
    words.push(format!(
        "From {} reviewed frames of the model version in service; frames judged normal and never reviewed are not counted, so recall is over reviewed frames only.",
        reviews.len()
    ));
    p.message = words.join(" ");
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Normalization {
        Normalization::new(0.0, 1.0, 0.1).unwrap()
    }

    fn reviews(confirmed: &[f64], false_alarms: &[f64]) -> Vec<(f64, ReviewState)> {
        confirmed
            .iter()
            .map(|&a| (a, ReviewState::Confirmed))
            .chain(false_alarms.iter().map(|&a| (a, ReviewState::FalseAlarm)))
            .collect()
    }

    #[test]
    fn best_f1_moves_the_threshold_between_false_alarms_and_defects() {
        let p = propose(
            &reviews(&[0.30, 0.45], &[0.15, 0.18]),
            &identity(),
            ProposalMethod::BestF1,
            1,
        );
        let t = p.threshold.unwrap();
        assert!((0.18..0.30).contains(&t), "{t}");
        assert_eq!(t, 0.24, "the midpoint, written short");
        let (cur, new) = (p.current.unwrap(), p.proposed.unwrap());
        assert_eq!((cur.tp, cur.fp), (2, 2));
        assert_eq!((new.tp, new.fp, new.fn_), (2, 0, 0));
        assert_eq!(p.missed_confirmed, Some(0));
        assert!(new.f1 > cur.f1);
    }

    #[test]
    fn no_proposal_without_both_kinds_of_review() {
        let p = propose(
            &[(0.3, ReviewState::Confirmed)],
            &identity(),
            ProposalMethod::BestF1,
            1,
        );
        assert!(p.threshold.is_none() && p.message.contains("false alarm"));
        assert_eq!(p.reason, Some("too_few_reviews"));
    }

    #[test]
    fn no_proposal_below_the_minimum_reviews_per_class() {
        let r = reviews(
            &[0.30, 0.31, 0.32, 0.33, 0.34],
            &[
                0.10, 0.11, 0.12, 0.13, 0.14, 0.15, 0.16, 0.17, 0.18, 0.19, 0.20,
            ],
        );
        let p = propose(&r, &identity(), ProposalMethod::BestF1, 10);
        assert_eq!(p.threshold, None);
        assert_eq!(p.proposed, None);
        assert_eq!(p.reason, Some("too_few_reviews"));
        assert!(
            p.message.contains("at least 10 confirmed") && p.message.contains("have 5 confirmed"),
            "{}",
            p.message
        );
        // The current threshold's effect is still reported.
        assert_eq!(p.current.unwrap().tp, 5);
        let p = propose(&r, &identity(), ProposalMethod::BestF1, 5);
        assert!(p.threshold.is_some() && p.reason.is_none(), "{p:?}");
    }

    /// Issue 12: the proposal sat 1e-9 below a confirmed defect (0.14398568751) and the
    /// dashboard rounded it to 0.144, above the defect. The proposal itself is now a short
    /// decimal below the defect, which survives printing and parsing unchanged.
    #[test]
    fn a_proposal_just_below_a_confirmed_defect_is_exact_and_short() {
        let low = 0.14398568751;
        // Flagging every reviewed frame is the best F1 here: the threshold goes below `low`.
        let r = reviews(&[low, 0.5, 0.6], &[0.3]);
        let p = propose(&r, &identity(), ProposalMethod::BestF1, 1);
        let t = p.threshold.unwrap();
        assert!(t < low && low - t < 1e-8, "{t}");
        assert_eq!(p.missed_confirmed, Some(0));
        assert_eq!(p.proposed.unwrap().recall, 1.0);
        let printed = serde_json::to_string(&t).unwrap();
        assert_eq!(printed, "0.143985687");
        assert_eq!(serde_json::from_str::<f64>(&printed).unwrap(), t);
        // What the old dashboard sent would have missed the defect.
        assert!((t * 1e3).round() / 1e3 > low);
        assert!(
            p.message.contains("Every one of the 3 confirmed"),
            "{}",
            p.message
        );
    }

    #[test]
    fn a_proposal_that_misses_confirmed_defects_says_how_many() {
        // One confirmed defect scores among the false alarms: best F1 leaves it below.
        let r = reviews(&[0.2, 0.6, 0.7, 0.8], &[0.1, 0.25, 0.3, 0.35]);
        let p = propose(&r, &identity(), ProposalMethod::BestF1, 1);
        let t = p.threshold.unwrap();
        assert!(t > 0.35 && t < 0.6, "{t}");
        assert_eq!(p.missed_confirmed, Some(1));
        assert_eq!(p.proposed.unwrap().fn_, 1);
        assert!(
            p.message
                .starts_with("This threshold would miss 1 of 4 confirmed defects"),
            "{}",
            p.message
        );
        // A false-alarm-rate target of 0 puts it at the worst false alarm: the same defect.
        let far = propose(&r, &identity(), ProposalMethod::FalseAlarmRate(0.0), 1);
        assert_eq!(far.missed_confirmed, Some(1));
        assert!(far.message.contains("miss 1 of 4"), "{}", far.message);
    }

    #[test]
    fn readable_thresholds_keep_the_effect_and_round_trip_through_json() {
        // Deterministic pseudo-random score sets; every candidate threshold of both methods.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..200 {
            let n = 2 + (next() * 30.0) as usize;
            let scores: Vec<f64> = (0..n).map(|_| next() * 1.5).collect();
            let labels: Vec<bool> = (0..n).map(|k| k % 2 == 0).collect();
            let mut ts = vec![best_f1_threshold(&scores, &labels).unwrap()];
            ts.push(false_alarm_threshold(&scores, &labels, 0.05).unwrap());
            let mut sorted = scores.clone();
            sorted.sort_by(f64::total_cmp);
            ts.push(sorted[0] - 1e-9);
            for t in ts {
                let r = readable_threshold(t, &scores);
                assert_eq!(
                    confusion(&scores, &labels, r),
                    confusion(&scores, &labels, t),
                    "{t} -> {r} over {scores:?}"
                );
                let printed = serde_json::to_string(&r).unwrap();
                assert_eq!(
                    serde_json::from_str::<f64>(&printed).unwrap(),
                    r,
                    "{printed}"
                );
                let digits = printed
                    .trim_start_matches(['-', '0', '.'])
                    .split(['e', 'E'])
                    .next()
                    .unwrap()
                    .replace('.', "")
                    .len();
                assert!(digits <= 15, "{printed}");
            }
        }
    }
}
