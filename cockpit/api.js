// SPDX-License-Identifier: LGPL-2.1-or-later
// hostwardend's D-Bus API as the page uses it. Every action is a method call made as the
// logged-in user (no superuser channel), so that hostwardend asks polkit, as it does for
// hostwardenctl: the page never decides who may do what.

/* global cockpit */

export const BUS = "org.hostwarden.Warden1";
export const PATH = "/org/hostwarden/Warden1";
export const NODE = "org.hostwarden.Warden1.Node";
export const MIGRATION = "org.hostwarden.Warden1.Migration";
export const MAINTENANCE = "org.hostwarden.Warden1.Maintenance";
export const MAINTENANCE_PATH = PATH + "/maintenance";

export const client = cockpit.dbus(BUS, { bus: "system" });

// Fence waits for an agent up to 120 s; Rebuild and EvacuateFrom for disks (as
// hostwardenctl: 150 s and 30 min).
const TIMEOUTS_MS = { Fence: 150000, EvacuateFrom: 1800000 };

export function callNode(method, type, args) {
    const options = { type };
    if (TIMEOUTS_MS[method])
        options.timeout = TIMEOUTS_MS[method];
    return client.call(PATH, NODE, method, args, options);
}

export function callOn(path, iface, method, type, args) {
    return client.call(path, iface, method, args || [], { type: type || "" });
}

const REFUSALS = [
    "org.freedesktop.DBus.Error.AccessDenied",
    "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
];

export function isRefusal(error) {
    return REFUSALS.includes(error && error.name);
}

// One line for an operator: polkit's refusals said as such, hostwarden's errors with their
// short name, a lost connection as cockpit words it.
export function describeError(error) {
    if (!error)
        return "Unknown error";
    const message = error.message || cockpit.message(error);
    if (isRefusal(error))
        return "Refused by polkit: " + message +
            " Members of the group hostwarden may do this; ask an administrator.";
    if (error.name && error.name.startsWith(BUS + ".Error."))
        return error.name.substring(BUS.length + 7) + ": " + message;
    return message;
}

// a{sv} for Migrate, CheckMigration and EvacuateLive
export function migrationOptions({ block, bandwidth }) {
    const options = {};
    if (block)
        options.block = cockpit.variant("b", true);
    if (bandwidth !== null && bandwidth !== undefined)
        options.bandwidth = cockpit.variant("t", bandwidth);
    return options;
}
