//! Threshold proposals from inspectors' reviews — the feedback loop the papers lack. Reviewed
//! frames are labelled (confirmed = defect, false alarm = normal); their raw scores are
//! normalized with the camera's current bounds and a threshold is chosen as
//! `railscope calibrate` would (best F1, or a target false-alarm rate). Pure: no I/O.

use serde::Serialize;

use crate::metrics::{best_f1_threshold, confusion, false_alarm_threshold};
use crate::scoring::Normalization;
use crate::store::ReviewState;

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
    /// `None` until there is at least one review of each kind.
    pub threshold: Option<f64>,
    pub current: Option<Effect>,
    pub proposed: Option<Effect>,
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

pub fn propose(
    reviews: &[(f64, ReviewState)],
    current: &Normalization,
    method: ProposalMethod,
) -> Proposal {
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
        threshold: None,
        current: None,
        proposed: None,
        message: String::new(),
    };
    if confirmed == 0 || false_alarm == 0 {
        p.message = format!(
            "needs at least one confirmed defect and one false alarm among the reviews (have {confirmed} confirmed, {false_alarm} false alarms)"
        );
        return p;
    }
    p.current = Some(effect(&scores, &labels, current.threshold));
    let chosen = match method {
        ProposalMethod::BestF1 => best_f1_threshold(&scores, &labels),
        ProposalMethod::FalseAlarmRate(t) => false_alarm_threshold(&scores, &labels, t),
    };
    match chosen {
        Ok(t) => {
            p.threshold = Some(t);
            p.proposed = Some(effect(&scores, &labels, t));
            p.message = format!(
                "from {} reviewed frames; frames judged normal and never reviewed are not counted, so recall is over reviewed frames only",
                reviews.len()
            );
        }
        Err(e) => p.message = e,
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_f1_moves_the_threshold_between_false_alarms_and_defects() {
        let norm = Normalization::new(0.0, 1.0, 0.1).unwrap();
        let reviews = vec![
            (0.15, ReviewState::FalseAlarm),
            (0.18, ReviewState::FalseAlarm),
            (0.30, ReviewState::Confirmed),
            (0.45, ReviewState::Confirmed),
        ];
        let p = propose(&reviews, &norm, ProposalMethod::BestF1);
        let t = p.threshold.unwrap();
        assert!((0.18..0.30).contains(&t), "{t}");
        let (cur, new) = (p.current.unwrap(), p.proposed.unwrap());
        assert_eq!((cur.tp, cur.fp), (2, 2));
        assert_eq!((new.tp, new.fp, new.fn_), (2, 0, 0));
        assert!(new.f1 > cur.f1);
    }

    #[test]
    fn no_proposal_without_both_kinds_of_review() {
        let norm = Normalization::new(0.0, 1.0, 0.1).unwrap();
        let p = propose(
            &[(0.3, ReviewState::Confirmed)],
            &norm,
            ProposalMethod::BestF1,
        );
        assert!(p.threshold.is_none() && p.message.contains("false alarm"));
    }
}
