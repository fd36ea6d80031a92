//! The closed vocabularies of training and the store: each enum's names are derived once.

use std::str::FromStr;
use strum::VariantNames;

/// Declares a closed vocabulary: the enum with its names derived once by strum (give
/// `#[strum(serialize_all = ...)]` or a `#[strum(serialize = ...)]` per variant) and serde
/// using the same names, so a grid file, the store, a model card and an error message spell
/// each variant alike.
#[macro_export]
macro_rules! vocabulary {
    ($(#[$attr:meta])* $vis:vis enum $name:ident { $($body:tt)* }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[derive(strum::Display, strum::EnumString, strum::IntoStaticStr, strum::VariantNames)]
        #[derive(serde_with::SerializeDisplay, serde_with::DeserializeFromStr)]
        $(#[$attr])*
        $vis enum $name { $($body)* }
    };
}

/// A closed vocabulary: an enum whose variants each have one name, derived once (strum's
/// `serialize_all`), which serde, grid files, the store and error messages all use.
pub trait Vocabulary: Copy + FromStr + VariantNames + Into<&'static str> {
    /// The variant's name, as grid files and the store spell it.
    fn as_str(self) -> &'static str {
        self.into()
    }

    /// The variant of that name; None when unknown.
    fn parse(name: &str) -> Option<Self> {
        name.parse().ok()
    }

    /// Every name, as an error message lists them: "a, b or c".
    fn choices() -> String {
        list_choices(Self::VARIANTS)
    }
}

impl<T: Copy + FromStr + VariantNames + Into<&'static str>> Vocabulary for T {}

vocabulary! {
    /// The optimiser used by both phases.
    #[strum(serialize_all = "lowercase")]
    pub enum Optimizer {
        Adam,
        AdamW,
        Sgd,
    }
}

vocabulary! {
    /// What early stopping watches and what a report ranks by.
    #[derive(Default)]
    #[strum(serialize_all = "snake_case")]
    pub enum Objective {
        #[default]
        Accuracy,
        BalancedAccuracy,
        F1,
        ValLoss,
    }
}

impl Objective {
    /// False only for `val_loss`, where lower is better.
    pub fn higher_is_better(self) -> bool {
        self != Objective::ValLoss
    }
}

vocabulary! {
    /// How the training loss weighs each class.
    #[derive(Default)]
    #[strum(serialize_all = "lowercase")]
    pub enum ClassWeights {
        /// Every sample counts the same.
        #[default]
        None,
        /// Class c weighs n_samples / (n_classes * count_c), from the training labels.
        Balanced,
    }
}

vocabulary! {
    /// How the learning rate moves within a phase.
    #[derive(Default)]
    #[strum(serialize_all = "lowercase")]
    pub enum LrSchedule {
        /// The phase's rate at every step.
        #[default]
        Constant,
        /// Half a cosine from the phase's rate down to 0 over its most epochs' steps (as
        /// PyTorch's `CosineAnnealingLR` with `T_max` = those steps and `eta_min` = 0).
        Cosine,
    }
}

vocabulary! {
    /// Life cycle of a trial in the store.
    #[strum(serialize_all = "lowercase")]
    pub enum TrialState {
        Pending,
        Running,
        Complete,
        Failed,
    }
}

impl TrialState {
    pub fn is_finished(self) -> bool {
        matches!(self, TrialState::Complete | TrialState::Failed)
    }
}

vocabulary! {
    /// Which phase of training an epoch belongs to.
    #[strum(serialize_all = "lowercase")]
    pub enum Phase {
        /// Head trained on the frozen backbone.
        Head,
        /// Last blocks unfrozen and fine-tuned with the head.
        Finetune,
    }
}

/// Names as an error message lists them: "a, b or c".
pub fn list_choices(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_strum_and_serde() {
        assert_eq!(Optimizer::VARIANTS, ["adam", "adamw", "sgd"]);
        assert_eq!(Objective::BalancedAccuracy.as_str(), "balanced_accuracy");
        assert_eq!(Objective::parse("val_loss"), Some(Objective::ValLoss));
        assert_eq!(Objective::parse("loss"), None);
        assert_eq!(TrialState::Complete.to_string(), "complete");
        let json = serde_json::to_string(&Phase::Finetune).unwrap();
        assert_eq!(json, "\"finetune\"");
        assert_eq!(
            serde_json::from_str::<Phase>(&json).unwrap(),
            Phase::Finetune
        );
        assert!(serde_json::from_str::<ClassWeights>("\"auto\"").is_err());
    }

    #[test]
    fn choices_read_as_a_sentence() {
        assert_eq!(
            Objective::choices(),
            "accuracy, balanced_accuracy, f1 or val_loss"
        );
        assert_eq!(ClassWeights::choices(), "none or balanced");
        assert_eq!(list_choices(&["one"]), "one");
    }
}
