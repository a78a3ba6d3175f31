# Shared by the bench scripts: reading iperf3's JSON and summarising runs.

# iperf3 JSON on stdin -> "Mbit/s packets/s retransmit%" as the receiver saw them (UDP:
# what arrived); retransmit%: the sender's retransmitted segments per 100 it sent (TCP
# only, segments counted as bytes / 1368, the inner MSS at MTU 1420; "-" otherwise).
iperf_rate() {
  python3 -c '
import json, sys
try:
    j = json.load(sys.stdin)
except ValueError:
    print("0 0 -"); sys.exit()
if "error" in j: print("iperf3: " + j["error"], file=sys.stderr)
r = j.get("end", {}).get("sum_received", {})
secs = r.get("seconds", 0) or 1
got = r.get("packets", 0) - r.get("lost_packets", 0)  # UDP only: what arrived
s = j.get("end", {}).get("sum_sent", {})
retr = "-"
if "retransmits" in s and s.get("bytes", 0) > 0:
    retr = "%.3f" % (100.0 * s["retransmits"] / (s["bytes"] / 1368.0))
print("%.0f %.0f %s" % (r.get("bits_per_second", 0) / 1e6, got / secs, retr))'
}

# stats "V V V ..." -> "min median max" (empty when there are no values)
stats() { tr ' ' '\n' <<< "$1" | grep -v '^$' | sort -n | awk '{a[NR]=$1} END{ if (NR) printf "%s %s %s", a[1], a[int((NR+1)/2)], a[NR] }'; }

# median "V V - V ..." -> the median of the numbers among them, or "-"
median() { tr ' ' '\n' <<< "$1" | grep -v '^$' | grep -v -- '-' | sort -n | awk '{a[NR]=$1} END{ if (NR) print a[int((NR+1)/2)]; else print "-" }'; }
