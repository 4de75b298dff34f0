#!/bin/sh
# A probe for `faults-run --probe`: what glibc's allocator holds in a server process.
#
#   faults-run --only storm --servers ours --probe bench/faults/probe-malloc.sh
#
# Called as `probe-malloc.sh PID LABEL`. It attaches gdb to PID, has the process write
# glibc's malloc_info(3) to $PROBE_DIR/LABEL.xml (target/bench/probe by default), and
# appends one line to $PROBE_DIR/probe.log: the resident memory, the bytes the heap
# arenas hold from the system, the bytes free in them (in glibc's bins, reusable but
# resident where touched), the bytes in mmapped chunks, and so the bytes in use.
# For a label ending in `-end` it then calls malloc_trim(0), which gives the free pages
# of every arena back to the system, and logs the resident memory after it: what is
# left is what the process uses, and what went is what the allocator kept.
set -eu
pid=$1
label=$2
dir=${PROBE_DIR:-target/bench/probe}
mkdir -p "$dir"
xml="$(cd "$dir" && pwd)/$label.xml"
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"; }
before=$(rss)
gdb -p "$pid" -batch -nx \
    -ex "set \$f = (void *) fopen(\"$xml\", \"w\")" \
    -ex "call (int) malloc_info(0, \$f)" \
    -ex "call (int) fclose(\$f)" >/dev/null 2>&1
# The totals are the last lines of the document, after the arenas'.
summary=$(tail -n 9 "$xml" | awk -F'"' '
    /total type="fast"/ { free += $6 }
    /total type="rest"/ { free += $6 }
    /total type="mmap"/ { mmap = $6 }
    /system type="current"/ { sys = $4 }
    END { printf "arenas_kib=%d free_kib=%d mmap_kib=%d in_use_kib=%d", sys / 1024, free / 1024, mmap / 1024, (sys - free + mmap) / 1024 }')
line="$label rss_kib=$before $summary"
case "$label" in
*-end)
    gdb -p "$pid" -batch -nx -ex "call (int) malloc_trim(0)" >/dev/null 2>&1
    line="$line rss_after_malloc_trim_kib=$(rss)"
    ;;
esac
echo "$line" >> "$dir/probe.log"
echo "probe: $line" >&2
