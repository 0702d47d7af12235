//! Terminal chat: `deckhand shell`. A prompt with history on a TTY, plain lines when piped, so
//! `printf '/help\n' | deckhand shell` works in scripts and tests.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use deckhand_plugin_abi::proto::Caller;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::router::{Invocation, Response, ResponseKind, Router};

/// How a response reads in the terminal. Control characters (which a reply may quote from
/// user input or an upstream) are shown escaped, so none can drive the terminal.
pub fn render(response: &Response) -> String {
    let text = printable(&response.text);
    match response.kind {
        ResponseKind::Error => format!("error: {text}"),
        ResponseKind::Ok | ResponseKind::Pending => text,
    }
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
    let mut notifications = router.host().services().subscribe_notifications();
    tokio::spawn(async move {
        while let Ok(n) = notifications.recv().await {
            println!(
                "[{} {}] {}: {}",
                n.plugin, n.notification.severity, n.notification.title, n.notification.text
            );
        }
    });
    while let Some((line, done)) = lines.recv().await {
        let line = match line {
            Ok(line) => line.trim().to_owned(),
            Err(problem) => {
                println!("error: {problem}; nothing was run");
                let _ = std::io::stdout().flush();
                let _ = done.send(());
                continue;
            }
        };
        if matches!(line.as_str(), "/quit" | "/exit") {
            break;
        }
        if !line.is_empty() {
            let invocation = Invocation::new("terminal", &terminal.channel, caller.clone(), &line);
            let response = handle(&router, invocation, interactive).await;
            println!("{}", render(&response));
            let _ = std::io::stdout().flush();
        }
        let _ = done.send(());
    }
    Ok(())
}

/// Runs one command, printing progress as it comes; Ctrl-C on a TTY cancels it.
async fn handle(router: &Router, invocation: Invocation, interactive: bool) -> Response {
    let (progress_tx, mut progress_rx) = mpsc::unbounded_channel::<String>();
    let printer = tokio::spawn(async move {
        while let Some(line) = progress_rx.recv().await {
            println!("  … {line}");
        }
    });
    let id = invocation.id.clone();
    let work = router.handle(invocation, progress_tx);
    tokio::pin!(work);
    let response = loop {
        tokio::select! {
            response = &mut work => break response,
            _ = tokio::signal::ctrl_c(), if interactive => {
                router.host().services().cancel(&id);
                println!("  … cancelling");
            }
        }
    };
    let _ = printer.await;
    response
}

/// A line as read, or why it cannot be a command (it is not UTF-8).
type Line = Result<String, String>;
type Lines = mpsc::Receiver<(Line, tokio::sync::oneshot::Sender<()>)>;

/// Lines from a pipe; no prompt, no history. A line that is not UTF-8 is answered with an
/// error and the session goes on.
fn piped_lines() -> Lines {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let mut reader = BufReader::new(tokio::io::stdin());
        let mut number: u64 = 0;
        loop {
            let mut bytes = Vec::new();
            match reader.read_until(b'\n', &mut bytes).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            number = number.saturating_add(1);
            let line = decode_line(number, bytes);
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            if tx.send((line, done_tx)).await.is_err() {
                break;
            }
            let _ = done_rx.await;
        }
    });
    rx
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
            if tx.blocking_send((Ok(line), done_tx)).is_err() {
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
