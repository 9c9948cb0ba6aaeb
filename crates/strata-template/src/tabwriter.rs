//! Go's `text/tabwriter`, the way docker configures it for tables (minimum cell width
//! 10, padding 3, spaces): tab-terminated cells of consecutive lines form a column, and
//! a column is as wide as its widest cell plus the padding.

/// A cell: its bytes in the buffer, its width in characters, whether a tab ended it.
#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    size: usize,
    width: usize,
    htab: bool,
}

/// Aligns tab-separated text into columns, as Go's `tabwriter.Writer` with padding
/// character `' '` and no flags. Write text with [`TabWriter::write`]; [`TabWriter::finish`]
/// returns the aligned text.
///
/// ```
/// let mut w = strata_template::TabWriter::new(10, 3);
/// w.write("REPOSITORY\tTAG\na\tb\n");
/// assert_eq!(w.finish(), "REPOSITORY   TAG\na            b\n");
/// ```
#[derive(Debug, Clone)]
pub struct TabWriter {
    minwidth: usize,
    padding: usize,
    buf: String,
    /// Where the text not yet counted into the current cell's width starts.
    pos: usize,
    cell: Cell,
    lines: Vec<Vec<Cell>>,
    widths: Vec<usize>,
    out: String,
}

impl TabWriter {
    /// A writer whose cells are at least `minwidth` wide, with `padding` spaces added to
    /// the widest text of a column (docker: 10 and 3).
    pub fn new(minwidth: usize, padding: usize) -> TabWriter {
        TabWriter {
            minwidth,
            padding,
            buf: String::new(),
            pos: 0,
            cell: Cell::default(),
            lines: vec![Vec::new()],
            widths: Vec::new(),
            out: String::new(),
        }
    }

    /// Add text. A line with no tab ends the block of lines whose columns align together.
    pub fn write(&mut self, text: &str) {
        let mut start = 0;
        for (i, c) in text.char_indices() {
            if !matches!(c, '\t' | '\x0b' | '\n' | '\x0c') {
                continue;
            }
            self.append(&text[start..i]);
            self.update_width();
            start = i + 1;
            let cells = self.terminate_cell(c == '\t');
            if c == '\n' || c == '\x0c' {
                self.lines.push(Vec::new());
                if c == '\x0c' || cells == 1 {
                    self.flush();
                }
            }
        }
        self.append(&text[start..]);
    }

    /// Align what is buffered and return all the text.
    pub fn finish(mut self) -> String {
        self.flush();
        self.out
    }

    fn append(&mut self, text: &str) {
        self.buf.push_str(text);
        self.cell.size += text.len();
    }

    fn update_width(&mut self) {
        self.cell.width += self.buf.get(self.pos..).map_or(0, |s| s.chars().count());
        self.pos = self.buf.len();
    }

    fn terminate_cell(&mut self, htab: bool) -> usize {
        self.cell.htab = htab;
        let cell = std::mem::take(&mut self.cell);
        match self.lines.last_mut() {
            Some(line) => {
                line.push(cell);
                line.len()
            }
            None => {
                self.lines.push(vec![cell]);
                1
            }
        }
    }

    fn flush(&mut self) {
        if self.cell.size > 0 {
            self.update_width();
            self.terminate_cell(false);
        }
        let n = self.lines.len();
        self.format(0, 0, n);
        self.buf.clear();
        self.pos = 0;
        self.cell = Cell::default();
        self.lines = vec![Vec::new()];
        self.widths.clear();
    }

    fn format(&mut self, pos0: usize, line0: usize, line1: usize) -> usize {
        let mut pos = pos0;
        let mut line0 = line0;
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            // A cell in this column: the lines before it print with the widths so far.
            pos = self.write_lines(pos, line0, this);
            line0 = this;
            // The block of consecutive lines with a cell in this column.
            let mut width = self.minwidth;
            while this < line1 {
                let line = &self.lines[this];
                if column + 1 >= line.len() {
                    break;
                }
                width = width.max(line[column].width + self.padding);
                this += 1;
            }
            self.widths.push(width);
            pos = self.format(pos, line0, this);
            self.widths.pop();
            line0 = this;
        }
        self.write_lines(pos, line0, line1)
    }

    fn write_lines(&mut self, pos0: usize, line0: usize, line1: usize) -> usize {
        let mut pos = pos0;
        for i in line0..line1 {
            for (j, c) in self.lines[i].iter().enumerate() {
                if c.size > 0 {
                    self.out.push_str(self.buf.get(pos..pos + c.size).unwrap_or(""));
                    pos += c.size;
                }
                if let Some(w) = self.widths.get(j) {
                    self.out.extend(std::iter::repeat_n(' ', w.saturating_sub(c.width)));
                }
            }
            if i + 1 == self.lines.len() {
                // The last buffered line has no newline yet.
                self.out.push_str(self.buf.get(pos..pos + self.cell.size).unwrap_or(""));
                pos += self.cell.size;
            } else {
                self.out.push('\n');
            }
        }
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tab(text: &str) -> String {
        let mut w = TabWriter::new(10, 3);
        w.write(text);
        w.finish()
    }

    #[test]
    fn aligns_like_docker() {
        assert_eq!(
            tab("REPOSITORY\tTAG\tIMAGE ID\nfmtx-probe\t1\tdd0da221ad19\n"),
            "REPOSITORY   TAG       IMAGE ID\nfmtx-probe   1         dd0da221ad19\n"
        );
        // The last cell of a line is not in a column; empty cells are padded.
        assert_eq!(tab("a\t\tc\nbb\t\td\n"), "a                   c\nbb                  d\n");
        // A line without a tab ends the block: the next lines align on their own.
        assert_eq!(tab("aaaaaaaaaaaaaaa\tx\nplain\nb\ty\n"), "aaaaaaaaaaaaaaa   x\nplain\nb         y\n");
        // Widths count characters, not bytes.
        assert_eq!(tab("é\tx\n"), "é         x\n");
        assert_eq!(tab("no newline"), "no newline");
    }
}
