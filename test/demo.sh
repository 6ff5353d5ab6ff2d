#!/usr/bin/env bash
# make demo: a fleet of simulated BMCs on loopback and solgate driving them.
# Needs nothing but the solgate binary (bin/solgate); stops what it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
SOLGATE=${SOLGATE:-bin/solgate}
N=${N:-16}
work=$(mktemp -d /tmp/solgate-demo.XXXXXX)
sim_pid=""
cleanup() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@" || true; }

# A demo password, in a 0600 file as in production.
umask 077
printf 'demo-secret\n' > "$work/bmc.pass"

bad=node$(printf %02d "$N")                    # this one's BMC starts misconfigured
good=node$(printf %02d $((N > 1 ? N - 1 : 1)))
say "Starting $N simulated BMCs on loopback (solgate bmcsim)"
"$SOLGATE" bmcsim -n "$N" --listen 127.0.0.1:0 --names "node[01-$(printf %02d "$N")]" \
  -u admin --password-file "$work/bmc.pass" --hosts-file "$work/hosts" \
  --misconfigured "$bad" --state-dir "$work/bmc-state" 2>"$work/bmcsim.log" &
sim_pid=$!
for _ in $(seq 100); do [ -s "$work/hosts" ] && break; sleep 0.05; done
[ -s "$work/hosts" ] || { echo "bmcsim did not start:"; cat "$work/bmcsim.log"; exit 1; }
head -3 "$work/hosts"; echo "..."

# A config file naming the consoles and their BMCs.
bmcs=$(awk '{print $2}' "$work/hosts" | paste -sd, -)
cat > "$work/solgate.toml" <<TOML
[server]
log_dir = "$work/log"
state_dir = "$work/state"

[defaults]
user = "admin"
password_file = "$work/bmc.pass"

[[console]]
name = "node[01-$(printf %02d "$N")]"
bmc = "$bmcs"
TOML

say "Validating the config"
run "$SOLGATE" check -c "$work/solgate.toml"

say "Power status of every node, in parallel"
run "$SOLGATE" power -c "$work/solgate.toml" "node[01-$(printf %02d "$N")]" status --consolidate

say "Hard power off every node"
run "$SOLGATE" power -c "$work/solgate.toml" "node[01-$(printf %02d "$N")]" off --consolidate

say "Power on half of them and wait until they are on"
run "$SOLGATE" power -c "$work/solgate.toml" "node[01-$((N/2))]" on --wait --consolidate

say "Status again"
run "$SOLGATE" power -c "$work/solgate.toml" "node[01-$(printf %02d "$N")]" status --consolidate

say "Cycle node01 (JSON output for scripts)"
run "$SOLGATE" power -c "$work/solgate.toml" node01 cycle --wait --json

say "Next boot from the network on node02"
run "$SOLGATE" power -c "$work/solgate.toml" node02 pxe

say "Record node03's serial console while it power-cycles (solgate sol --log-dir)"
printf '$ %s\n' "$SOLGATE sol -c $work/solgate.toml node03 --follow --log-dir $work/log </dev/null &"
"$SOLGATE" sol -c "$work/solgate.toml" node03 --follow --log-dir "$work/log" </dev/null >/dev/null 2>"$work/sol.err" &
sol_pid=$!
sleep 1
run "$SOLGATE" power -c "$work/solgate.toml" node03 cycle --wait
sleep 3
kill "$sol_pid" 2>/dev/null; wait "$sol_pid" 2>/dev/null || true

say "What node03 printed, from the compressed log store (last 15 lines, escapes stripped)"
run "$SOLGATE" log -c "$work/solgate.toml" node03 --plain -n 15
if command -v zstdcat >/dev/null; then
  say "The same log read with the standard zstd tools"
  printf '$ zstdcat %s/log/node03/*.zst | tail -n 4\n' "$work"
  zstdcat "$work"/log/node03/*.zst | tail -n 4 || true
fi

say "BMC setup: $bad's BMC came misconfigured; solgate bmc doctor says what and how to fix it"
run "$SOLGATE" bmc doctor -c "$work/solgate.toml" "$good,$bad"
say "Fix it: SOL on at 115200, payload access for admin, the insecure bits off (read back)"
run "$SOLGATE" bmc set -c "$work/solgate.toml" "$bad" sol.enable=on sol.bitrate=115200 \
  channel.per-msg-auth=on lan.cipher.0=unused
run "$SOLGATE" bmc user -c "$work/solgate.toml" "$bad" sol admin on
run "$SOLGATE" bmc user -c "$work/solgate.toml" "$bad" disable 1
run "$SOLGATE" bmc doctor -c "$work/solgate.toml" "$bad"
say "What $bad's BMC looks like now (SOL part; the full list has LAN, channel and users)"
printf '$ %s\n' "$SOLGATE bmc show -c $work/solgate.toml $bad | grep '^sol\.'"
"$SOLGATE" bmc show -c "$work/solgate.toml" "$bad" | grep '^sol\.' || true

say "A wrong password gives a clear error and exit status 1"
printf 'wrong\n' > "$work/wrong.pass"
first=$(head -1 "$work/hosts" | awk '{print $2}')
run "$SOLGATE" power -u admin --password-file "$work/wrong.pass" "$first" status

say "Done. Try it yourself:"
cat <<TXT
  $SOLGATE bmcsim -n 100 --listen 127.0.0.1:20000 &
  IPMI_PASSWORD=password $SOLGATE power -u admin '127.0.0.1:[20000-20099]' status --consolidate
  IPMI_PASSWORD=password $SOLGATE sol -u admin 127.0.0.1:20000       # Ctrl-E c . to leave
  ipmitool -I lanplus -C 17 -H 127.0.0.1 -p 20000 -U admin -P password chassis power status
TXT
