#!/bin/sh
# fleet.sh — measure a fleet of virtual cabinets on this machine (make fleet).
#
#   simulator/fleet.sh CABINETS [SALE_EVERY] [WINDOW_S] [PROCS]
#
# Runs PROCS (default 1) simulators of CABINETS/PROCS cabinets each, with
# -cabinet-offset so their cabinets do not clash, each against a Mosquitto
# of its own on a free loopback port: the way several machines would drive
# a broker cluster, on one machine whose open-file limit (20,000 here)
# caps one process at about 6,000 cabinets (three descriptors each: the
# ledger, the catalog and the MQTT socket). Each runs in-process firmware
# and the virtual platform. It waits until every cabinet is connected
# (and, without a sale load, hushed), then measures over WINDOW_S seconds
# (default 60): CPU of the simulators and of the brokers from
# /proc/PID/stat, their RSS, the simulators' open files and the load-cell
# samples per second (GET /api/fleet), and with SALE_EVERY (a Go duration
# such as 10m; "-" for none) each simulator's sale-load report
# (GET /api/load). It prints the figures and leaves nothing running.
# Needs mosquitto, curl, python3, bc and Go; Linux only (/proc).
set -eu

n=${1:?usage: fleet.sh CABINETS [SALE_EVERY] [WINDOW_S] [PROCS]}
every=${2:--}
window=${3:-60}
procs=${4:-1}
per=$((n / procs))

dir=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api() { curl -sf "http://127.0.0.1:$1$2"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss() { awk '/VmRSS/ {printf "%.0f\n", $2/1024}' "/proc/$1/status"; }
sum() { echo "$*" | tr ' ' '+' | bc; }

go build -o "$dir/cabsim" ./simulator/cmd/cabsim
sale=""
if [ "$every" != "-" ]; then sale="-sale-every $every"; fi

cpids="" mpids="" hports=""
i=0
while [ "$i" -lt "$procs" ]; do
	mport=$(freeport)
	hport=$(freeport)
	printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_connections -1\npersistence false\nlog_type error\n' "$mport" >"$dir/mosq$i.conf"
	mosquitto -c "$dir/mosq$i.conf" >"$dir/mosq$i.log" 2>&1 &
	mpids="$mpids $!"
	pids="$! $pids"
	# shellcheck disable=SC2086
	"$dir/cabsim" -cabinets "$per" -cabinet-offset $((i * per)) -seed $((i + 1)) -broker "tcp://127.0.0.1:$mport" \
		-http "127.0.0.1:$hport" -state "$dir/state$i" $sale >"$dir/cabsim$i.log" 2>&1 &
	cpids="$cpids $!"
	pids="$! $pids"
	hports="$hports $hport"
	i=$((i + 1))
done

start=$(date +%s)
for hport in $hports; do
	while :; do
		if api "$hport" /api/fleet >"$dir/fleet.json" 2>/dev/null; then
			conn=$(field '["connected"]' <"$dir/fleet.json")
			hushed=$(field '["hushed"]' <"$dir/fleet.json")
			if [ "$conn" -ge "$per" ] && { [ "$every" != "-" ] || [ "$hushed" -ge "$per" ]; }; then break; fi
		fi
		for p in $cpids; do kill -0 "$p" 2>/dev/null || { tail -20 "$dir"/cabsim*.log; exit 1; }; done
		if [ $(($(date +%s) - start)) -gt 1800 ]; then
			echo "fleet.sh: not ready after 30 min" >&2
			exit 1
		fi
		sleep 5
	done
done
ready=$(($(date +%s) - start))

samples() {
	s=0
	for hport in $hports; do s=$((s + $(api "$hport" /api/fleet | field '["samples"]'))); done
	echo "$s"
}
hz=$(getconf CLK_TCK)
c0=$(sum $(for p in $cpids; do ticks "$p"; done))
m0=$(sum $(for p in $mpids; do ticks "$p"; done))
s0=$(samples)
t0=$(date +%s.%N)
sleep "$window"
c1=$(sum $(for p in $cpids; do ticks "$p"; done))
m1=$(sum $(for p in $mpids; do ticks "$p"; done))
t1=$(date +%s.%N)
s1=$(samples)
conn=0 hushed=0
for hport in $hports; do
	api "$hport" /api/fleet >"$dir/fleet.json"
	conn=$((conn + $(field '["connected"]' <"$dir/fleet.json")))
	hushed=$((hushed + $(field '["hushed"]' <"$dir/fleet.json")))
done
fds=$(sum $(for p in $cpids; do ls "/proc/$p/fd" | wc -l; done))
dt=$(echo "$t1 - $t0" | bc -l)

echo "cabinets=$((per * procs)) procs=$procs sale_every=$every ready_after_s=$ready window_s=$window connected=$conn hushed=$hushed" \
	"cabsim_cores=$(echo "($c1 - $c0) / $hz / $dt" | bc -l | xargs printf %.3f)" \
	"cabsim_rss_mb=$(sum $(for p in $cpids; do rss "$p"; done)) cabsim_fds=$fds" \
	"mosquitto_cores=$(echo "($m1 - $m0) / $hz / $dt" | bc -l | xargs printf %.3f)" \
	"mosquitto_rss_mb=$(sum $(for p in $mpids; do rss "$p"; done))" \
	"samples_per_s=$(echo "($s1 - $s0) / $dt" | bc -l | xargs printf %.0f)"
if [ "$every" != "-" ]; then
	for hport in $hports; do
		api "$hport" /api/load
		echo
	done
fi
