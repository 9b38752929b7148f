#!/usr/bin/env bash
# Records fixtures/krb5/mit-kdc.pcapng: MIT Kerberos clients (kinit, kvno)
# against MIT krb5kdc (realm CORP.EXAMPLE) in two network namespaces made
# here and removed at the end; no traffic leaves them. Over UDP, then the
# same again over TCP (udp_preference_limit = 1):
#   - alice logs on with a password (AS-REQ, KRB-ERROR PREAUTH_REQUIRED,
#     AS-REQ with pre-authentication, AS-REP) and asks for tickets to
#     host/WIN-LIVFRVQFMKO.corp.example and cifs/WIN-LIVFRVQFMKO (TGS);
#   - the machine account WIN-J9D866ESIJ2$ logs on from its keytab, with
#     its addresses in the request (kinit -a);
#   - a principal that does not exist (KDC_ERR_C_PRINCIPAL_UNKNOWN).
#
#   sudo scripts/capture-krb5.sh [OUT_DIR]
#
# Needs: iproute2, krb5-kdc, krb5-admin-server (kadmin.local), krb5-user, tshark.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-fixtures/krb5}
kdc=hwkrA$$
cl=hwkrB$$
work=$(mktemp -d)
cleanup() {
    for p in ${srv:-} ${cap:-}; do kill "$p" 2>/dev/null || true; done
    ip netns del "$kdc" 2>/dev/null || true
    ip netns del "$cl" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$kdc"
ip netns add "$cl"
ip link add veth-kr0 netns "$kdc" type veth peer name veth-kr1 netns "$cl"
ip -n "$kdc" addr add 10.78.0.1/24 dev veth-kr0
ip -n "$cl" addr add 10.78.0.2/24 dev veth-kr1
for ns in "$kdc" "$cl"; do ip -n "$ns" link set lo up; done
ip -n "$kdc" link set veth-kr0 up
ip -n "$cl" link set veth-kr1 up
sleep 1

cat >"$work/kdc.conf" <<CONF
[kdcdefaults]
    kdc_listen = 88
    kdc_tcp_listen = 88
[realms]
    CORP.EXAMPLE = {
        database_name = $work/principal
        key_stash_file = $work/stash
        acl_file = $work/kadm5.acl
    }
[logging]
    kdc = FILE:$work/kdc.log
CONF
client_conf() {
    cat <<CONF
[libdefaults]
    default_realm = CORP.EXAMPLE
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    udp_preference_limit = $1
[realms]
    CORP.EXAMPLE = {
        kdc = 10.78.0.1
    }
CONF
}
client_conf 1465 >"$work/krb5-udp.conf"
client_conf 1 >"$work/krb5-tcp.conf"
export KRB5_KDC_PROFILE="$work/kdc.conf" KRB5_CONFIG="$work/krb5-udp.conf"
kdb5_util create -s -r CORP.EXAMPLE -P masterpw >/dev/null
kadmin.local -q "addprinc +requires_preauth -pw Passw0rd! alice" >/dev/null
kadmin.local -q "addprinc +requires_preauth -randkey WIN-J9D866ESIJ2\$" >/dev/null
kadmin.local -q "addprinc -randkey host/WIN-LIVFRVQFMKO.corp.example" >/dev/null
kadmin.local -q "addprinc -randkey cifs/WIN-LIVFRVQFMKO" >/dev/null
kadmin.local -q "ktadd -k $work/machine.keytab WIN-J9D866ESIJ2\$" >/dev/null

ip netns exec "$kdc" tshark -q -i veth-kr0 -w "$work/krb5.pcapng" -f "port 88" 2>/dev/null &
cap=$!
ip netns exec "$kdc" krb5kdc -n &
srv=$!
for _ in $(seq 50); do
    ip netns exec "$cl" bash -c 'echo > /dev/tcp/10.78.0.1/88' 2>/dev/null && break
    sleep 0.2
done
sleep 1
session() {
    export KRB5_CONFIG="$work/krb5-$1.conf" KRB5CCNAME="FILE:$work/cc-$1"
    echo 'Passw0rd!' | ip netns exec "$cl" kinit alice >/dev/null
    ip netns exec "$cl" kvno host/WIN-LIVFRVQFMKO.corp.example >/dev/null
    ip netns exec "$cl" kvno cifs/WIN-LIVFRVQFMKO >/dev/null
    ip netns exec "$cl" kinit -a -k -t "$work/machine.keytab" 'WIN-J9D866ESIJ2$'
    echo x | ip netns exec "$cl" kinit nobody >/dev/null 2>&1 || true
}
session udp
session tcp
sleep 1
kill "$cap" "$srv"
wait "$cap" 2>/dev/null || true
mkdir -p "$out"
cp "$work/krb5.pcapng" "$out/mit-kdc.pcapng"
echo "wrote $out/mit-kdc.pcapng ($(tshark -r "$out/mit-kdc.pcapng" 2>/dev/null | wc -l) packets)"
