//! How the report's text is styled and laid out: values escaped and bounded, colour around
//! them, sentences word-wrapped.

use hangscope_model::Escape;

use super::TextOptions;

pub(super) struct Style {
    pub(super) on: bool,
    /// Longest value shown, in characters of its escaped form.
    pub(super) max: usize,
    /// Columns sentences are wrapped to.
    pub(super) width: usize,
}

/// A value is cut after this many characters, with -v after `VALUE_MAX_VERBOSE`: a path fits
/// whole in the first, PATH_MAX bytes escaped in the second; a 1 MB argv fits in neither.
const VALUE_MAX: usize = 512;
const VALUE_MAX_VERBOSE: usize = 16 * 1024;
/// The narrowest width wrapped to.
const MIN_WIDTH: usize = 40;
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
            width: match opts.width {
                0 => super::DEFAULT_WIDTH,
                // Narrower than this, the continuation lines' indent leaves no room for words.
                w => w.max(MIN_WIDTH),
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

/// Word-wraps `text` to `width` columns, as if it started at column `indent`; continuation
/// lines are indented by `indent`. Words longer than a line are left whole (a path is copied
/// whole from a terminal).
pub(super) fn wrap(text: &str, indent: usize, width: usize) -> String {
    let pad = " ".repeat(indent);
    let opts = textwrap::Options::new(width)
        .initial_indent(&pad)
        .subsequent_indent(&pad)
        .break_words(false)
        // A name is not cut at its hyphen: "meta-replica-b" stays one word to copy.
        .word_splitter(textwrap::WordSplitter::NoHyphenation);
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let filled = textwrap::fill(&words, opts);
    filled.get(indent..).unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_words() {
        assert_eq!(wrap("a bb ccc", 2, 6), "a bb\n  ccc");
        assert_eq!(wrap("a  bb", 0, 80), "a bb");
        assert_eq!(wrap("/a/long/path x", 4, 8), "/a/long/path\n    x");
        assert_eq!(
            wrap("process (meta-replica-b)", 0, 20),
            "process\n(meta-replica-b)"
        );
    }
}
