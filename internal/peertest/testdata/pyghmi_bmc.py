#!/usr/bin/python3
"""A minimal BMC on pyghmi's IPMI server (pyghmi.ipmi.bmc.Bmc), with its
default settings, for lightsout's interop tests: power state in memory.

Usage: pyghmi_bmc.py USER PASSWORD_FILE UUID STATE_FILE

It binds 127.0.0.1 on a port the kernel chooses, prints "ready PORT" on
stdout, and writes the power state ("on" or "off") to STATE_FILE at start
and after every change. The password is read from a file: never on a
command line. Stop it by PID.
"""

import os
import sys
import uuid

import pyghmi.ipmi.bmc as bmc


class TestBmc(bmc.Bmc):
    def __init__(self, authdata, bmcuuid, state_file):
        self.state_file = state_file
        self.powerstate = 'on'
        super().__init__(authdata, port=0, bmcuuid=bmcuuid,
                         address='127.0.0.1')
        # pyghmi routes a session's packets by the port it was told; the
        # kernel chose it here (port 0), so tell it the real one.
        self.port = self.serversocket.getsockname()[1]
        self.save()

    def save(self):
        tmp = self.state_file + '.tmp'
        with open(tmp, 'w') as f:
            f.write(self.powerstate)
        os.replace(tmp, self.state_file)

    def get_power_state(self):
        return self.powerstate

    def power_off(self):
        self.powerstate = 'off'
        self.save()

    def power_on(self):
        self.powerstate = 'on'
        self.save()

    def power_shutdown(self):
        self.power_off()

    def power_cycle(self):
        self.powerstate = 'on'
        self.save()

    def power_reset(self):
        pass


def main():
    user, pwfile, guid, state_file = sys.argv[1:5]
    with open(pwfile) as f:
        password = f.readline().rstrip('\n')
    b = TestBmc({user: password}, uuid.UUID(guid), state_file)
    print('ready %d' % b.serversocket.getsockname()[1], flush=True)
    b.listen()


if __name__ == '__main__':
    main()
