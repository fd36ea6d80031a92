//! The shared work of a set of trials: which head phases and backbone boundaries they need.

use crate::catalogue::BackboneInfo;
use crate::trial::{Augment, TrialSpec};
use std::collections::BTreeSet;
use std::fmt;

/// Trials that differ only in fine-tune settings: they share one head phase.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadGroup {
    pub head_key: String,
    pub trials: Vec<TrialSpec>,
}

/// What running a set of trials costs once shared work is shared.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub groups: Vec<HeadGroup>,
    /// Block indices whose inputs the backbone pass records (`boundary_of(d)` for depth d).
    pub boundaries: BTreeSet<usize>,
    /// The augmented views the pass also makes of each training image: one entry per view set
    /// the trials use, with the most views any of them asks for (fewer reuse the first ones).
    pub views: Vec<Augment>,
    pub backbone: &'static BackboneInfo,
}

impl Plan {
    /// Group `trials` by head phase (first-appearance order) and collect their boundaries.
    pub fn new(trials: &[TrialSpec], backbone: &'static BackboneInfo) -> Plan {
        let mut groups: Vec<HeadGroup> = Vec::new();
        for trial in trials {
            let key = trial.settings.head_phase_key();
            match groups.iter_mut().find(|g| g.head_key == key) {
                Some(group) => group.trials.push(trial.clone()),
                None => groups.push(HeadGroup {
                    head_key: key,
                    trials: vec![trial.clone()],
                }),
            }
        }
        let boundaries = trials
            .iter()
            .map(|t| t.settings.unfreeze_depth)
            .filter(|&d| d > 0)
            .map(|d| backbone.boundary_of(d))
            .collect();
        let mut views: Vec<Augment> = Vec::new();
        for augment in trials.iter().filter_map(|t| t.settings.augment()) {
            match views.iter_mut().find(|v| v.set == augment.set) {
                Some(known) => known.views = known.views.max(augment.views),
                None => views.push(augment),
            }
        }
        Plan {
            groups,
            boundaries,
            views,
            backbone,
        }
    }

    /// Views the pass makes of each training image, over every view set.
    pub fn views_per_image(&self) -> usize {
        self.views.iter().map(|v| v.views).sum()
    }

    pub fn trial_count(&self) -> usize {
        self.groups.iter().map(|g| g.trials.len()).sum()
    }

    pub fn finetune_count(&self) -> usize {
        self.groups
            .iter()
            .flat_map(|g| &g.trials)
            .filter(|t| t.settings.unfreeze_depth > 0)
            .count()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let depths: Vec<String> = self
            .boundaries
            .iter()
            .map(|b| format!("block {b} (unfreeze {})", self.backbone.depth_of(*b)))
            .collect();
        writeln!(f, "{} trials", self.trial_count())?;
        writeln!(
            f,
            "1 backbone pass over the images, recording the pooled features{}",
            if depths.is_empty() {
                String::new()
            } else {
                format!(" and the inputs of {}", depths.join(", "))
            }
        )?;
        for augment in &self.views {
            writeln!(
                f,
                "  and {} augmented views of each training image ({}): the pass runs over the \
                 training images {} more times",
                augment.views,
                augment.set.describe(),
                augment.views
            )?;
        }
        writeln!(
            f,
            "{} head phases (instead of {}), {} fine-tune phases",
            self.groups.len(),
            self.trial_count(),
            self.finetune_count()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::BackboneKind;
    use crate::trial::TrainSettings;
    use std::collections::BTreeMap;

    fn trial(lr: f64, depth: usize) -> TrialSpec {
        let settings = TrainSettings {
            learning_rate: lr,
            unfreeze_depth: depth,
            ..TrainSettings::default()
        };
        TrialSpec {
            key: format!("{lr}-{depth}"),
            params: BTreeMap::new(),
            settings,
        }
    }

    #[test]
    fn trials_differing_only_in_unfreeze_depth_share_a_head_phase() {
        let trials = [
            trial(1e-3, 0),
            trial(1e-3, 2),
            trial(3e-3, 0),
            trial(3e-3, 2),
            trial(3e-3, 5),
        ];
        let plan = Plan::new(&trials, BackboneKind::EfficientNetLite0.info());
        assert_eq!(plan.groups.len(), 2);
        assert_eq!(plan.groups[1].trials.len(), 3);
        assert_eq!(plan.boundaries, BTreeSet::from([11, 14]));
        assert_eq!(plan.finetune_count(), 3);
        let text = plan.to_string();
        assert!(
            text.contains("2 head phases (instead of 5), 3 fine-tune phases"),
            "{text}"
        );
        assert!(text.contains("block 14 (unfreeze 2)"), "{text}");
        assert!(plan.views.is_empty());
    }

    #[test]
    fn each_view_set_is_made_once_with_the_most_views_a_trial_asks_for() {
        let with_views = |views, crop| {
            let mut t = trial(1e-3, 0);
            t.settings.augment_views = views;
            t.settings.augment_crop = crop;
            t
        };
        let trials = [
            with_views(2, 0.7),
            with_views(0, 1.0),
            with_views(4, 0.7),
            with_views(1, 0.5),
        ];
        let plan = Plan::new(&trials, BackboneKind::EfficientNetLite0.info());
        let made: Vec<(usize, f64)> = plan.views.iter().map(|a| (a.views, a.set.crop)).collect();
        assert_eq!(made, [(4, 0.7), (1, 0.5)]);
        assert_eq!(plan.views_per_image(), 5);
        assert_eq!(
            plan.groups.len(),
            4,
            "another augmentation, another head phase"
        );
        let text = plan.to_string();
        assert!(
            text.contains(
                "4 augmented views of each training image (hflip false, crop 0.7, colour 0)"
            ),
            "{text}"
        );
    }
}
