//! Running an allowed program for a plugin: an argument list, never a shell, with a time limit
//! and bounded output.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use deckhand_plugin_abi::proto::{HostError, ProgramOutput};
use tokio::io::AsyncWriteExt;

/// Output beyond this many bytes per stream is cut.
const MAX_OUTPUT: usize = 1024 * 1024;

pub async fn run(
    path: &Path,
    args: &[String],
    stdin: Option<&str>,
    timeout: Duration,
) -> Result<ProgramOutput, HostError> {
    let mut child = tokio::process::Command::new(path)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            HostError::new(
                "unavailable",
                format!("cannot start {}: {e}", path.display()),
            )
        })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let input = input.to_owned();
        tokio::spawn(async move {
            let _ = pipe.write_all(input.as_bytes()).await;
        });
    }
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| {
            HostError::new(
                "timeout",
                format!(
                    "{} timed out after {} s",
                    path.display(),
                    timeout.as_secs_f32()
                ),
            )
        })?
        .map_err(|e| HostError::new("upstream", format!("{} failed: {e}", path.display())))?;
    let text =
        |bytes: &[u8]| String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_OUTPUT)]).into_owned();
    Ok(ProgramOutput {
        exit_code: output.status.code(),
        stdout: text(&output.stdout),
        stderr: text(&output.stderr),
    })
}
