//! How the report's text is styled and laid out: values escaped and bounded, colour around
//! them, sentences word-wrapped.

use hangscope_model::Escape;

use super::TextOptions;

pub(super) struct Style {
    pub(super) on: bool,
    /// Longest value shown, in characters of its escaped form.
    pub(super) max: usize,
}

/// A value is cut after this many characters, with -v after `VALUE_MAX_VERBOSE`: a path fits
/// whole in the first, PATH_MAX bytes escaped in the second; a 1 MB argv fits in neither.
const VALUE_MAX: usize = 512;
const VALUE_MAX_VERBOSE: usize = 16 * 1024;
/// A sentence holds this many values' worth.
const SENTENCE_VALUES: usize = 4;

impl Style {
    pub(super) fn new(opts: &TextOptions) -> Style {
        Style {
            on: opts.color,
            max: if opts.verbose {
                VALUE_MAX_VERBOSE
            } else {
                VALUE_MAX
            },
        }
    }

    /// A value from the target, or a sentence embedding one, as it may be printed.
    pub(super) fn show(&self, value: &(impl Escape + ?Sized)) -> String {
        value.escaped_cut(self.max)
    }

    /// One of hangscope's own sentences (a summary, a next step): its words are not cut at a
    /// value's bound, only the whole is bounded, for the values it embeds.
    pub(super) fn sentence(&self, value: &(impl Escape + ?Sized)) -> String {
        value.escaped_cut(self.max * SENTENCE_VALUES)
    }

    #[cfg(test)]
    pub(super) fn plain() -> Style {
        Style::new(&TextOptions::default())
    }

    pub(super) fn paint(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub(super) fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    pub(super) fn red(&self, s: &str) -> String {
        self.paint("1;31", s)
    }
    pub(super) fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }
    pub(super) fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
    pub(super) fn header(&self) -> (&'static str, &'static str) {
        if self.on {
            ("\x1b[2m", "\x1b[0m")
        } else {
            ("", "")
        }
    }
}

/// Word-wraps `text` to `width` columns, continuation lines indented by `indent`.
pub(super) fn wrap(text: &str, indent: usize, width: usize) -> String {
    let mut out = String::new();
    let mut col = indent;
    for word in text.split_whitespace() {
        let w = word.chars().count();
        if col > indent && col + 1 + w > width {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            col = indent;
        } else if col > indent {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += w;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_words() {
        assert_eq!(wrap("a bb ccc", 2, 6), "a bb\n  ccc");
    }
}
