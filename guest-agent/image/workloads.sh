# The guest side of the VPIO workloads, shared by the test initramfs's /init (busybox sh) and the
# full Debian guest's vpio-guest-run (dash): the kernel command line's vpio_* parameters, the result
# lines the host parses (VPIOLaunch.ResultLine), and the download and ssh workloads. POSIX sh only.
# Sets rc=1 when a workload fails; expects $limit, $peer (set by vpio_parameters) and the NIC up as $nic
# (eth0 unless the caller names another).

up() { cut -d' ' -f1 /proc/uptime; }
result() { echo "VPIO-RESULT $*"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
oneline() { tr '\n\r' '  ' | sed -e 's/  */ /g' -e 's/^ //' -e 's/ $//' | head -c 300; }
kprobes() { cat /sys/kernel/debug/kprobes/list 2>/dev/null | wc -l; }

# vpio_* words from the kernel command line become shell variables; then the defaults.
vpio_parameters() {
    for word in $(cat /proc/cmdline); do
        case "$word" in
        vpio_*=*)
            key=${word%%=*}
            case "$key" in *[!a-z0-9_]*) continue ;; esac
            eval "$key=\${word#*=}"
            ;;
        esac
    done
    peer=${vpio_peer:-10.77.0.1}
    limit=${vpio_timeout:-300}
}

run_download() {
    rm -f /tmp/download
    t0=$(up)
    if timeout "$limit" wget -q -O /tmp/download "http://$peer:${vpio_http:-8080}/$vpio_file" 2>/tmp/wget.err; then
        t1=$(up)
        bytes=$(wc -c < /tmp/download)
        sum=$(sha256sum /tmp/download | cut -d' ' -f1)
        if [ "$sum" = "$vpio_sha" ]; then status=ok; else status=mismatch; rc=1; fi
        result "download bytes=$bytes secs=$(elapsed "$t0" "$t1") sha256=$sum $status"
    else
        t1=$(up)
        bytes=$(wc -c < /tmp/download 2>/dev/null || echo 0)
        result "download bytes=$bytes secs=$(elapsed "$t0" "$t1") error=[$(oneline < /tmp/wget.err)] failed"
        rc=1
    fi
    rm -f /tmp/download
}

run_ssh() {
    t0=$(up)
    out=$(timeout "$limit" dbclient -y -i /root/.ssh/id_dropbear -p "${vpio_ssh:-2222}" "root@$peer" \
        'echo vpio-ssh-ok $(uname -n) $(id -u)' 2>/tmp/dbclient.err | oneline)
    t1=$(up)
    case "$out" in
    vpio-ssh-ok*) status=ok ;;
    *) status=failed; rc=1; grep -v 'not in the trusted hosts' /tmp/dbclient.err | head -3 ;;
    esac
    result "ssh secs=$(elapsed "$t0" "$t1") output=[$out] $status"
}

# One dropbear session as a person would use it: log in, a few dozen short commands with output, paced
# like typing (fed over stdin to the remote shell), log out. Every command echoes a marker that must
# come back; bytes = the NIC's rx+tx bytes during the session (the bytes the session moved on the wire).
run_ssh_session() {
    n=${vpio_ssh_commands:-40}
    S=/sys/class/net/${nic:-eth0}/statistics
    b0=$(( $(cat $S/rx_bytes) + $(cat $S/tx_bytes) ))
    t0=$(up)
    i=1
    while [ $i -le $n ]; do
        case $((i % 4)) in
        0) echo "echo vpio-step-$i; uname -a" ;;
        1) echo "echo vpio-step-$i; ls /" ;;
        2) echo "echo vpio-step-$i; id; pwd" ;;
        3) echo "echo vpio-step-$i; cat /proc/version" ;;
        esac
        sleep 0.1
        i=$((i + 1))
    done | { cat; echo 'echo vpio-session-end; exit'; } |
        timeout "$limit" dbclient -y -i /root/.ssh/id_dropbear -p "${vpio_ssh:-2222}" "root@$peer" sh \
        >/tmp/session.out 2>/tmp/dbclient.err
    t1=$(up)
    b1=$(( $(cat $S/rx_bytes) + $(cat $S/tx_bytes) ))
    markers=$(grep -c '^vpio-step-' /tmp/session.out)
    if [ "$markers" = "$n" ] && grep -q '^vpio-session-end$' /tmp/session.out; then
        status=ok
    else
        status=failed; rc=1; grep -v 'not in the trusted hosts' /tmp/dbclient.err | head -3
    fi
    result "ssh-session commands=$n markers=$markers bytes=$((b1 - b0)) secs=$(elapsed "$t0" "$t1") $status"
}

