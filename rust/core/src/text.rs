//! Text from elsewhere, made safe to show: [`clip`] cuts what an error message echoes from a
//! request or a file, and [`utf8`] turns bytes into text or says where they stop being UTF-8.
//! Pure: no I/O.

use std::borrow::Cow;

/// Most characters of a foreign string an error message repeats (see [`clip`]).
pub const ECHO_LIMIT: usize = 100;

/// `text` as an error message may repeat it: itself when at most [`ECHO_LIMIT`] characters,
/// else its first [`ECHO_LIMIT`] characters, an ellipsis and its length, so that a 1 MiB
/// lambda name costs a line, not a megabyte, in every answer and log line that names it.
pub fn clip(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(ECHO_LIMIT) {
        None => Cow::Borrowed(text),
        Some((end, _)) => Cow::Owned(format!("{}... ({} bytes)", &text[..end], text.len())),
    }
}

/// Where a file stops being UTF-8.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid UTF-8 at line {line}, byte {column} of the line (byte offset {offset} in the file)"
)]
pub struct Utf8Error {
    /// Line of the first invalid byte, from 1.
    pub line: usize,
    /// Its byte in that line, from 1.
    pub column: usize,
    /// Its offset in the file, from 0.
    pub offset: usize,
}

/// `bytes` as text, or where the first invalid UTF-8 sequence is.
pub fn utf8(bytes: Vec<u8>) -> Result<String, Utf8Error> {
    String::from_utf8(bytes).map_err(|error| {
        let bytes = error.as_bytes();
        let offset = error.utf8_error().valid_up_to();
        let before = &bytes[..offset];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        Utf8Error {
            line: before.iter().filter(|&&b| b == b'\n').count() + 1,
            column: offset - line_start + 1,
            offset,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text_with_its_length() {
        assert_eq!(clip("clambda0"), "clambda0");
        let long = "x".repeat(1 << 20);
        let clipped = clip(&long);
        assert_eq!(clipped, format!("{}... (1048576 bytes)", "x".repeat(100)));
        // Cuts between characters, never inside one.
        let wide = "é".repeat(150);
        assert!(clip(&wide).starts_with(&"é".repeat(100)));
    }

    #[test]
    fn utf8_says_line_and_byte_of_the_first_bad_sequence() {
        assert_eq!(utf8(b"a: 1\n".to_vec()).unwrap(), "a: 1\n");
        let error = utf8(b"a: 1\nname: ab\xffc\n".to_vec()).unwrap_err();
        assert_eq!(
            error,
            Utf8Error {
                line: 2,
                column: 9,
                offset: 13
            }
        );
        assert!(error.to_string().contains("line 2, byte 9"), "{error}");
    }
}
