//! Issue 22 (GPU cost in chat): holiday calendars and `/schedule preview`, on a manual clock.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use deckhand::chat::{MemoryOutbox, OutboundMessage};
use deckhand::router::ResponseKind;
use deckhand::sched::store::Store;
use deckhand::sched::{AlwaysLeader, ManualClock, SchedulerHandle};
use deckhand_it::{TestBot, admin};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

const SCHEDULES: &str = r#"
[[schedule]]
name = "nightly-off"
cron = "0 0 20 * * *"
tz = "Europe/Helsinki"
warn = "15m"
channel = "gpu-ops"
commands = ["/echo gpu-off"]
skip_on = ["fi-holidays"]

[[schedule]]
name = "ny-off"
cron = "0 0 20 * * Mon-Fri"
tz = "America/New_York"
channel = "gpu-ops"
commands = ["/echo ny-off"]

[[schedule]]
name = "demo-days"
cron = "0 0 9 * * *"
tz = "Europe/Helsinki"
channel = "gpu-ops"
commands = ["/echo warm"]
only_on = ["demos"]
"#;

struct Rig {
    _files: tempfile::TempDir,
    bot: TestBot,
    clock: Arc<ManualClock>,
    outbox: Arc<MemoryOutbox>,
    handle: SchedulerHandle,
    seen: usize,
}

impl Rig {
    fn new(start: &str) -> Rig {
        Rig::with(SCHEDULES, start, |_| {})
    }

    /// A bot whose schedules file is `schedules`; `setup` runs before the engine starts.
    fn with(schedules: &str, start: &str, setup: impl FnOnce(&deckhand::app::App)) -> Rig {
        let files = tempfile::tempdir().unwrap();
        let file = files.path().join("schedules.toml");
        std::fs::write(&file, schedules).unwrap();
        let extra = format!(
            r#"
[[permissions]]
users = ["sched-bot"]
allow = ["*"]

[schedules]
owner = {{ user_id = "sched-bot", display_name = "Schedule bot" }}
file = {:?}

[schedules.calendars]
fi-holidays = ["2026-12-24", "*-12-06", "2026-10-27"]
demos = ["2026-12-10"]
"#,
            file.display().to_string()
        );
        let bot = TestBot::with_config(&["echo"], &extra);
        setup(&bot.app);
        let clock = Arc::new(ManualClock::new(utc(start)));
        let outbox = Arc::new(MemoryOutbox::default());
        let handle = bot
            .app
            .start_scheduler(outbox.clone(), Arc::new(AlwaysLeader), clock.clone())
            .expect("scheduler starts");
        assert!(handle.load_errors.is_empty(), "{:?}", handle.load_errors);
        Rig {
            _files: files,
            bot,
            clock,
            outbox,
            handle,
            seen: 0,
        }
    }

    async fn at(&mut self, t: &str) -> Vec<OutboundMessage> {
        self.clock.set(utc(t));
        self.handle.settle().await;
        let all = self.outbox.messages();
        let new = all[self.seen..].to_vec();
        self.seen = all.len();
        new
    }

    async fn say(&self, text: &str) -> String {
        let invocation = deckhand::router::Invocation::new("test", "ops", admin(), text);
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let response = self.bot.app.router.handle(invocation, tx).await;
        match response.kind {
            ResponseKind::Error => format!("error: {}", response.text),
            _ => response.text,
        }
    }

    fn outcomes(&self, name: &str) -> Vec<(String, String)> {
        let store = Store::open(self.bot.app.db.clone()).unwrap();
        let mut runs = store.runs(name, 100).unwrap();
        runs.reverse();
        runs.into_iter()
            .map(|r| (r.due_at.to_rfc3339(), r.outcome.unwrap_or_default()))
            .collect()
    }
}

fn texts(messages: &[OutboundMessage]) -> String {
    messages
        .iter()
        .map(|m| m.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_holiday_skips_the_run_and_its_warning_and_only_on_runs_on_its_days() {
    let mut rig = Rig::new("2026-12-23T12:00:00Z");
    rig.at("2026-12-23T17:45:00Z").await;
    let ran = texts(&rig.at("2026-12-23T18:00:00Z").await);
    assert!(ran.contains("✓ gpu-off"), "{ran}");
    // 24 December is in fi-holidays: no warning at 19:45 Helsinki, no run at 20:00.
    let warned = texts(&rig.at("2026-12-24T17:45:00Z").await);
    assert!(!warned.contains("nightly-off runs in"), "{warned}");
    let skipped = texts(&rig.at("2026-12-24T18:00:00Z").await);
    assert!(
        skipped.contains("📅 Schedule nightly-off: not run at Thu 2026-12-24 20:00:00 EET (18:00:00 UTC): 2026-12-24 is in calendar fi-holidays (skip_on)."),
        "{skipped}"
    );
    assert!(!skipped.contains("gpu-off"), "{skipped}");
    rig.at("2026-12-25T17:45:00Z").await;
    let again = texts(&rig.at("2026-12-25T18:00:00Z").await);
    assert!(again.contains("✓ gpu-off"), "{again}");
    assert_eq!(
        rig.outcomes("nightly-off"),
        [
            ("2026-12-23T18:00:00+00:00".to_owned(), "ok".to_owned()),
            ("2026-12-24T18:00:00+00:00".to_owned(), "skipped".to_owned()),
            ("2026-12-25T18:00:00+00:00".to_owned(), "ok".to_owned()),
        ]
    );
    // demo-days runs only on 10 December: every morning before it is skipped, saying why.
    let demo = rig.outcomes("demo-days");
    assert_eq!(demo.len(), 2, "{demo:?}");
    assert!(
        demo.iter().all(|(_, outcome)| outcome == "skipped"),
        "{demo:?}"
    );
}

#[tokio::test]
async fn preview_marks_dst_shifts_and_holidays_in_helsinki() {
    let rig = Rig::new("2026-10-22T12:00:00Z");
    let preview = rig.say("/schedule preview nightly-off --days 7").await;
    let lines: Vec<&str> = preview.lines().collect();
    assert_eq!(
        lines,
        [
            "Schedule nightly-off (`0 0 20 * * *` in Europe/Helsinki): 7 firings in the next 7 days",
            "Thu 2026-10-22 20:00 EEST · 17:00 UTC",
            "Fri 2026-10-23 20:00 EEST · 17:00 UTC",
            "Sat 2026-10-24 20:00 EEST · 17:00 UTC",
            "Sun 2026-10-25 20:00 EET · 18:00 UTC · 🕑 DST shift: UTC+02:00 (was UTC+03:00)",
            "Mon 2026-10-26 20:00 EET · 18:00 UTC",
            "Tue 2026-10-27 20:00 EET · 18:00 UTC · ⛔ skipped: 2026-10-27 is in calendar fi-holidays (skip_on)",
            "Wed 2026-10-28 20:00 EET · 18:00 UTC",
        ],
        "{preview}"
    );
}

#[tokio::test]
async fn preview_marks_the_dst_shift_in_new_york_and_bad_input_is_explained() {
    let rig = Rig::new("2026-10-29T12:00:00Z");
    let preview = rig.say("/schedule preview ny-off --days 7").await;
    let lines: Vec<&str> = preview.lines().collect();
    assert_eq!(
        lines,
        [
            "Schedule ny-off (`0 0 20 * * Mon-Fri` in America/New_York): 5 firings in the next 7 days",
            "Thu 2026-10-29 20:00 EDT · 00:00 UTC",
            "Fri 2026-10-30 20:00 EDT · 00:00 UTC",
            "Mon 2026-11-02 20:00 EST · 01:00 UTC · 🕑 DST shift: UTC-05:00 (was UTC-04:00)",
            "Tue 2026-11-03 20:00 EST · 01:00 UTC",
            "Wed 2026-11-04 20:00 EST · 01:00 UTC",
        ],
        "{preview}"
    );
    let bad = rig.say("/schedule preview ny-off --days 400").await;
    assert!(bad.contains("--days takes 1 to 92, not 400"), "{bad}");
}

#[tokio::test]
async fn an_unknown_calendar_or_a_bad_day_is_a_load_error() {
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("schedules.toml");
    std::fs::write(
        &file,
        "[[schedule]]\nname = \"x\"\ncron = \"0 0 20 * * *\"\nchannel = \"c\"\ncommands = [\"/echo x\"]\nskip_on = [\"se-holidays\"]\n",
    )
    .unwrap();
    let extra = format!(
        "[[permissions]]\nusers = [\"sched-bot\"]\nallow = [\"echo\"]\n\n[schedules]\nowner = {{ user_id = \"sched-bot\" }}\nfile = {:?}\n\n[schedules.calendars]\nfi-holidays = [\"2026-02-30\"]\n",
        file.display().to_string()
    );
    let bot = TestBot::with_config(&["echo"], &extra);
    let problems = bot.app.check_schedules().join("\n");
    assert!(
        problems.contains("[schedules.calendars] fi-holidays: \"2026-02-30\" is not a day: write YYYY-MM-DD, or *-MM-DD for every year"),
        "{problems}"
    );
    assert!(
        problems.contains("schedule x: skip_on names calendar \"se-holidays\", which [schedules.calendars] does not define (defined: fi-holidays)"),
        "{problems}"
    );
}

/// A stand-in for the aks plugin's `/aks scale --pool P --count N`, recording each call.
#[derive(Default)]
struct FakeAks {
    calls: std::sync::Mutex<Vec<String>>,
}

impl deckhand::router::builtins::BuiltinGroup for FakeAks {
    fn specs(&self) -> Vec<deckhand_plugin_abi::proto::CommandSpec> {
        use deckhand_plugin_abi::proto::{CommandSpec, OptionKind, OptionSpec};
        vec![
            CommandSpec::new("aks", "fake").subcommand(
                CommandSpec::new("scale", "fake scale")
                    .option(OptionSpec::new("pool", OptionKind::String, "pool").required())
                    .option(OptionSpec::new("count", OptionKind::Integer, "count").required()),
            ),
        ]
    }

    fn run<'a>(
        &'a self,
        _router: &'a deckhand::router::Router,
        _invocation: &'a deckhand::router::Invocation,
        parsed: &'a deckhand::router::parse::Parsed,
    ) -> futures_util::future::BoxFuture<
        'a,
        Result<deckhand::router::Response, deckhand::router::RouterError>,
    > {
        let call = format!(
            "{} {}",
            parsed.options["pool"].as_str().unwrap_or_default(),
            parsed.options["count"]
        );
        self.calls.lock().unwrap().push(call.clone());
        Box::pin(async move { Ok(deckhand::router::Response::ok(format!("scaled {call}"))) })
    }
}

#[tokio::test]
async fn keep_awake_holds_the_scale_down_until_it_ends_by_itself() {
    let aks = Arc::new(FakeAks::default());
    let schedules = r#"
[[schedule]]
name = "gpu-off"
cron = "0 0 20 * * *"
tz = "Europe/Helsinki"
warn = "15m"
channel = "gpu-ops"
commands = ["/aks scale --pool gpu --count 0"]
"#;
    let registered = aks.clone();
    let mut rig = Rig::with(schedules, "2026-12-01T12:00:00Z", move |app| {
        app.router.add_builtins(registered)
    });
    let warning = rig.at("2026-12-01T17:45:00Z").await;
    assert_eq!(warning.len(), 1, "{}", texts(&warning));
    let button = warning[0]
        .actions
        .iter()
        .find(|a| a.label == "Keep gpu awake until 22:00")
        .unwrap_or_else(|| panic!("{:?}", warning[0].actions));
    assert_eq!(
        button.command,
        "/schedule keep-awake gpu --until '2026-12-01 22:00' --tz Europe/Helsinki"
    );
    // Pressing it runs the command as the presser; the answer goes to the channel.
    let set = rig.say(&button.command).await;
    assert!(
        set.starts_with("☕ Pool gpu is kept awake until Tue 2026-12-01 22:00:00 EET (20:00:00 UTC) (set by Local operator). Scale-downs by gpu-off wait until then"),
        "{set}"
    );
    let held = texts(&rig.at("2026-12-01T18:00:00Z").await);
    assert!(
        held.contains("☕ Schedule gpu-off: pool gpu is kept awake until Tue 2026-12-01 22:00:00 EET (20:00:00 UTC) (by Local operator); the run due Tue 2026-12-01 20:00:00 EET (18:00:00 UTC) waits until then."),
        "{held}"
    );
    assert!(aks.calls.lock().unwrap().is_empty());
    assert!(rig.at("2026-12-01T19:59:00Z").await.is_empty());
    // 22:00 Helsinki: the keep-awake ends by itself and the scale-down runs.
    let ended = texts(&rig.at("2026-12-01T20:00:00Z").await);
    assert!(
        ended.contains("☕ Keep-awake of pool gpu ended (Local operator set it until Tue 2026-12-01 20:00:00 UTC)"),
        "{ended}"
    );
    assert!(ended.contains("✓ scaled gpu 0"), "{ended}");
    assert_eq!(*aks.calls.lock().unwrap(), ["gpu 0"]);
    // The next night nothing holds it.
    rig.at("2026-12-02T17:45:00Z").await;
    let next = texts(&rig.at("2026-12-02T18:00:00Z").await);
    assert!(next.contains("✓ scaled gpu 0"), "{next}");
    assert_eq!(aks.calls.lock().unwrap().len(), 2);
    // Bad input is refused with what would be right.
    for (input, expected) in [
        (
            "/schedule keep-awake gpu --until tomorrow",
            "is not a time: write HH:MM",
        ),
        (
            "/schedule keep-awake gpu --until '2026-12-20 10:00'",
            "keep awake for at most a week",
        ),
        ("/schedule keep-awake GPU! --until 10:00", "pool:"),
    ] {
        let answer = rig.say(input).await;
        assert!(answer.contains(expected), "{input}: {answer}");
    }
}

/// A GPU pool with a node up and no pod asking for a GPU is warned about in the idle channel,
/// with a "Scale to 0" button running the destructive (confirmed) `/aks scale-down`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_gpu_pool_is_warned_about_with_a_scale_to_zero_button() {
    let cloud = deckhand_it::aks::start_aks(
        std::time::Duration::from_millis(200),
        "\n[cost]\nsample_every = \"10s\"\n[cost.idle]\nchannel = \"#gpu-ops\"\nafter = \"1s\"\n",
    )
    .await;
    let scaled = cloud.bot.say("/aks scale --pool gpu --count 1").await;
    assert_eq!(
        scaled.kind,
        deckhand::router::ResponseKind::Ok,
        "{}",
        scaled.text
    );
    let outbox = std::sync::Arc::new(deckhand::chat::MemoryOutbox::default());
    let _cost = cloud
        .bot
        .app
        .start_cost(
            outbox.clone(),
            std::sync::Arc::new(deckhand::sched::SystemClock),
        )
        .unwrap()
        .expect("[cost] is on");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let warning = loop {
        if let Some(m) = outbox
            .messages()
            .into_iter()
            .find(|m| m.text.contains("GPU pool gpu"))
        {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no idle warning: {:?}",
            outbox.messages()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(warning.channel, "#gpu-ops");
    assert!(warning.text.contains("1 node up"), "{}", warning.text);
    assert_eq!(warning.actions.len(), 1, "{warning:?}");
    assert_eq!(
        warning.actions[0].command,
        format!(
            "/aks scale-down --pool gpu --count 0 --cluster {}",
            cloud.estate.cluster
        )
    );
}
