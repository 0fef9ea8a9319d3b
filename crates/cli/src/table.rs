//! A text table whose columns are as wide as their widest cell, so that no cell pushes the
//! next column's text out of line. Widths count characters (`✔` is one): berth's cells are
//! names, numbers and states, not wide scripts.

/// Rows of cells under a header; every column but the last padded to its widest cell.
pub struct Table {
    header: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Row>,
}

enum Row {
    Cells(Vec<String>),
    /// A line of its own under the previous row, indented to the second column (a failed
    /// release's reason), not measured.
    Note(String),
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            right: vec![false; header.len()],
            rows: vec![],
        }
    }

    /// Aligns column `i` to the right (durations, counts).
    pub fn right(mut self, i: usize) -> Self {
        if let Some(r) = self.right.get_mut(i) {
            *r = true;
        }
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(Row::Cells(cells));
    }

    pub fn note(&mut self, text: String) {
        self.rows.push(Row::Note(text));
    }

    /// The table as text, one line per row, each ending in a newline.
    pub fn render(&self) -> String {
        let len = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.header.iter().map(|h| len(h)).collect();
        for row in &self.rows {
            if let Row::Cells(cells) = row {
                for (i, c) in cells.iter().enumerate() {
                    if i < widths.len() {
                        widths[i] = widths[i].max(len(c));
                    }
                }
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, c) in cells.iter().enumerate() {
                let last = i + 1 == cells.len();
                let pad = widths.get(i).copied().unwrap_or(0).saturating_sub(len(c));
                if self.right.get(i).copied().unwrap_or(false) {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(c);
                } else {
                    out.push_str(c);
                    if !last {
                        out.push_str(&" ".repeat(pad));
                    }
                }
                if !last {
                    out.push_str("   ");
                }
            }
            out.truncate(out.trim_end().len());
            out.push('\n');
            out
        };
        let mut out = line(&self.header);
        let indent = widths.first().copied().unwrap_or(0) + 3;
        for row in &self.rows {
            match row {
                Row::Cells(cells) => out.push_str(&line(cells)),
                Row::Note(text) => {
                    out.push_str(&" ".repeat(indent));
                    out.push_str(text);
                    out.push('\n');
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let mut t = Table::new(&["A", "STATUS", "N", "LAST"]).right(2);
        t.row(vec![
            "1".into(),
            "succeeded (rollback to 3)".into(),
            "1.5s".into(),
            "x".into(),
        ]);
        t.row(vec!["10".into(), "ok".into(), "12.25s".into(), "y".into()]);
        t.note("why".into());
        assert_eq!(
            t.render(),
            "A    STATUS                           N   LAST\n\
             1    succeeded (rollback to 3)     1.5s   x\n\
             10   ok                          12.25s   y\n     why\n"
        );
    }
}
