//! Which studies share frozen work: one group per (backbone, weights file, image size), over
//! the union of their images and of the augmented views their trials train on.

use crate::catalogue::BackboneKind;
use crate::data::pass_input::PassInput;
use crate::data::Sample;
use crate::trial::Augment;
use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

/// What frozen work depends on besides the image itself: studies with equal keys can share
/// one decode and one backbone pass.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrozenKey {
    pub backbone: BackboneKind,
    /// The weights file's canonical path: two spellings of one file are one key.
    pub weights: PathBuf,
    pub image_size: usize,
}

/// What one study asks of the frozen work.
#[derive(Debug, Clone, Copy)]
pub struct StudyNeeds<'a> {
    pub key: &'a FrozenKey,
    pub train: &'a [Sample],
    pub val: &'a [Sample],
    /// Block indices whose inputs its trials start from.
    pub boundaries: &'a BTreeSet<usize>,
    /// The augmented views of each training image its trials train on (per view set).
    pub views: &'a [Augment],
    /// Trials left to run: a study with none needs no frozen work.
    pub trials: usize,
}

/// One decode and one backbone pass, shared by its members.
#[derive(Debug, Clone, PartialEq)]
pub struct FrozenGroup {
    pub key: FrozenKey,
    /// Indices of the member studies in the slice given to [`group`], in order.
    pub members: Vec<usize>,
    /// The members' images, train then val of each member in turn, then the views of its
    /// training images; each input once.
    pub inputs: Vec<PassInput>,
    /// Every boundary some member needs.
    pub boundaries: BTreeSet<usize>,
}

/// Group the studies that have trials to run by their frozen key, in order of first
/// appearance. A file (or view) named by several members is kept once (its label does not
/// matter: each study brings its own); a view set shared by members is made once, with the
/// most views any of them asks for.
pub fn group(studies: &[StudyNeeds]) -> Vec<FrozenGroup> {
    let mut groups: Vec<FrozenGroup> = Vec::new();
    let mut seen: Vec<HashSet<PassInput>> = Vec::new();
    for (i, study) in studies.iter().enumerate() {
        if study.trials == 0 {
            continue;
        }
        let at = match groups.iter().position(|g| g.key == *study.key) {
            Some(at) => at,
            None => {
                groups.push(FrozenGroup {
                    key: study.key.clone(),
                    members: Vec::new(),
                    inputs: Vec::new(),
                    boundaries: BTreeSet::new(),
                });
                seen.push(HashSet::new());
                groups.len() - 1
            }
        };
        let (group, seen) = (&mut groups[at], &mut seen[at]);
        group.members.push(i);
        let plain = study.train.iter().chain(study.val);
        let views = study.views.iter().flat_map(|augment| {
            (0..augment.views).flat_map(move |number| {
                study.train.iter().map(move |s| PassInput {
                    path: s.path.clone(),
                    view: Some((augment.set, number)),
                })
            })
        });
        let inputs = plain.map(|s| PassInput::plain(&s.path)).chain(views);
        group
            .inputs
            .extend(inputs.filter(|input| seen.insert(input.clone())));
        group.boundaries.extend(study.boundaries);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(weights: &str, image_size: usize) -> FrozenKey {
        FrozenKey {
            backbone: BackboneKind::EfficientNetLite0,
            weights: PathBuf::from(weights),
            image_size,
        }
    }

    fn samples(files: &[&str]) -> Vec<Sample> {
        files
            .iter()
            .map(|f| Sample {
                path: PathBuf::from(f),
                label: 0,
            })
            .collect()
    }

    fn paths(group: &FrozenGroup) -> Vec<&str> {
        group
            .inputs
            .iter()
            .filter(|input| input.view.is_none())
            .map(|input| input.path.to_str().unwrap())
            .collect()
    }

    fn needs<'a>(
        key: &'a FrozenKey,
        train: &'a [Sample],
        val: &'a [Sample],
        boundaries: &'a BTreeSet<usize>,
        trials: usize,
    ) -> StudyNeeds<'a> {
        StudyNeeds {
            key,
            train,
            val,
            boundaries,
            views: &[],
            trials,
        }
    }

    #[test]
    fn studies_on_one_key_share_a_group_over_the_union_of_images_and_boundaries() {
        let k = key("/m/lite0.safetensors", 64);
        let (heel_train, heel_val) = (samples(&["a", "b", "c"]), samples(&["d"]));
        let (gender_train, gender_val) = (samples(&["c", "a"]), samples(&["e", "d"]));
        let (heel_depths, gender_depths) = (BTreeSet::from([14]), BTreeSet::from([11, 14]));
        let groups = group(&[
            needs(&k, &heel_train, &heel_val, &heel_depths, 4),
            needs(&k, &gender_train, &gender_val, &gender_depths, 2),
        ]);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].key, k);
        assert_eq!(groups[0].members, [0, 1]);
        assert_eq!(paths(&groups[0]), ["a", "b", "c", "d", "e"]);
        assert_eq!(groups[0].boundaries, BTreeSet::from([11, 14]));
    }

    #[test]
    fn another_image_size_or_weights_file_is_another_group() {
        let (small, large) = (key("/m/a.safetensors", 64), key("/m/a.safetensors", 128));
        let other = key("/m/b.safetensors", 64);
        let images = samples(&["x", "y"]);
        let none = BTreeSet::new();
        let groups = group(&[
            needs(&small, &images, &[], &none, 1),
            needs(&large, &images, &[], &none, 1),
            needs(&other, &images, &[], &none, 1),
            needs(&small, &images, &[], &BTreeSet::from([3]), 1),
        ]);
        let members: Vec<(&FrozenKey, &[usize])> = groups
            .iter()
            .map(|g| (&g.key, g.members.as_slice()))
            .collect();
        assert_eq!(
            members,
            [
                (&small, &[0, 3][..]),
                (&large, &[1][..]),
                (&other, &[2][..])
            ]
        );
        assert!(groups.iter().all(|g| paths(g) == ["x", "y"]));
        assert_eq!(groups[0].boundaries, BTreeSet::from([3]));
        assert!(groups[1].boundaries.is_empty());
    }

    #[test]
    fn another_backbone_on_the_same_file_is_another_group() {
        let lite = key("/m/w.safetensors", 64);
        let inception = FrozenKey {
            backbone: BackboneKind::InceptionV3,
            ..lite.clone()
        };
        let images = samples(&["x"]);
        let none = BTreeSet::new();
        let groups = group(&[
            needs(&lite, &images, &[], &none, 1),
            needs(&inception, &images, &[], &none, 1),
        ]);
        assert_eq!(groups.len(), 2);
    }

    #[test]
    fn views_are_of_training_images_only_and_a_shared_view_set_is_made_once() {
        use crate::trial::ViewSet;
        let k = key("/m/a.safetensors", 64);
        let set = ViewSet {
            hflip: true,
            crop: 0.8,
            colour: 0.0,
        };
        let (train, val) = (samples(&["a", "b"]), samples(&["c"]));
        let none = BTreeSet::new();
        let two = [Augment { views: 2, set }];
        let three = [Augment { views: 3, set }];
        let study = |views| StudyNeeds {
            views,
            ..needs(&k, &train, &val, &none, 1)
        };
        let groups = group(&[study(&two), study(&three)]);
        let views: Vec<(&str, usize)> = groups[0]
            .inputs
            .iter()
            .filter_map(|i| Some((i.path.to_str()?, i.view?.1)))
            .collect();
        assert_eq!(
            views,
            [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)],
            "no view of the validation image c, and each view once"
        );
        assert_eq!(paths(&groups[0]), ["a", "b", "c"]);
    }

    #[test]
    fn a_study_with_nothing_to_run_gets_no_group() {
        let k = key("/m/a.safetensors", 64);
        let (done, todo) = (samples(&["old"]), samples(&["new"]));
        let none = BTreeSet::new();
        let groups = group(&[
            needs(&k, &done, &[], &BTreeSet::from([5]), 0),
            needs(&k, &todo, &[], &none, 3),
        ]);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].members, [1]);
        assert_eq!(paths(&groups[0]), ["new"]);
        assert!(groups[0].boundaries.is_empty());
        assert!(group(&[needs(&k, &done, &[], &none, 0)]).is_empty());
    }
}
