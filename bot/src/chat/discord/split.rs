//! Long output as Discord messages: split on line boundaries into messages of at most
//! [`MAX_CONTENT`] characters with every code fence balanced (a fence open at a cut is closed
//! there and re-opened, with its language, at the top of the next message), and beyond
//! [`MAX_MESSAGES`] messages one `.txt` attachment with a short summary instead of a wall of posts.

use serenity::all::CreateAttachment;

/// Discord's content limit is 2000 characters; keep a margin for the prefixes we add.
pub const MAX_CONTENT: usize = 1900;
/// More messages than this become one attached file.
pub const MAX_MESSAGES: usize = 3;
/// Lines of the output quoted in the summary of an attached file.
const SUMMARY_LINES: usize = 5;
const FENCE: &str = "```";

/// One message to send: its text and, for long output, the attached file.
#[derive(Debug, Clone)]
pub struct Part {
    pub text: String,
    pub file: Option<(String, String)>,
    /// Files the message itself carries (a chart), sent with this part.
    pub extra: Vec<crate::chat::Attachment>,
}

impl Part {
    fn text(text: String) -> Part {
        Part {
            text,
            file: None,
            extra: Vec::new(),
        }
    }

    /// The long-output text file, if any, and the message's own files.
    pub fn attachments(&self) -> Vec<CreateAttachment> {
        let text = self
            .file
            .as_ref()
            .map(|(name, body)| CreateAttachment::bytes(body.as_bytes().to_vec(), name.clone()));
        let extra = self
            .extra
            .iter()
            .map(|f| CreateAttachment::bytes(f.bytes.clone(), f.name.clone()));
        text.into_iter().chain(extra).collect()
    }
}

/// `parts` with `files` sent along with the last one.
pub fn with_files(mut parts: Vec<Part>, files: &[crate::chat::Attachment]) -> Vec<Part> {
    if let Some(last) = parts.last_mut() {
        last.extra.extend(files.iter().cloned());
    }
    parts
}

fn is_fence(line: &str) -> bool {
    line.trim_start().starts_with(FENCE)
}

/// The fence state after `line`: `Some(opener)` (such as "```rust") while inside a block.
fn after(open: &Option<String>, line: &str) -> Option<String> {
    match (open, is_fence(line)) {
        (Some(_), true) => None,
        (None, true) => Some(line.trim().to_owned()),
        (state, false) => state.clone(),
    }
}

fn len(s: &str) -> usize {
    s.chars().count()
}

/// Closes an open fence at the end of `current`.
fn close(current: &mut String) {
    if !current.ends_with('\n') {
        current.push('\n');
    }
    current.push_str(FENCE);
}

/// Splits text into messages Discord accepts, at line breaks where possible, each with its
/// code fences balanced. Without fences the parts concatenate back to the text. Every part is
/// one post: the alerts pipeline counts and paces posts with this.
pub fn chunks(text: &str) -> Vec<String> {
    let text = if text.trim().is_empty() {
        "(no output)"
    } else {
        text
    };
    let mut out = Vec::new();
    let mut current = String::new();
    // Whether `current` holds more than a re-opened fence.
    let mut has_content = false;
    let mut open: Option<String> = None;
    for line in text.split_inclusive('\n') {
        let mut line = line;
        while !line.is_empty() {
            let next = after(&open, line);
            let reserve = if next.is_some() { FENCE.len() + 1 } else { 0 };
            let room = MAX_CONTENT.saturating_sub(len(&current) + reserve);
            if len(line) <= room {
                current.push_str(line);
                has_content = true;
                open = next;
                break;
            }
            if has_content {
                // Cut before this line; the next message re-opens the fence.
                if open.is_some() {
                    close(&mut current);
                }
                out.push(std::mem::take(&mut current));
                has_content = false;
                if let Some(opener) = &open {
                    current = format!("{opener}\n");
                }
                continue;
            }
            // A single line longer than a message: cut it (inside a fence, keep it open).
            let reserve = if open.is_some() { FENCE.len() + 1 } else { 0 };
            let room = MAX_CONTENT.saturating_sub(len(&current) + reserve).max(1);
            let cut = line.char_indices().nth(room).map_or(line.len(), |(i, _)| i);
            current.push_str(&line[..cut]);
            line = &line[cut..];
            if open.is_some() {
                close(&mut current);
            }
            out.push(std::mem::take(&mut current));
            if let Some(opener) = &open {
                current = format!("{opener}\n");
            }
        }
    }
    if has_content {
        if open.is_some() {
            close(&mut current);
        }
        out.push(current);
    }
    out
}

/// The messages for `text`: its [`chunks`], or beyond [`MAX_MESSAGES`] one message with a
/// summary (`label`, size, the first lines) and the whole text attached as `file_stem.txt`.
pub fn layout(text: &str, label: &str, file_stem: &str) -> Vec<Part> {
    let parts = chunks(text);
    if parts.len() <= MAX_MESSAGES {
        return parts.into_iter().map(Part::text).collect();
    }
    let lines = text.lines().count();
    let head: Vec<&str> = text
        .lines()
        .filter(|l| !is_fence(l))
        .take(SUMMARY_LINES)
        .collect();
    let name = format!("{file_stem}.txt");
    let mut summary = format!(
        "📎 {label}: {lines} lines ({} characters), too long for {MAX_MESSAGES} messages; the whole output is attached as `{name}`.\n",
        len(text)
    );
    let quoted: String = head.join("\n").chars().take(MAX_CONTENT / 2).collect();
    summary.push_str(&format!("{FENCE}\n{quoted}\n…\n{FENCE}"));
    vec![Part {
        text: summary,
        file: Some((name, text.to_owned())),
        extra: Vec::new(),
    }]
}

/// A file name stem from a command label: `/vk logs` → `vk-logs`.
pub fn file_stem(label: &str) -> String {
    let stem: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let stem = stem.trim_matches('-');
    let mut out = String::new();
    for c in stem.chars() {
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    if out.is_empty() {
        "output".into()
    } else {
        out.chars().take(60).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn balanced(part: &str) -> bool {
        part.lines().filter(|l| is_fence(l)).count() % 2 == 0
    }

    #[test]
    fn chunks_respect_the_limit_and_keep_everything() {
        let text = format!("{}\n{}", "a".repeat(1500), "b".repeat(4000));
        let parts = chunks(&text);
        assert!(parts.iter().all(|p| p.chars().count() <= MAX_CONTENT));
        assert_eq!(parts.concat(), text);
        assert_eq!(chunks(""), ["(no output)"]);
    }

    #[test]
    fn cuts_fall_on_line_boundaries() {
        let text: String = (0..300).map(|i| format!("line number {i:04}\n")).collect();
        let parts = chunks(&text);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.ends_with('\n')), "{parts:?}");
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn fences_are_closed_and_reopened_with_their_language() {
        let body: String = (0..200).map(|i| format!("log line {i:04}\n")).collect();
        let text = format!("Logs of pod web-1:\n```text\n{body}```\nend\n");
        let parts = chunks(&text);
        assert!(parts.len() >= 2, "{parts:?}");
        for (i, part) in parts.iter().enumerate() {
            assert!(part.chars().count() <= MAX_CONTENT, "part {i} too long");
            assert!(balanced(part), "part {i} unbalanced:\n{part}");
            if i > 0 {
                assert!(part.starts_with("```text\n"), "part {i}:\n{part}");
            }
        }
        // Nothing lost: every log line is in exactly one part.
        for i in 0..200 {
            let line = format!("log line {i:04}\n");
            assert_eq!(parts.iter().filter(|p| p.contains(&line)).count(), 1);
        }
        assert!(parts.last().unwrap().ends_with("end\n"));
    }

    #[test]
    fn a_huge_line_inside_a_fence_is_cut_and_stays_fenced() {
        let text = format!("```json\n{}\n```", "x".repeat(5000));
        let parts = chunks(&text);
        assert!(parts.len() >= 3);
        assert!(
            parts
                .iter()
                .all(|p| balanced(p) && p.starts_with("```json"))
        );
        assert!(parts.iter().all(|p| p.chars().count() <= MAX_CONTENT));
        let xs: usize = parts.iter().map(|p| p.matches('x').count()).sum();
        assert_eq!(xs, 5000);
    }

    #[test]
    fn beyond_three_messages_one_file_with_a_summary() {
        let short = layout("hello", "/echo", "echo");
        assert_eq!(short.len(), 1);
        assert!(short[0].file.is_none());
        let text: String = (0..500).map(|i| format!("audit row {i}\n")).collect();
        let parts = layout(&text, "/audit 500", &file_stem("/audit 500"));
        assert_eq!(parts.len(), 1);
        let (name, body) = parts[0].file.clone().unwrap();
        assert_eq!(
            (name.as_str(), body.as_str()),
            ("audit-500.txt", text.as_str())
        );
        assert!(
            parts[0].text.contains("/audit 500: 500 lines"),
            "{}",
            parts[0].text
        );
        assert!(parts[0].text.contains("audit row 0"));
        assert!(parts[0].text.chars().count() <= MAX_CONTENT);
        assert!(balanced(&parts[0].text));
    }
}
