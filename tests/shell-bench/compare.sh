#!/usr/bin/env bash
# Issue 21: Deckhand's terminal timed side by side with a `sed` floor and, with --peers, Errbot
# (text backend) and Hubot (shell adapter), installed from PyPI and npm under a temp dir.
# Every bot is driven over pipes by `shell-bench` pinned with taskset to one CPU (the bot
# inherits it), the bots interleaved round by round; the table is the median of the runs.
#
#   tests/shell-bench/compare.sh [--peers] [--runs 3] [--rounds 2000] [--burst 2000] [--cpu 1]
#       [--binary PATH] [--postgres URL] [--out FILE] [--no-build]
#
# --binary times another build of deckhand (e.g. a copy of the binary before a change) under
# the name deckhand-other, next to this tree's. --postgres URL adds deckhand-echo-pg: the same
# plugin command with the audit on that PostgreSQL database (`[state] url`, issue 19).
# Never run in CI: it installs packages and takes minutes. Nothing is installed outside the
# temp dir (removed at the end).
set -euo pipefail

if [ "${CI:-}" = "true" ]; then
    echo "compare.sh is a benchmark for people, not CI: it installs Errbot and Hubot" >&2
    exit 1
fi

peers=false build=true runs=3 rounds=2000 burst=2000 cpu=1 other="" out="" pg=""
while [ $# -gt 0 ]; do
    case "$1" in
        --peers) peers=true; shift ;;
        --no-build) build=false; shift ;;
        --runs) runs=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --burst) burst=$2; shift 2 ;;
        --cpu) cpu=$2; shift 2 ;;
        --binary) other=$(realpath "$2"); shift 2 ;;
        --postgres) pg=$2; shift 2 ;;
        --out) out=$(realpath -m "$2"); shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# (two commands: `--bin` would also keep the echo plugin's library from being built)
$build && cargo build --release -p deckhand-testplugin-echo -p deckhand-shell-bench
# The bot as it ships: the dist profile (release with whole-program LTO, Cargo.toml).
$build && cargo build --profile dist -p deckhand --bin deckhand
release="$root/target/release"
bench="$release/shell-bench"
deckhand="$root/target/dist/deckhand"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
results="${out:-$tmp/results.jsonl}"
: > "$results"

mkdir -p "$tmp/plugins"
cp "$release/libdeckhand_testplugin_echo.so" "$tmp/plugins/"
# A fresh state database per run, so no run inherits another's WAL or audit rows.
deckhand_config() {
    cat > "$tmp/deckhand-$1.toml" <<EOF
[state]
path = "$tmp/state-$1.db"
[plugins]
dir = "$tmp/plugins"
prefix = "deckhand_testplugin_"
[[permissions]]
roles = ["admin"]
allow = ["*"]
EOF
    echo "$tmp/deckhand-$1.toml"
}
# The same with the state on PostgreSQL.
deckhand_pg_config() {
    sed "s|^path = .*|url = \"$pg\"|" "$(deckhand_config "$1")" > "$tmp/deckhand-pg-$1.toml"
    echo "$tmp/deckhand-pg-$1.toml"
}

if $peers; then
    echo "installing Hubot 14.1.0 (npm) and Errbot 6.2.1 (PyPI) under $tmp" >&2
    mkdir -p "$tmp/hubot/scripts" "$tmp/hubot/configuration"
    (cd "$tmp/hubot" && npm init -y >/dev/null && npm install --no-audit --no-fund hubot@14.1.0 >/dev/null)
    touch "$tmp/hubot/.hubot_history"
    cat > "$tmp/hubot/scripts/echo.mjs" <<'EOF'
export default (robot) => {
  robot.respond(/echo (.*)$/i, (res) => res.send(res.match[1].toUpperCase()))
}
EOF
    python3 -m venv "$tmp/errbot-venv"
    "$tmp/errbot-venv/bin/pip" install -q errbot==6.2.1
    # The text backend sleeps 0.5 s after every message (backends/text.py), which would make
    # every round trip 500 ms; the copy under test has that one line turned into `pass`.
    sed -i 's/^\( *\)sleep(0\.5)$/\1pass/' "$tmp"/errbot-venv/lib/python3*/site-packages/errbot/backends/text.py
    mkdir -p "$tmp/errbot"
    (cd "$tmp/errbot" && "$tmp/errbot-venv/bin/errbot" --init >/dev/null)
fi

pinned() { taskset -c "$cpu" "$bench" run --rounds "$rounds" --burst "$burst" --json "$results" "$@"; }

for run in $(seq 1 "$runs"); do
    echo "round $run of $runs" >&2
    pinned --name sed --send bench-ok --expect BENCH-OK -- sed -u s/bench-ok/BENCH-OK/
    pinned --name deckhand-whoami --send /whoami --expect "Local operator" \
        -- "$deckhand" shell --config "$(deckhand_config "w$run")"
    pinned --name deckhand-echo --send "/echo bench-ok --upper" --expect BENCH-OK \
        -- "$deckhand" shell --config "$(deckhand_config "e$run")"
    if [ -n "$pg" ]; then
        pinned --name deckhand-echo-pg --send "/echo bench-ok --upper" --expect BENCH-OK \
            -- "$deckhand" shell --config "$(deckhand_pg_config "p$run")"
    fi
    if [ -n "$other" ]; then
        pinned --name other-echo --send "/echo bench-ok --upper" --expect BENCH-OK \
            -- "$other" shell --config "$(deckhand_config "o$run")"
    fi
    if $peers; then
        (cd "$tmp/errbot" && pinned --name errbot --ready ">>> " --send "!echo BENCH-OK" \
            --expect BENCH-OK -- "$tmp/errbot-venv/bin/errbot" -c config.py)
        (cd "$tmp/hubot" && HUBOT_HTTPD=false pinned --name hubot \
            --ready "No external-scripts.json found" --send "echo bench-ok" --expect BENCH-OK \
            -- node_modules/.bin/hubot -a Shell -n hubot)
    fi
done

echo
echo "CPU $cpu ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load $(cut -d' ' -f1-3 /proc/loadavg)"
"$bench" summarize "$results"
