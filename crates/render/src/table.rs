//! Aligned columns, like lsof and ss print them.

use std::fmt::Write;

pub struct Table {
    rows: Vec<Vec<String>>,
    /// Columns aligned right (numbers).
    right: Vec<bool>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
            right: vec![false; header.len()],
        }
    }

    pub fn right(mut self, col: usize) -> Self {
        if let Some(r) = self.right.get_mut(col) {
            *r = true;
        }
        self
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub fn len(&self) -> usize {
        self.rows.len() - 1
    }

    /// Renders with `indent` spaces before each line; the last column is never padded.
    pub fn render(&self, indent: usize, header_style: (&str, &str)) -> String {
        let ncol = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut width = vec![0usize; ncol];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                width[i] = width[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for (r, row) in self.rows.iter().enumerate() {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                let last = i + 1 == row.len();
                let pad = width[i].saturating_sub(cell.chars().count());
                if self.right.get(i).copied().unwrap_or(false) {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    if !last {
                        line.push_str(&" ".repeat(pad));
                    }
                }
                if !last {
                    line.push_str("  ");
                }
            }
            let line = line.trim_end();
            if r == 0 {
                let _ = writeln!(
                    out,
                    "{}{}{line}{}",
                    " ".repeat(indent),
                    header_style.0,
                    header_style.1
                );
            } else {
                let _ = writeln!(out, "{}{line}", " ".repeat(indent));
            }
        }
        out
    }
}
