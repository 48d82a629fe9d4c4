//! Input files: their format (by extension), block-wise reading that never splits a CSV record,
//! and the parsing of single fields shared by the lead and event readers.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::BatchError;

/// The format of an input file, chosen by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    pub fn of(path: &Path) -> Result<Format, BatchError> {
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("csv") => Ok(Format::Csv),
            Some("jsonl" | "ndjson") => Ok(Format::JsonLines),
            _ => Err(BatchError::UnknownFormat { path: path.to_path_buf() }),
        }
    }
}

/// Reads a file in large blocks, each ending at a record boundary: a newline outside CSV quotes.
/// Blocks can then be parsed independently (in parallel) with their first line number.
pub struct Blocks {
    file: File,
    path: String,
    carry: Vec<u8>,
    /// Line number of the first line of the next block.
    next_line: u64,
    done: bool,
    block_size: usize,
    csv_quotes: bool,
    /// Bytes not read yet, as the file's size said when opened (bounds buffer sizes).
    unread: u64,
}

/// One block of whole records.
pub struct Block {
    pub bytes: Vec<u8>,
    pub first_line: u64,
}

impl Blocks {
    pub fn open(path: &Path, csv_quotes: bool) -> Result<Blocks, BatchError> {
        let file = File::open(path).map_err(|source| BatchError::Read { path: path.to_path_buf(), source })?;
        let unread = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Blocks {
            unread,
            file,
            path: path.display().to_string(),
            carry: Vec::new(),
            next_line: 1,
            done: false,
            block_size: 32 << 20,
            csv_quotes,
        })
    }

    pub fn len(&self) -> u64 {
        self.file.metadata().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next block, or `None` at the end of the file.
    pub fn next_block(&mut self) -> Result<Option<Block>, BatchError> {
        self.next_block_reusing(Vec::new())
    }

    /// The next block, read into `buffer`'s memory (a block already processed) when given one.
    pub fn next_block_reusing(&mut self, mut buffer: Vec<u8>) -> Result<Option<Block>, BatchError> {
        if self.done {
            return Ok(None);
        }
        buffer.clear();
        buffer.extend_from_slice(&self.carry);
        self.carry.clear();
        let mut bytes = buffer;
        let start = bytes.len();
        // One byte more than the file holds lets the read notice the end without a second call.
        let room = (self.block_size as u64).min(self.unread + 1) as usize;
        bytes.resize(start + room.max(1), 0);
        let mut filled = start;
        while filled < bytes.len() {
            let n = self
                .file
                .read(&mut bytes[filled..])
                .map_err(|source| BatchError::Read { path: self.path.clone().into(), source })?;
            if n == 0 {
                self.done = true;
                break;
            }
            filled += n;
            self.unread = self.unread.saturating_sub(n as u64);
        }
        bytes.truncate(filled);
        if !self.done {
            let cut = record_boundary(&bytes, self.csv_quotes);
            match cut {
                Some(cut) => {
                    self.carry.extend_from_slice(&bytes[cut..]);
                    bytes.truncate(cut);
                }
                // One record longer than a block: keep reading into it.
                None => {
                    self.carry = bytes;
                    self.block_size *= 2;
                    return self.next_block_reusing(Vec::new());
                }
            }
        }
        if bytes.is_empty() && self.done {
            return Ok(None);
        }
        let first_line = self.next_line;
        self.next_line += memchr::memchr_iter(b'\n', &bytes).count() as u64;
        Ok(Some(Block { bytes, first_line }))
    }
}

/// The end (just after the newline) of the last complete record in `bytes`.
fn record_boundary(bytes: &[u8], csv_quotes: bool) -> Option<usize> {
    if !csv_quotes {
        return memchr::memrchr(b'\n', bytes).map(|i| i + 1);
    }
    // A newline ends a record when an even number of quotes precede it ("" escapes keep parity).
    // The quotes are counted in one vectorised pass, then newlines are tried from the end, each
    // step back taking off the quotes it passes: the last newline is usually the answer, so the
    // cost is two scans, not a stop at every line of the block.
    let mut quotes_before = memchr::memchr_iter(b'"', bytes).count();
    for i in memchr::memrchr2_iter(b'"', b'\n', bytes) {
        if bytes[i] == b'"' {
            quotes_before -= 1;
        } else if quotes_before.is_multiple_of(2) {
            return Some(i + 1);
        }
    }
    None
}

/// Calls `process` on every block of the file in order while a background thread reads the next
/// one, so that reading overlaps parsing. Block buffers are recycled to avoid fresh page faults.
pub fn for_each_block<E: From<BatchError> + Send>(
    mut blocks: Blocks,
    mut process: impl FnMut(&Block) -> Result<(), E>,
) -> Result<(), E> {
    use std::sync::mpsc::{channel, sync_channel};
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = sync_channel::<Result<Block, BatchError>>(1);
        let (empty_tx, empty_rx) = channel::<Vec<u8>>();
        scope.spawn(move || {
            loop {
                let buffer = empty_rx.try_recv().unwrap_or_default();
                match blocks.next_block_reusing(buffer) {
                    Ok(Some(block)) => {
                        if full_tx.send(Ok(block)).is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(error) => {
                        let _ = full_tx.send(Err(error));
                        return;
                    }
                }
            }
        });
        for block in full_rx {
            let block = block?;
            process(&block)?;
            let _ = empty_tx.send(block.bytes);
        }
        Ok(())
    })
}

/// Splits a block into about `parts` pieces at record boundaries, each with its first line.
pub fn split_block(block: &Block, parts: usize, csv_quotes: bool) -> Vec<(&[u8], u64)> {
    let bytes = &block.bytes[..];
    let target = (bytes.len() / parts.max(1)).max(1 << 16);
    let mut pieces = Vec::with_capacity(parts);
    let mut start = 0;
    let mut line = block.first_line;
    while start < bytes.len() {
        let mut end = (start + target).min(bytes.len());
        if end < bytes.len() {
            end = match record_boundary(&bytes[start..end], csv_quotes) {
                Some(cut) if cut > 0 => start + cut,
                _ => bytes.len(),
            };
        }
        pieces.push((&bytes[start..end], line));
        line += memchr::memchr_iter(b'\n', &bytes[start..end]).count() as u64;
        start = end;
    }
    pieces
}

/// Splits one CSV line without quotes at `separator` into field ranges; `false` if it has quotes
/// (the caller then uses the full CSV parser) or not exactly `n_fields` fields.
pub fn split_plain_line(line: &[u8], separator: u8, n_fields: usize, fields: &mut Vec<(usize, usize)>) -> bool {
    fields.clear();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut start = 0;
    for comma in memchr::memchr_iter(separator, line) {
        fields.push((start, comma));
        start = comma + 1;
    }
    fields.push((start, line.len()));
    fields.len() == n_fields
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every newline's quote parity, from the start: the definition the fast search must meet.
    fn last_boundary_by_walking(bytes: &[u8]) -> Option<usize> {
        let mut quotes = 0usize;
        let mut last = None;
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'"' => quotes += 1,
                b'\n' if quotes.is_multiple_of(2) => last = Some(i + 1),
                _ => {}
            }
        }
        last
    }

    proptest::proptest! {
        #[test]
        fn the_boundary_is_the_last_newline_outside_quotes(text in "[a\",\n]{0,200}") {
            proptest::prop_assert_eq!(record_boundary(text.as_bytes(), true), last_boundary_by_walking(text.as_bytes()));
        }
    }

    #[test]
    fn boundaries_skip_quoted_newlines() {
        let text = b"a,\"x\ny\"\nb,c\n\"open\nquote";
        assert_eq!(record_boundary(text, true), Some(12));
        assert_eq!(record_boundary(b"no newline", true), None);
        assert_eq!(record_boundary(text, false), Some(text.iter().rposition(|b| *b == b'\n').unwrap() + 1));
    }

    #[test]
    fn blocks_cover_the_file_and_count_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        let mut text = String::from("h1,h2\n");
        for i in 0..5000 {
            text.push_str(&format!("{i},\"multi\nline {i}\"\n"));
        }
        std::fs::write(&path, &text).unwrap();
        let mut blocks = Blocks::open(&path, true).unwrap();
        blocks.block_size = 1000;
        let mut joined = Vec::new();
        let mut expected_line = 1;
        while let Some(block) = blocks.next_block().unwrap() {
            assert_eq!(block.first_line, expected_line);
            expected_line += block.bytes.iter().filter(|b| **b == b'\n').count() as u64;
            for (piece, _) in split_block(&block, 3, true) {
                assert!(piece.ends_with(b"\n"));
                joined.extend_from_slice(piece);
            }
        }
        assert_eq!(joined, text.as_bytes());
    }
}
