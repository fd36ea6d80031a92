//! What augmentation a trial trains with, as its settings say: how many views of each training
//! image, and how each view is drawn (the view set).

use std::hash::{Hash, Hasher};

/// How one augmented view of an image is drawn from it (each draw seeded per image and view).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewSet {
    /// Mirror left-right with probability 1/2.
    pub hflip: bool,
    /// Random resized crop: the least share of the image's area a view keeps (1 = no crop).
    pub crop: f64,
    /// Brightness, contrast and saturation each scaled by a factor in [1 - colour, 1 + colour].
    pub colour: f64,
}

// Grid values are checked finite and -0.0 is written 0.0, so equal bits are equal settings.
impl Eq for ViewSet {}

impl Hash for ViewSet {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.hflip, self.crop.to_bits(), self.colour.to_bits()).hash(state);
    }
}

impl ViewSet {
    /// The canonical words for the view set: what seeds its views and names it in output.
    pub fn describe(&self) -> String {
        format!(
            "hflip {}, crop {}, colour {}",
            self.hflip, self.crop, self.colour
        )
    }
}

/// A trial's augmentation: `views` seeded views of each training image, drawn as `set` says;
/// each epoch trains on one of them per image. Validation images are never augmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Augment {
    pub views: usize,
    pub set: ViewSet,
}
