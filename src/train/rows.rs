//! Rows of recorded activations wherever they live (a tensor in memory, a memory-mapped cache
//! file), and views that pick some of them without copying: a study's split, a mini-batch.

use crate::model::{Classifier, Recorded};
use candle_core::{Device, Result, Tensor};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where the rows of one recorded tensor live; row i is image i of the pass that made them.
pub trait RowStorage: Send + Sync {
    /// How many rows it holds.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The rows at `index`, in its order, as one tensor [K, ...] on `device`.
    fn gather(&self, index: &[u32], device: &Device) -> Result<Tensor>;
}

impl RowStorage for Tensor {
    fn len(&self) -> usize {
        self.dims().first().copied().unwrap_or(0)
    }

    fn gather(&self, index: &[u32], device: &Device) -> Result<Tensor> {
        let index = Tensor::new(index, self.device())?;
        self.index_select(&index, 0)?.to_device(device)
    }
}

/// Some rows of a storage, in a chosen order: row i of the view is row `index[i]` there.
#[derive(Clone)]
pub struct Rows {
    storage: Arc<dyn RowStorage>,
    index: Arc<[u32]>,
    device: Device,
}

impl Rows {
    /// Every row of `storage`, in order; batches are made on `device`.
    pub fn all(storage: Arc<dyn RowStorage>, device: &Device) -> Rows {
        let index: Arc<[u32]> = (0..storage.len() as u32).collect();
        Rows {
            storage,
            index,
            device: device.clone(),
        }
    }

    /// How many rows the view has.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The view's rows at `positions` (each < `len`), as a view: nothing is copied.
    pub fn pick(&self, positions: &[u32]) -> Rows {
        Rows {
            storage: self.storage.clone(),
            index: positions.iter().map(|&p| self.index[p as usize]).collect(),
            device: self.device.clone(),
        }
    }

    /// The view's rows at `positions`, as one tensor.
    pub fn gather(&self, positions: &[u32]) -> Result<Tensor> {
        let index: Vec<u32> = positions.iter().map(|&p| self.index[p as usize]).collect();
        self.storage.gather(&index, &self.device)
    }

    /// `len` rows of the view from `start`, as one tensor.
    pub fn narrow(&self, start: usize, len: usize) -> Result<Tensor> {
        self.storage
            .gather(&self.index[start..start + len], &self.device)
    }

    /// Every row of the view, as one tensor.
    pub fn to_tensor(&self) -> Result<Tensor> {
        self.narrow(0, self.len())
    }
}

/// What a frozen pass recorded, as rows: the pooled features and each recorded boundary.
#[derive(Clone)]
pub struct RecordedRows {
    pub pooled: Rows,
    pub boundaries: BTreeMap<usize, Rows>,
}

impl RecordedRows {
    /// A pass's tensors kept in memory as they are.
    pub fn in_memory(recorded: Recorded, device: &Device) -> RecordedRows {
        let rows = |t: Tensor| Rows::all(Arc::new(t), device);
        RecordedRows {
            pooled: rows(recorded.pooled),
            boundaries: recorded
                .boundaries
                .into_iter()
                .map(|(b, t)| (b, rows(t)))
                .collect(),
        }
    }

    /// The rows at `positions` of every recorded tensor, as views.
    pub fn pick(&self, positions: &[u32]) -> RecordedRows {
        RecordedRows {
            pooled: self.pooled.pick(positions),
            boundaries: self
                .boundaries
                .iter()
                .map(|(&b, rows)| (b, rows.pick(positions)))
                .collect(),
        }
    }

    /// What `model` reads: the pooled features, or the recorded input of its first fine-tuned
    /// block.
    pub fn input_for(&self, model: &Classifier) -> anyhow::Result<&Rows> {
        match model.boundary() {
            None => Ok(&self.pooled),
            Some(boundary) => self.boundaries.get(&boundary).ok_or_else(|| {
                anyhow::anyhow!("the backbone pass did not record block {boundary}")
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_of_a_view_gathers_the_rows_it_names_in_its_order() {
        let cpu = Device::Cpu;
        let values: Vec<f32> = (0..10).map(|v| v as f32).collect();
        let storage: Arc<dyn RowStorage> =
            Arc::new(Tensor::from_vec(values, (5, 2), &cpu).unwrap());
        let all = Rows::all(storage, &cpu);
        let split = all.pick(&[4, 1, 3]);
        assert_eq!(split.len(), 3);
        let batch = split.gather(&[2, 0]).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(batch, [[6.0, 7.0], [8.0, 9.0]]);
        let tail = split.narrow(1, 2).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(tail, [[2.0, 3.0], [6.0, 7.0]]);
        assert_eq!(split.pick(&[1]).to_tensor().unwrap().dims(), [1, 2]);
    }
}
