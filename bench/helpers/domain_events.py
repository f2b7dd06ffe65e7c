#!/usr/bin/python3
"""bench/converge's second measure of downtime: libvirt's lifecycle events of this node's
domains, each printed as it arrives with the wall clock (the simulated nodes share the host's
clock), until killed:

    ready
    EPOCH_SECONDS DOMAIN EVENT DETAIL      (libvirt's numbers: 3 suspended, 4 resumed, ...)

A guest's downtime is then from its suspension on the source (the switchover of a pre-copy, the
switch to post-copy, or a pause) to its resumption on the destination: what libvirt's own
`downtime` measures, for the migrations after which libvirt keeps no statistics (post-copy).
"""
import sys
import time

import libvirt


def lifecycle(conn, dom, event, detail, opaque):
    print(f"{time.time():.6f} {dom.name()} {event} {detail}", flush=True)


def main() -> int:
    libvirt.virEventRegisterDefaultImpl()
    conn = libvirt.open("qemu:///system")
    conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle, None)
    print("ready", flush=True)
    while True:
        libvirt.virEventRunDefaultImpl()


if __name__ == "__main__":
    sys.exit(main())
