#!/bin/sh
# fleet.sh — measure a fleet of virtual cabinets on this machine (make fleet).
#
#   simulator/fleet.sh CABINETS [SALE_EVERY] [WINDOW_S] [OFFSET]
#
# Starts its own Mosquitto on a free loopback port and `cabsim -cabinets
# CABINETS` (in-process firmware, the virtual platform) against it, waits
# until every cabinet is connected (and, without a sale load, hushed), then
# measures over WINDOW_S seconds (default 60): the CPU of cabsim and of
# Mosquitto from /proc/PID/stat, their RSS, cabsim's open files, the
# simulation's load-cell samples per second (GET /api/fleet) and, with
# SALE_EVERY (a Go duration such as 10m; "-" for none), the sale load's
# report (GET /api/load). It prints one line of figures and leaves nothing
# running. Needs mosquitto, curl, python3, bc and Go. Linux only (/proc).
set -eu

n=${1:?usage: fleet.sh CABINETS [SALE_EVERY] [WINDOW_S] [OFFSET]}
every=${2:--}
window=${3:-60}
offset=${4:-0}

dir=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mport=$(freeport)
hport=$(freeport)

go build -o "$dir/cabsim" ./simulator/cmd/cabsim

cat >"$dir/mosq.conf" <<EOF
listener $mport 127.0.0.1
allow_anonymous true
max_connections -1
persistence false
log_type error
EOF
mosquitto -c "$dir/mosq.conf" >"$dir/mosq.log" 2>&1 &
mpid=$!
pids="$mpid"

sale=""
if [ "$every" != "-" ]; then sale="-sale-every $every"; fi
# shellcheck disable=SC2086
"$dir/cabsim" -cabinets "$n" -cabinet-offset "$offset" -broker "tcp://127.0.0.1:$mport" \
	-http "127.0.0.1:$hport" -state "$dir/state" $sale >"$dir/cabsim.log" 2>&1 &
cpid=$!
pids="$cpid $pids"

api() { curl -sf "http://127.0.0.1:$hport$1"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

start=$(date +%s)
until api /api/fleet >"$dir/fleet.json" 2>/dev/null; do
	kill -0 "$cpid" 2>/dev/null || { tail -20 "$dir/cabsim.log"; exit 1; }
	sleep 1
done
# Ready: every cabinet connected, and hushed unless a sale load runs.
while :; do
	api /api/fleet >"$dir/fleet.json"
	conn=$(field '["connected"]' <"$dir/fleet.json")
	hushed=$(field '["hushed"]' <"$dir/fleet.json")
	if [ "$conn" -ge "$n" ] && { [ "$every" != "-" ] || [ "$hushed" -ge "$n" ]; }; then break; fi
	if [ $(($(date +%s) - start)) -gt 1800 ]; then
		echo "fleet.sh: not ready after 30 min: connected $conn, hushed $hushed of $n" >&2
		exit 1
	fi
	kill -0 "$cpid" 2>/dev/null || { tail -20 "$dir/cabsim.log"; exit 1; }
	sleep 5
done
ready=$(($(date +%s) - start))

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
c0=$(ticks "$cpid")
m0=$(ticks "$mpid")
s0=$(field '["samples"]' <"$dir/fleet.json")
t0=$(date +%s.%N)
sleep "$window"
c1=$(ticks "$cpid")
m1=$(ticks "$mpid")
t1=$(date +%s.%N)
api /api/fleet >"$dir/fleet.json"
s1=$(field '["samples"]' <"$dir/fleet.json")
hushed=$(field '["hushed"]' <"$dir/fleet.json")
conn=$(field '["connected"]' <"$dir/fleet.json")
rss() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
fds=$(ls "/proc/$cpid/fd" | wc -l)

echo "cabinets=$n sale_every=$every ready_after_s=$ready window_s=$window connected=$conn hushed=$hushed" \
	"cabsim_cores=$(echo "($c1 - $c0) / $hz / ($t1 - $t0)" | bc -l | xargs printf %.3f)" \
	"cabsim_rss_mb=$(rss "$cpid") cabsim_fds=$fds" \
	"mosquitto_cores=$(echo "($m1 - $m0) / $hz / ($t1 - $t0)" | bc -l | xargs printf %.3f)" \
	"mosquitto_rss_mb=$(rss "$mpid")" \
	"samples_per_s=$(echo "($s1 - $s0) / ($t1 - $t0)" | bc -l | xargs printf %.0f)"
if [ "$every" != "-" ]; then
	api /api/load
	echo
fi
