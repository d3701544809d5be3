//! The `-- dqwatch` header of a `.sql` check: the file's leading run of `--` lines, the first
//! exactly `-- dqwatch`, the rest TOML. Keeps the map from TOML lines back to file lines.

/// The first line of every check header.
pub const MARKER: &str = "-- dqwatch";

/// A header cut out of a `.sql` file.
#[derive(Debug, PartialEq, Eq)]
pub struct Header {
    /// The TOML text with the comment prefixes removed, one line per header line.
    pub toml: String,
    /// 1-based file line of the TOML's first line.
    pub first_line: usize,
    /// For each TOML line, how many characters of prefix were removed.
    pub strip: Vec<usize>,
    /// The query: everything after the header, with the line breaks kept.
    pub query: String,
    /// 1-based file line where the query starts.
    pub query_line: usize,
}

impl Header {
    /// Maps a 1-based (line, column) in the TOML text to the file's (line, column).
    pub fn file_position(&self, line: usize, column: usize) -> (usize, usize) {
        let strip = self.strip.get(line.saturating_sub(1)).copied().unwrap_or(0);
        (self.first_line + line - 1, column + strip)
    }
}

/// Splits a check file into header and query. `None` when the first line is not the marker.
pub fn split(text: &str) -> Option<Header> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    let first = lines.next()?;
    if first.trim_end() != MARKER {
        return None;
    }
    let mut toml = String::new();
    let mut strip = Vec::new();
    let mut consumed = first.len();
    let mut count = 1;
    for line in lines {
        let bare = line.trim_end_matches(['\n', '\r']);
        let Some(rest) = bare.strip_prefix("--") else {
            break;
        };
        let (body, removed) = match rest.strip_prefix([' ', '\t']) {
            Some(b) => (b, 3),
            None => (rest, 2),
        };
        toml.push_str(body);
        toml.push('\n');
        strip.push(removed);
        consumed += line.len();
        count += 1;
    }
    Some(Header {
        toml,
        first_line: 2,
        strip,
        query: text[consumed..].to_string(),
        query_line: count + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use indoc::indoc;
    use test_case::test_case;

    #[test_case("-- dqwatch\n", "", &[], "", 2 ; "marker only")]
    #[test_case("-- dqwatch", "", &[], "", 2 ; "marker without newline")]
    #[test_case("-- dqwatch\n-- a = 1\n--b = 2\n--\tc = 3\n--\n--  d = 4\nSELECT 1", "a = 1\nb = 2\nc = 3\n\n d = 4\n", &[3, 2, 3, 2, 3], "SELECT 1", 7 ; "every prefix")]
    #[test_case("-- dqwatch\r\n-- a = 1\r\n--\r\nSELECT 1\r\n", "a = 1\n\n", &[3, 2], "SELECT 1\r\n", 4 ; "crlf")]
    #[test_case("-- dqwatch\n---- a\nSELECT 1", "-- a\n", &[2], "SELECT 1", 3 ; "four dashes")]
    #[test_case("-- dqwatch\n- a\n-- b = 1\n", "", &[], "- a\n-- b = 1\n", 2 ; "one dash ends the header")]
    #[test_case("-- dqwatch\n-- a = 1\n\n-- b = 2\n", "a = 1\n", &[3], "\n-- b = 2\n", 3 ; "a blank line ends the header")]
    #[test_case("-- dqwatch\n -- a = 1\n", "", &[], " -- a = 1\n", 2 ; "an indented comment ends the header")]
    fn split_cases(text: &str, toml: &str, strip: &[usize], query: &str, query_line: usize) {
        let h = split(text).unwrap();
        assert_eq!(
            (
                h.toml.as_str(),
                h.strip.as_slice(),
                h.query.as_str(),
                h.first_line,
                h.query_line
            ),
            (toml, strip, query, 2, query_line)
        );
    }

    #[test_case(1, 1, (2, 4) ; "first line after a space")]
    #[test_case(2, 5, (3, 7) ; "second line without a space")]
    #[test_case(3, 9, (4, 9) ; "past the header keeps the column")]
    fn toml_positions_map_to_file_positions(line: usize, column: usize, want: (usize, usize)) {
        let h = split("-- dqwatch\n-- a = 1\n--b = 2\nSELECT 1").unwrap();
        assert_eq!(h.file_position(line, column), want);
    }

    #[test]
    fn splits_header_and_query() {
        let h = split(indoc! {"
            -- dqwatch
            -- metric = \"gap\"
            --[thresholds]
            --\tP0 = \"> 1\"
            SELECT 1 AS gap
            -- a comment in the query stays
        "})
        .unwrap();
        assert_eq!(h.toml, "metric = \"gap\"\n[thresholds]\nP0 = \"> 1\"\n");
        assert_eq!(h.strip, vec![3, 2, 3]);
        assert_eq!(
            h.query,
            "SELECT 1 AS gap\n-- a comment in the query stays\n"
        );
        assert_eq!(h.query_line, 5);
        assert_eq!(h.file_position(3, 6), (4, 9));
    }

    #[test]
    fn handles_bom_and_crlf() {
        let h = split("\u{feff}-- dqwatch\r\n-- metric = \"x\"\r\nSELECT 1\r\n").unwrap();
        assert_eq!(h.toml, "metric = \"x\"\n");
        assert_eq!(h.query, "SELECT 1\r\n");
    }

    #[test]
    fn needs_the_marker_first() {
        assert_eq!(split("SELECT 1"), None);
        assert_eq!(split("-- dqwatch check\nSELECT 1"), None);
        assert_eq!(split("\n-- dqwatch\nSELECT 1"), None);
        assert_eq!(split(""), None);
    }

    #[test]
    fn header_only_file_has_empty_query() {
        let h = split("-- dqwatch\n-- a = 1").unwrap();
        assert_eq!(h.query, "");
        assert_eq!(h.toml, "a = 1\n");
    }
}
