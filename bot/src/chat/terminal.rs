//! Terminal chat: `deckhand shell`. A prompt with history on a TTY, plain lines when piped, so
//! `printf '/help\n' | deckhand shell` works in scripts and tests.

use std::io::{IsTerminal, Read, Write};
use std::sync::Arc;

use deckhand_plugin_abi::proto::Caller;
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};

use crate::host::services::PluginNotification;

use crate::router::{Invocation, Response, ResponseKind, Router};

/// How a response reads in the terminal. Control characters (which a reply may quote from
/// user input or an upstream) are shown escaped, so none can drive the terminal.
pub fn render(response: &Response) -> String {
    let text = printable(&response.text);
    let mut out = match response.kind {
        ResponseKind::Error => format!("error: {text}"),
        ResponseKind::Ok | ResponseKind::Pending => text,
    };
    // Buttons become the commands to type, as under unprompted messages.
    for action in &response.actions {
        out.push_str(&format!(
            "\n  {}: {}",
            printable(&action.label),
            printable(&action.command)
        ));
    }
    out
}

/// `text` with every control character but newline and tab written as `\u{..}`.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// How an unprompted message reads in the terminal: buttons become commands to type.
pub fn render_outbound(message: &super::OutboundMessage) -> String {
    let mut out = format!("[{}] {}", message.channel, message.text);
    for action in &message.actions {
        out.push_str(&format!("\n  {}: {}", action.label, action.command));
    }
    out
}

/// Reads commands until end of input (or `/quit`), printing each reply.
///
/// One task writes stdout: replies, progress lines and plugin notifications all go through
/// [`Out`], one `write` per line. Piped input is read ahead by a thread of its own (a burst of
/// lines costs one read and one hand-off per chunk, not per line) while commands still run one
/// at a time in input order, so replies come in the order the lines were written.
pub async fn run(router: Arc<Router>, terminal: &TerminalConfig) -> anyhow::Result<()> {
    crate::metrics::chat_connected(true);
    let caller = Caller {
        user_id: terminal.user_id.clone(),
        display_name: terminal.display_name.clone(),
        roles: terminal.roles.clone(),
    };
    let interactive = std::io::stdin().is_terminal();
    let mut lines = if interactive {
        prompt_lines()
    } else {
        piped_lines()
    };
    let mut out = Out {
        notifications: Some(router.host().services().subscribe_notifications()),
    };
    loop {
        let batch = tokio::select! {
            biased;
            batch = lines.recv() => batch,
            () = out.notification() => continue,
        };
        let Some(Batch { lines: batch, done }) = batch else {
            break;
        };
        for line in batch {
            let line = match line {
                Ok(line) => line,
                Err(problem) => {
                    out.line(&format!("error: {problem}; nothing was run"))?;
                    continue;
                }
            };
            let line = line.trim();
            if matches!(line, "/quit" | "/exit") {
                return Ok(());
            }
            if !line.is_empty() {
                let invocation =
                    Invocation::new("terminal", &terminal.channel, caller.clone(), line);
                let response = handle(&router, invocation, interactive, &mut out).await;
                out.line(&render(&response))?;
            }
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
    }
    Ok(())
}

/// The one writer of the terminal's stdout.
struct Out {
    /// Plugin notifications to show; `None` once the host stopped sending them.
    notifications: Option<broadcast::Receiver<PluginNotification>>,
}

impl Out {
    /// Writes `text` and a newline in one `write` (stdout is line-buffered, and the lock keeps
    /// other writers, such as the terminal outbox, from interleaving within it).
    fn line(&mut self, text: &str) -> std::io::Result<()> {
        let mut stdout = std::io::stdout().lock();
        let mut bytes = String::with_capacity(text.len() + 1);
        bytes.push_str(text);
        bytes.push('\n');
        stdout.write_all(bytes.as_bytes())?;
        stdout.flush()
    }

    /// Waits for the next plugin notification and prints it; never returns once there are none.
    async fn notification(&mut self) {
        let Some(receiver) = &mut self.notifications else {
            return std::future::pending().await;
        };
        match receiver.recv().await {
            Ok(n) => {
                let text = format!(
                    "[{} {}] {}: {}",
                    n.plugin, n.notification.severity, n.notification.title, n.notification.text
                );
                let _ = self.line(&text);
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => self.notifications = None,
        }
    }
}

/// Runs one command, printing progress (and notifications) as they come; Ctrl-C on a TTY
/// cancels it. Progress sent before the reply is printed before it.
async fn handle(
    router: &Router,
    invocation: Invocation,
    interactive: bool,
    out: &mut Out,
) -> Response {
    let (progress_tx, mut progress_rx) = mpsc::unbounded_channel::<String>();
    let id = invocation.id.clone();
    let work = router.handle(invocation, progress_tx);
    tokio::pin!(work);
    let mut interrupt = std::pin::pin!(interrupted(interactive));
    loop {
        tokio::select! {
            biased;
            response = &mut work => {
                while let Ok(line) = progress_rx.try_recv() {
                    let _ = out.line(&format!("  … {line}"));
                }
                return response;
            }
            Some(line) = progress_rx.recv() => {
                let _ = out.line(&format!("  … {line}"));
            }
            () = &mut interrupt => {
                router.host().services().cancel(&id);
                let _ = out.line("  … cancelling");
                interrupt.set(interrupted(interactive));
            }
            () = out.notification() => {}
        }
    }
}

/// Ctrl-C on a TTY; never on piped input (no signal handler is set up for it).
async fn interrupted(interactive: bool) {
    if interactive {
        let _ = tokio::signal::ctrl_c().await;
    } else {
        std::future::pending::<()>().await;
    }
}

/// A line as read, or why it cannot be a command (it is not UTF-8).
type Line = Result<String, String>;

/// Lines read together; `done`, when set, is told once they were all answered (the prompt
/// waits for it before asking for the next line).
struct Batch {
    lines: Vec<Line>,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

type Lines = mpsc::Receiver<Batch>;

/// Bytes read from a pipe per `read`; every complete line in them goes over in one batch.
const READ_CHUNK: usize = 64 * 1024;

/// Lines from a pipe; no prompt, no history, read ahead on a thread of its own (blocking reads
/// of stdin, no async hand-off per read). A line that is not UTF-8 is answered with an error
/// and the session goes on.
fn piped_lines() -> Lines {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut splitter = LineSplitter::default();
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            let n = match stdin.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let lines = splitter.push(&chunk[..n]);
            if !lines.is_empty() && tx.blocking_send(Batch { lines, done: None }).is_err() {
                return;
            }
        }
        if let Some(last) = splitter.finish() {
            let _ = tx.blocking_send(Batch {
                lines: vec![last],
                done: None,
            });
        }
    });
    rx
}

/// Cuts a byte stream into numbered lines, wherever the reads happen to end.
#[derive(Default)]
struct LineSplitter {
    partial: Vec<u8>,
    number: u64,
}

impl LineSplitter {
    /// The complete lines in `bytes` (after what earlier calls left over).
    fn push(&mut self, bytes: &[u8]) -> Vec<Line> {
        let mut lines = Vec::new();
        let mut rest = bytes;
        while let Some(at) = rest.iter().position(|b| *b == b'\n') {
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(&rest[..=at]);
            rest = &rest[at + 1..];
            self.number = self.number.saturating_add(1);
            lines.push(decode_line(self.number, line));
        }
        self.partial.extend_from_slice(rest);
        lines
    }

    /// A last line without a newline at end of input.
    fn finish(&mut self) -> Option<Line> {
        if self.partial.is_empty() {
            return None;
        }
        self.number = self.number.saturating_add(1);
        Some(decode_line(self.number, std::mem::take(&mut self.partial)))
    }
}

/// One line of input without its line ending, or where it stops being UTF-8.
fn decode_line(number: u64, mut bytes: Vec<u8>) -> Line {
    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        bytes.pop();
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let byte = e.as_bytes().get(at).copied().unwrap_or_default();
        format!(
            "line {number} is not valid UTF-8 (byte 0x{byte:02x} at column {})",
            at.saturating_add(1)
        )
    })
}

/// Lines from a prompt with history (rustyline), on a thread of its own because it blocks.
/// The next prompt waits until the previous reply is printed.
fn prompt_lines() -> Lines {
    let (tx, rx) = mpsc::channel(1);
    std::thread::spawn(move || {
        let Ok(mut editor) = rustyline::DefaultEditor::new() else {
            return;
        };
        let history =
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".deckhand_history"));
        if let Some(path) = &history {
            let _ = editor.load_history(path);
        }
        println!("Deckhand terminal chat. /help lists commands, /quit or Ctrl-D leaves.");
        while let Ok(line) = editor.readline("deckhand> ") {
            let _ = editor.add_history_entry(line.as_str());
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            let batch = Batch {
                lines: vec![Ok(line)],
                done: Some(done_tx),
            };
            if tx.blocking_send(batch).is_err() {
                break;
            }
            let _ = done_rx.blocking_recv();
        }
        if let Some(path) = &history {
            let _ = editor.save_history(path);
        }
    });
    rx
}

/// Who the person at the terminal is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalConfig {
    pub user_id: String,
    pub display_name: String,
    #[serde(default)]
    pub roles: Vec<String>,
    pub channel: String,
    /// Whether `--yes` may skip confirmations here.
    #[serde(default)]
    pub allow_yes: bool,
}

impl Default for TerminalConfig {
    fn default() -> Self {
        TerminalConfig {
            user_id: "local".into(),
            display_name: "Local operator".into(),
            roles: vec!["admin".into()],
            channel: "terminal".into(),
            allow_yes: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_reads_come_out_whole_and_numbered() {
        let mut splitter = LineSplitter::default();
        assert!(splitter.push(b"/echo o").is_empty());
        let lines = splitter.push(b"ne\r\n/who\n\n/ech");
        assert_eq!(
            lines,
            [
                Ok("/echo one".to_owned()),
                Ok("/who".to_owned()),
                Ok(String::new())
            ]
        );
        let lines = splitter.push(b"o \xff\n");
        assert_eq!(
            lines,
            [Err(
                "line 4 is not valid UTF-8 (byte 0xff at column 7)".to_owned()
            )]
        );
        assert!(splitter.push(b"/last").is_empty());
        assert_eq!(splitter.finish(), Some(Ok("/last".to_owned())));
        assert_eq!(splitter.finish(), None);
    }
}
