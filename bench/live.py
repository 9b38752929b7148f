"""The live benchmark's runs (bench/live.sh sets it up): for each rate and
sensor, start the sensor on the namespace's receiving end, replay the
capture into the sending end, stop the sensor with SIGINT, and report."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

HW, CAP = sys.argv[1], sys.argv[2]
RATES = sys.argv[3:] or ["200", "800", "topspeed"]
OUT = os.path.abspath("bench/out/live")
NS = f"hwbench{os.getpid()}"
try:
    MANIFEST = json.load(open(CAP[: -len(".pcap")] + ".manifest.json"))
except OSError:
    # A capture without planted handshakes (the SYN flood).
    MANIFEST = {"rdp_handshakes": 0, "ntlm_exchanges": 0, "packets": "?"}
RING_MIB = 64


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def setup():
    sh("ip", "netns", "add", NS)
    inside = ("ip", "netns", "exec", NS)
    sh(*inside, "ip", "link", "add", "hbtx", "type", "veth", "peer", "name", "hbrx")
    for dev in ("hbtx", "hbrx", "lo"):
        sh(*inside, "ip", "link", "set", dev, "up")


def packet_sockets(pid):
    """Packet sockets of the sensor's namespace that are bound to every
    protocol (ETH_P_ALL, 0003) and running: a socket is listed from its
    creation, but libpcap binds it only once its ring is allocated (over
    half a second for 64 MiB), and a replay started before would be lost."""
    try:
        with open(f"/proc/{pid}/net/packet") as f:
            rows = [line.split() for line in f.readlines()[1:]]
    except OSError:
        return 0
    # Columns: sk RefCnt Type Proto Iface R Rmem User Inode.
    return sum(1 for r in rows if len(r) > 5 and r[3] == "0003" and r[5] == "1")


def sensors():
    s = []
    builds = [("hostwatch", HW)]
    if os.environ.get("BASELINE"):
        # Another build of hostwatch, measured in the same rounds.
        builds.append(("baseline", os.environ["BASELINE"]))
    for build, binary in builds:
        for lanes in (1, 2):
            s.append((f"{build}-{lanes}", lanes, lambda d, n=lanes, b=binary: [
                b, "-q", "-i", "hbrx", "--workers", str(n), "--buffer-size", str(RING_MIB),
                "--stats-interval", "0", "-o", f"{d}/eve.json"]))
    if shutil.which("suricata"):
        for threads in (1, 2):
            s.append((f"suricata-{threads}", threads, lambda d, n=threads: [
                "suricata", "-c", os.path.abspath("bench/suricata-live.yaml"),
                "--af-packet=hbrx", "--runmode", "workers", "-k", "none",
                "-S", "/dev/null", "-l", d, "--set", f"af-packet.0.threads={n}"]))
    else:
        print("suricata not installed: skipped (Debian 12: apt-get install -t bookworm-backports suricata)",
              file=sys.stderr)
    only = os.environ.get("SENSORS", "").split()
    return [x for x in s if not only or x[0] in only]


def replay(rate):
    speed = ["--topspeed"] if rate == "topspeed" else ["--mbps", rate]
    r = sh("ip", "netns", "exec", NS, "tcpreplay", "-i", "hbtx", *speed, CAP)
    sent, mbps = 0, 0.0
    for line in r.stdout.splitlines():
        line = line.strip()
        if line.startswith("Actual:"):
            sent = int(line.split()[1])
        if line.startswith("Rated:"):
            parts = line.replace(",", "").split()
            mbps = float(parts[3]) if len(parts) > 3 else 0.0
    return sent, mbps


def hostwatch_result(d):
    ev = [json.loads(l) for l in open(f"{d}/eve.json")]
    if not any(e["event_type"] == "stats" for e in ev):
        return 0, 0, 0, 0
    stats = [e for e in ev if e["event_type"] == "stats"][-1]["stats"]
    count = lambda t: sum(1 for e in ev if e["event_type"] == t)
    cap = stats["capture"]
    return cap["kernel_packets"], cap["kernel_drops"], count("rdp"), count("ntlm")


def suricata_result(d):
    received = dropped = rdp = ntlm = 0
    for line in open(f"{d}/eve.json"):
        e = json.loads(line)
        if e["event_type"] == "stats":
            c = e["stats"].get("capture", {})
            received, dropped = c.get("kernel_packets", 0), c.get("kernel_drops", 0)
        elif e["event_type"] == "rdp" and e["rdp"].get("event_type") == "initial_request":
            rdp += 1
        elif e["event_type"] == "smb" and "ntlmssp" in e["smb"]:
            ntlm += 1
    return received, dropped, rdp, ntlm


def run(name, sockets, argv, rate):
    d = f"{OUT}/{name}-{rate}"
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    p = subprocess.Popen(["ip", "netns", "exec", NS, *argv(d)],
                         stdout=subprocess.DEVNULL, stderr=open(f"{d}/stderr", "w"))
    t0 = time.time()
    while packet_sockets(p.pid) < sockets and time.time() - t0 < 30:
        time.sleep(0.05)
    time.sleep(1.0 if name.startswith("suricata") else 0.3)
    t1 = time.time()
    if rate.startswith("idle:"):
        time.sleep(float(rate[5:]))
        sent, mbps = 0, 0.0
    else:
        sent, mbps = replay(rate)
    took = time.time() - t1
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    _, status, usage = os.wait4(p.pid, 0)
    cpu = usage.ru_utime + usage.ru_stime
    result = suricata_result(d) if name.startswith("suricata") else hostwatch_result(d)
    return (sent, mbps) + result + (cpu, took)


def main():
    setup()
    try:
        planted = (MANIFEST["rdp_handshakes"], MANIFEST["ntlm_exchanges"])
        print(f"capture: {CAP}, {MANIFEST['packets']} packets; planted: {planted[0]} RDP handshakes, "
              f"{planted[1]} NTLM exchanges; ring {RING_MIB} MiB per socket")
        print(f"{'sensor':<12} {'rate':>9} {'sent':>9} {'Mbit/s':>7} {'received':>9} {'dropped':>8} "
              f"{'RDP':>9} {'NTLM':>9} {'CPU s':>6} {'CPU s/Mpkt':>10}")
        print("(CPU s: the sensor's user + system time; CPU s/Mpkt: that time less the same sensor's\n"
              " over an idle run as long as the replay, per million packets received)")
        # One discarded run per sensor first: the first run in a fresh
        # namespace cost twice the CPU of the next ones at 200 Mbit/s,
        # whichever sensor came first.
        for name, sockets, argv in sensors():
            run(name, sockets, argv, "topspeed")
        for rate in RATES:
            for name, sockets, argv in sensors():
                sent, mbps, recv, drop, rdp, ntlm, cpu, took = run(name, sockets, argv, rate)
                # The same sensor left idle as long costs this much: the
                # rest is the packets' cost.
                idle = run(name, sockets, argv, f"idle:{took:.3f}")[-2]
                per = max(cpu - idle, 0.0) / recv * 1e6 if recv else float("nan")
                print(f"{name:<12} {rate:>9} {sent:>9} {mbps:>7.0f} {recv:>9} {drop:>8} "
                      f"{rdp:>4}/{planted[0]:<4} {ntlm:>4}/{planted[1]:<4} {cpu:>6.2f} {per:>10.2f}",
                      flush=True)
    finally:
        sh("ip", "netns", "delete", NS, check=False)


main()
