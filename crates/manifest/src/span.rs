//! Source positions: byte offsets plus 1-based line and column.

/// One position in the source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// Byte offset from the start of the source (after a BOM, the BOM still counts).
    pub offset: usize,
    /// Line, starting at 1.
    pub line: usize,
    /// Column in characters, starting at 1.
    pub column: usize,
}

/// A range in the source text, `start` inclusive and `end` exclusive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// First position covered.
    pub start: Pos,
    /// First position after the range.
    pub end: Pos,
}

impl Span {
    /// The byte range, as miette and slicing want it.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start.offset..self.end.offset.max(self.start.offset)
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.end.offset.saturating_sub(self.start.offset)
    }

    /// Whether the span covers no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Maps the parser's character indexes to byte offsets.
pub(crate) struct CharToByte<'a> {
    src: &'a str,
    /// (char index, byte offset) of the last lookup, so sequential lookups stay linear.
    last: (usize, usize),
    ascii: bool,
    base: usize,
    /// Lines before `src` starts (when it is the rest of a longer text).
    line_base: usize,
}

impl<'a> CharToByte<'a> {
    /// `base` is added to every offset (the length of a stripped BOM).
    pub(crate) fn new(src: &'a str, base: usize) -> Self {
        CharToByte {
            src,
            last: (0, 0),
            ascii: src.is_ascii(),
            base,
            line_base: 0,
        }
    }

    /// The same, for a `src` that starts on line `line_base + 1` of the whole text.
    pub(crate) fn with_line_base(mut self, line_base: usize) -> Self {
        self.line_base = line_base;
        self
    }

    pub(crate) fn pos(&mut self, m: saphyr_parser::Marker) -> Pos {
        Pos {
            offset: self.byte(m.index()) + self.base,
            line: m.line() + self.line_base,
            column: m.col() + 1,
        }
    }

    fn byte(&mut self, char_index: usize) -> usize {
        if self.ascii {
            return char_index.min(self.src.len());
        }
        let (mut ci, mut bi) = self.last;
        if char_index < ci {
            ci = 0;
            bi = 0;
        }
        let mut chars = self.src[bi..].char_indices();
        while ci < char_index {
            match chars.next() {
                Some((_, c)) => {
                    bi += c.len_utf8();
                    ci += 1;
                }
                None => break,
            }
        }
        self.last = (ci, bi);
        bi
    }
}
