//! Images decoded in bounded batches straight into the work on them: the next images decode
//! while earlier batches are worked on, so memory holds a few batches, never every image.

use super::decode::DecodeError;
use rayon::prelude::*;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::sync::mpsc;

/// How a stream's batches are formed and worked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamShape {
    /// Readable images per batch: batches are runs of this many readable images from the
    /// first, in input order (inputs that do not decode are left out; the last may be smaller).
    pub batch: usize,
    /// Batches worked on side by side on the rayon pool; 0: one after another on the calling
    /// thread (a GPU's one stream), while the next images decode on the pool.
    pub side_by_side: usize,
}

/// Decoded images: which inputs they are (ascending), and their bytes one after another.
#[derive(Debug, Default)]
pub struct PixelBatch {
    pub items: Vec<usize>,
    pub pixels: Vec<u8>,
}

/// What a stream tells its caller, in order: inputs that could not be decoded as they are
/// found, and each batch's result in batch order.
#[derive(Debug)]
pub enum Streamed<R> {
    Unreadable(usize, DecodeError),
    Worked(Vec<usize>, R),
}

enum Event<R> {
    Decoded(Range<usize>, Vec<Result<Vec<u8>, DecodeError>>),
    Worked(usize, Vec<usize>, anyhow::Result<R>),
}

/// Decode `items` with `decode` (on the rayon pool, `side_by_side` batches' worth of inputs at
/// a time, the next while the last are worked on) and run `work` over each batch of readable
/// images as `shape` says, handing `done` what happens in order. At most `side_by_side`
/// batches are worked on or waiting to be handed over, and as many decoded ahead, so memory
/// holds `(4 x side_by_side + 2) x batch` decoded images at most (6 batches one after another).
/// The first error (of `work` or `done`) stops the stream once the batches already started
/// are over.
pub fn decode_streamed<T: Sync, R: Send>(
    items: &[T],
    shape: StreamShape,
    decode: &(dyn Fn(&T) -> Result<Vec<u8>, DecodeError> + Sync),
    work: &(dyn Fn(&PixelBatch) -> anyhow::Result<R> + Sync),
    done: &mut dyn FnMut(Streamed<R>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let batch = shape.batch.max(1);
    let window = shape.side_by_side;
    // Decoding runs this many batches ahead, a slice of as many at a time, so that a core
    // finishing a batch finds the next one decoded.
    let ahead = window.max(1);
    rayon::in_place_scope(|scope| {
        let (tx, rx) = mpsc::channel::<Event<R>>();
        let (mut next, mut decoding) = (0, false);
        let mut forming = PixelBatch::default();
        let mut ready: VecDeque<PixelBatch> = VecDeque::new();
        let (mut started, mut delivered) = (0, 0);
        let mut finished: BTreeMap<usize, (Vec<usize>, anyhow::Result<R>)> = BTreeMap::new();
        loop {
            if !decoding && next < items.len() && ready.len() <= ahead {
                let slice = next..(next + batch * ahead).min(items.len());
                next = slice.end;
                decoding = true;
                let tx = tx.clone();
                scope.spawn(move |_| {
                    let decoded = items[slice.clone()].par_iter().map(decode).collect();
                    let _ = tx.send(Event::Decoded(slice, decoded));
                });
            }
            if window == 0 {
                if let Some(pixels) = ready.pop_front() {
                    let result = work(&pixels)?;
                    done(Streamed::Worked(pixels.items, result))?;
                    continue;
                }
            }
            while started - delivered < window {
                let Some(pixels) = ready.pop_front() else {
                    break;
                };
                let (tx, k) = (tx.clone(), started);
                started += 1;
                scope.spawn(move |_| {
                    let result = work(&pixels);
                    let _ = tx.send(Event::Worked(k, pixels.items, result));
                });
            }
            if !decoding && started == delivered {
                debug_assert!(ready.is_empty() && next == items.len());
                return Ok(());
            }
            match wait(&rx) {
                Event::Decoded(slice, decoded) => {
                    decoding = false;
                    for (i, result) in slice.zip(decoded) {
                        match result {
                            Ok(pixels) => {
                                forming.items.push(i);
                                forming.pixels.extend_from_slice(&pixels);
                                if forming.items.len() == batch {
                                    ready.push_back(std::mem::take(&mut forming));
                                }
                            }
                            Err(reason) => done(Streamed::Unreadable(i, reason))?,
                        }
                    }
                    if next == items.len() && !forming.items.is_empty() {
                        ready.push_back(std::mem::take(&mut forming));
                    }
                }
                Event::Worked(k, batch_items, result) => {
                    finished.insert(k, (batch_items, result));
                    while let Some((batch_items, result)) = finished.remove(&delivered) {
                        delivered += 1;
                        done(Streamed::Worked(batch_items, result?))?;
                    }
                }
            }
        }
    })
}

/// The next event; a rayon worker waiting for it runs the pool's other work meanwhile (so a
/// stream started on the pool cannot deadlock it).
fn wait<R>(rx: &mpsc::Receiver<Event<R>>) -> Event<R> {
    if rayon::current_thread_index().is_none() {
        return rx.recv().expect("the stream holds a sender");
    }
    loop {
        if let Ok(event) = rx.try_recv() {
            return event;
        }
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Input i decodes to the one byte i, except multiples of 5, which are unreadable.
    fn decode(i: &usize) -> Result<Vec<u8>, DecodeError> {
        if i.is_multiple_of(5) {
            Err(DecodeError::Unreadable(format!("{i} is a multiple of 5")))
        } else {
            Ok(vec![*i as u8])
        }
    }

    /// The batches and unreadable inputs a stream of `n` inputs hands over, in order, with the
    /// most batches ever worked on at once.
    fn stream(n: usize, shape: StreamShape) -> (Vec<Vec<u8>>, Vec<usize>, usize) {
        let items: Vec<usize> = (0..n).collect();
        let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let work = |b: &PixelBatch| -> anyhow::Result<Vec<u8>> {
            let at_once = now.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(at_once, Ordering::SeqCst);
            assert_eq!(b.pixels.len(), b.items.len());
            let bytes = b.items.iter().map(|&i| i as u8).collect::<Vec<_>>();
            assert_eq!(bytes, b.pixels, "pixels belong to their items");
            now.fetch_sub(1, Ordering::SeqCst);
            Ok(b.pixels.clone())
        };
        let (mut batches, mut unreadable) = (Vec::new(), Vec::new());
        decode_streamed(&items, shape, &decode, &work, &mut |event| {
            match event {
                Streamed::Unreadable(i, _) => unreadable.push(i),
                Streamed::Worked(_, pixels) => batches.push(pixels),
            }
            Ok(())
        })
        .unwrap();
        (batches, unreadable, most.into_inner())
    }

    #[test]
    fn batches_are_runs_of_readable_inputs_in_order_and_at_most_the_window_run_at_once() {
        let readable: Vec<u8> = (0..103u8).filter(|i| !i.is_multiple_of(5)).collect();
        let expected: Vec<Vec<u8>> = readable.chunks(7).map(<[u8]>::to_vec).collect();
        for side_by_side in [0, 1, 3] {
            let shape = StreamShape {
                batch: 7,
                side_by_side,
            };
            let (batches, unreadable, most) = stream(103, shape);
            assert_eq!(batches, expected, "{shape:?}");
            assert_eq!(unreadable, (0..103).step_by(5).collect::<Vec<_>>());
            assert!(most <= side_by_side.max(1), "{most} at once, {shape:?}");
        }
        let (batches, unreadable, _) = stream(
            0,
            StreamShape {
                batch: 7,
                side_by_side: 2,
            },
        );
        assert!(batches.is_empty() && unreadable.is_empty());
    }

    #[test]
    fn the_first_error_stops_the_stream() {
        let items: Vec<usize> = (0..200).collect();
        let shape = StreamShape {
            batch: 4,
            side_by_side: 2,
        };
        let worked = AtomicUsize::new(0);
        let work = |b: &PixelBatch| -> anyhow::Result<()> {
            worked.fetch_add(1, Ordering::SeqCst);
            anyhow::ensure!(b.items[0] < 20, "stopped at {}", b.items[0]);
            Ok(())
        };
        let error = decode_streamed(&items, shape, &decode, &work, &mut |_| Ok(())).unwrap_err();
        assert!(error.to_string().starts_with("stopped at"), "{error}");
        // The batches already started finish, no more: 200 inputs make 40 batches.
        assert!(worked.into_inner() < 12);
    }
}
