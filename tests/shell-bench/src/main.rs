//! `shell-bench`: drives a chat bot's terminal over pipes, as a user's terminal (or a script
//! piping into it) does, and measures what that user sees (issue 21).
//!
//! ```text
//! shell-bench run --name deckhand --send '/echo bench --upper' --expect BENCH \
//!     [--ready MARKER] [--rounds 2000] [--burst 2000] [--warmup 200] [--json FILE] \
//!     -- target/release/deckhand shell --config bench.toml
//! shell-bench summarize FILE      # medians per bot over the runs in FILE, as a table
//! ```
//!
//! One run: spawn the command line; wait for `--ready` on its stdout if given; send `--send` and
//! time until `--expect` appears (that is "ready": spawn to first answer); `--warmup` round trips;
//! `--rounds` round trips one at a time (write a line, block reading stdout until the reply
//! marker), giving p50/p99/max; the CPU the bot's process tree used during them, from
//! `/proc/<pid>/stat`, divided by the rounds; then `--burst` lines written at once and the time
//! until the last reply; then peak RSS (`VmHWM`) summed over the process tree. Pin it with
//! `taskset -c N shell-bench ...`: the bot inherits the affinity, so driver and bot share one CPU.
//! The round trip has no thread of the driver's own in it: the main thread writes and reads.

mod proc;
mod scan;
mod stats;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use scan::Scanner;
use stats::RunResult;

/// A bot that says nothing for this long is killed and the run fails.
const STALL: Duration = Duration::from_secs(30);

struct Options {
    name: String,
    ready: Option<String>,
    send: String,
    expect: String,
    rounds: usize,
    burst: usize,
    warmup: usize,
    json: Option<PathBuf>,
    command: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => {
            let options = parse_run(&args[1..])?;
            let result = run(&options)?;
            println!("{}", result.line());
            if let Some(path) = &options.json {
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                writeln!(file, "{}", serde_json::to_string(&result)?)?;
            }
            Ok(())
        }
        Some("summarize") => {
            let path = args.get(1).context("summarize FILE")?;
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
            let runs = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(serde_json::from_str)
                .collect::<Result<Vec<RunResult>, _>>()
                .with_context(|| format!("parsing {path}"))?;
            print!("{}", stats::summary(&runs));
            Ok(())
        }
        _ => bail!(
            "usage: shell-bench run --name N --send LINE --expect TEXT [--ready TEXT] [--rounds N] \
             [--burst N] [--warmup N] [--json FILE] -- COMMAND...\n       shell-bench summarize FILE"
        ),
    }
}

fn parse_run(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        name: String::new(),
        ready: None,
        send: String::new(),
        expect: String::new(),
        rounds: 2_000,
        burst: 2_000,
        warmup: 200,
        json: None,
        command: Vec::new(),
    };
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        if flag == "--" {
            options.command = iter.cloned().collect();
            break;
        }
        let value = iter
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .with_context(|| format!("{flag} takes a count, not {value}"))
        };
        match flag.as_str() {
            "--name" => options.name = value.clone(),
            "--ready" => options.ready = Some(value.clone()),
            "--send" => options.send = value.clone(),
            "--expect" => options.expect = value.clone(),
            "--rounds" => options.rounds = number()?,
            "--burst" => options.burst = number()?,
            "--warmup" => options.warmup = number()?,
            "--json" => options.json = Some(PathBuf::from(value)),
            other => bail!("unknown option {other}"),
        }
    }
    if options.name.is_empty() || options.send.is_empty() || options.expect.is_empty() {
        bail!("--name, --send and --expect are required");
    }
    if options.command.is_empty() {
        bail!("the bot's command line goes after --");
    }
    if options.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    Ok(options)
}

/// The bot under test, its pipes, and a watchdog that kills it when it stalls.
struct Bot {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    scanner: Scanner,
    buffer: Vec<u8>,
    progress: Arc<AtomicU64>,
    finished: Arc<AtomicBool>,
    stderr_path: PathBuf,
    _stderr_dir: tempfile::TempDir,
}

impl Bot {
    fn spawn(command: &[String], expect: &str) -> anyhow::Result<Bot> {
        let dir = tempfile::tempdir()?;
        let stderr_path = dir.path().join("stderr");
        let stderr = std::fs::File::create(&stderr_path)?;
        let mut child = Command::new(&command[0])
            .args(&command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .with_context(|| format!("starting {}", command[0]))?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        let progress = Arc::new(AtomicU64::new(0));
        let finished = Arc::new(AtomicBool::new(false));
        watchdog(child.id(), progress.clone(), finished.clone());
        Ok(Bot {
            child,
            stdin: Some(stdin),
            stdout,
            scanner: Scanner::new(expect.as_bytes()),
            buffer: vec![0; 64 * 1024],
            progress,
            finished,
            stderr_path,
            _stderr_dir: dir,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stdin(&mut self) -> anyhow::Result<&mut ChildStdin> {
        self.stdin.as_mut().context("stdin already closed")
    }

    /// Reads stdout until `marker` has been seen (not counted as a reply).
    fn wait_for(&mut self, marker: &str) -> anyhow::Result<()> {
        let mut scanner = Scanner::new(marker.as_bytes());
        while scanner.count() == 0 {
            let n = self.read_some()?;
            scanner.feed(&self.buffer[..n]);
            // A reply marker seen before the ready marker still counts.
            self.scanner.feed(&self.buffer[..n]);
        }
        Ok(())
    }

    /// Reads stdout until `total` replies have been seen in all.
    fn wait_replies(&mut self, total: u64) -> anyhow::Result<()> {
        while self.scanner.count() < total {
            let n = self.read_some()?;
            self.scanner.feed(&self.buffer[..n]);
        }
        Ok(())
    }

    fn read_some(&mut self) -> anyhow::Result<usize> {
        let n = self.stdout.read(&mut self.buffer)?;
        if n == 0 {
            bail!(
                "the bot closed its output after {} replies; its stderr:\n{}",
                self.scanner.count(),
                self.stderr_tail()
            );
        }
        self.progress.fetch_add(1, Ordering::Relaxed);
        Ok(n)
    }

    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Closes stdin (end of input, like Ctrl-D) and waits a little for the bot to leave.
    fn stop(mut self) {
        self.finished.store(true, Ordering::Relaxed);
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills `pid` when no output arrived for [`STALL`] (the driver would otherwise block forever).
fn watchdog(pid: u32, progress: Arc<AtomicU64>, finished: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut seen = progress.load(Ordering::Relaxed);
        let mut since = Instant::now();
        while !finished.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(500));
            let now = progress.load(Ordering::Relaxed);
            if now != seen {
                seen = now;
                since = Instant::now();
            } else if since.elapsed() > STALL {
                eprintln!(
                    "shell-bench: no output for {} s; killing the bot",
                    STALL.as_secs()
                );
                let Ok(pid) = libc::pid_t::try_from(pid) else {
                    return;
                };
                // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
                return;
            }
        }
    });
}

fn run(options: &Options) -> anyhow::Result<RunResult> {
    let line = format!("{}\n", options.send);
    let started = Instant::now();
    let mut bot = Bot::spawn(&options.command, &options.expect)?;
    if let Some(marker) = &options.ready {
        bot.wait_for(marker)?;
    }
    let mut replies = bot.scanner.count();
    bot.stdin()?.write_all(line.as_bytes())?;
    replies += 1;
    bot.wait_replies(replies)?;
    let ready = started.elapsed();

    for _ in 0..options.warmup {
        bot.stdin()?.write_all(line.as_bytes())?;
        replies += 1;
        bot.wait_replies(replies)?;
    }

    let pid = bot.pid();
    let cpu_before = proc::tree_cpu(pid)?;
    let mut samples = Vec::with_capacity(options.rounds);
    for _ in 0..options.rounds {
        let sent = Instant::now();
        bot.stdin()?.write_all(line.as_bytes())?;
        replies += 1;
        bot.wait_replies(replies)?;
        samples.push(sent.elapsed());
    }
    let cpu = proc::tree_cpu(pid)?.saturating_sub(cpu_before);

    let burst = if options.burst > 0 {
        let mut stdin = bot.stdin.take().context("stdin")?;
        let lines = line.repeat(options.burst);
        let sent = Instant::now();
        // A thread writes, so a bot that answers before it has read everything cannot fill
        // its stdout pipe while the driver is blocked writing.
        let writer = std::thread::spawn(move || {
            let result = stdin.write_all(lines.as_bytes());
            (stdin, result)
        });
        replies += options.burst as u64;
        bot.wait_replies(replies)?;
        let elapsed = sent.elapsed();
        let (stdin, result) = writer
            .join()
            .map_err(|_| anyhow::anyhow!("burst writer panicked"))?;
        result?;
        bot.stdin = Some(stdin);
        Some(elapsed)
    } else {
        None
    };
    let rss_kib = proc::tree_peak_rss_kib(pid)?;
    bot.stop();
    Ok(RunResult::new(
        &options.name,
        ready,
        samples,
        cpu,
        burst,
        options.burst,
        rss_kib,
        proc::affinity(),
    ))
}
