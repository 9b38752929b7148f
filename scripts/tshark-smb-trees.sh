#!/usr/bin/env bash
# Writes fixtures/smb-trees.tshark.json: for every capture under
# fixtures/lab and fixtures/real/pcaps, the paths of the SMB tree connect
# requests (SMB2 TREE_CONNECT, SMB1 TREE_CONNECT_ANDX) as tshark decodes
# them, in frame order (the last path field of a frame: an SMB1 request
# also shows the path of the tree its header names). tshark finds SMB by
# port; hostwatch by content, so the relay port of Suricata's smb-length
# capture (4445) is decoded as NetBIOS session service too. tests/conformance.rs compares hostwatch's `smb`
# events with it. Needs tshark (Debian: tshark).
set -euo pipefail
cd "$(dirname "$0")/.."
out=fixtures/smb-trees.tshark.json
{
  echo "{"
  first=1
  for f in fixtures/lab/*.pcap* fixtures/real/pcaps/*; do
    paths=$(tshark -r "$f" -d tcp.port==4445,nbss -Y '(smb2.cmd == 3 && smb2.flags.response == 0) || (smb.cmd == 0x75 && smb.flags.response == 0)' \
      -T fields -E occurrence=l -e smb2.tree -e smb.path 2>/dev/null | tr '\t' '\n' | sed '/^$/d' | python3 -c 'import json,sys; print(json.dumps([l.rstrip("\n") for l in sys.stdin]))')
    [ "$first" = 1 ] || echo ","
    first=0
    printf '  %s: %s' "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "${f#fixtures/}")" "$paths"
  done
  echo
  echo "}"
} > "$out"
echo "wrote $out"
